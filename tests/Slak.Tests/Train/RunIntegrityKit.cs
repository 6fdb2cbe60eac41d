// Shared pieces of the run-integrity tests (issue 30): a tiny BatchNorm network (so num_batches_tracked is part of
// every checkpoint), small options that train in well under a second per epoch, a safetensors rewriter that damages
// one entry or metadata value, and a runner for the `slak` command as a second process.
using System.Diagnostics;
using Slak.IO;
using Slak.NN;
using Slak.Sparse;
using Slak.Train;

namespace Slak.Tests.Train;

/// <summary>A conv stem, BatchNorm, a maskable depthwise conv and a linear head.</summary>
internal sealed class BnNet : Module
{
    private sealed class Holder : Module
    {
        public Tensor Add(string name, Tensor t) => RegisterParameter(name, t);
    }

    private readonly Tensor _stemW, _stemB, _dwW, _headW, _headB;
    private readonly BatchNorm2d _bn;

    public BnNet(ulong seed, int width = 6, int classes = 4)
    {
        var init = new SlakRandom(seed);
        Random = new SlakRandom(seed + 1);
        var stem = RegisterModule("stem", new Holder());
        _stemW = stem.Add("weight", Tensor.RandN(init, [width, 1, 3, 3], Device.Cpu, 0, 0.3f));
        _stemB = stem.Add("bias", Tensor.Zeros(width));
        _bn = RegisterModule("bn", new BatchNorm2d(width, ModuleInit.FromRandom(init)));
        var dw = RegisterModule("dw", new Holder());
        _dwW = dw.Add("weight", Tensor.RandN(init, [width, 1, 3, 3], Device.Cpu, 0, 0.3f));
        var head = RegisterModule("head", new Holder());
        _headW = head.Add("weight", Tensor.RandN(init, [classes, width], Device.Cpu, 0, 0.3f));
        _headB = head.Add("bias", Tensor.Zeros(classes));
    }

    public SlakRandom Random { get; }

    public Tensor? DwMask { get; set; }

    public BatchNorm2d Bn => _bn;

    public override Tensor Forward(Tensor x)
    {
        var h = F.Gelu(_bn.Forward(F.Conv2d(x, _stemW, _stemB, 1, 1)));
        h = F.Add(h, F.DropPath(F.DepthwiseConv2d(h, _dwW, DwMask), 0.1f, Training, Random));
        return F.Linear(F.GlobalAvgPool(F.Gelu(h)), _headW, _headB);
    }

    public static TrainableModel Make(ulong seed, Func<Tensor, Tensor>? wrap = null) => Make(new BnNet(seed), wrap);

    public static TrainableModel Make(BnNet net, Func<Tensor, Tensor>? wrap = null)
    {
        Func<Tensor, Tensor> forward = wrap is null ? net.Forward : x => wrap(net.Forward(x));
        return new TrainableModel(net, forward, net.Random, "{\"model\": \"bn-tiny\"}")
        {
            MaskBinder = (name, mask) => { if (name == "dw.weight") net.DwMask = mask; },
        };
    }
}

internal static class RunIntegrityKit
{
    /// <summary>Sparse (uniform densities, so dw.weight is masked), EMA, mixup: every kind of trainer entry.</summary>
    public static TrainOptions Options(ulong seed, int epochs = 2) => new()
    {
        Epochs = epochs, BatchSize = 16, Lr = 1e-2, MinLr = 1e-4, WarmupEpochs = 0.5, Seed = seed, HorizontalFlip = false,
        CropPadding = 1, Sparse = true, SparseInit = SparseInit.Uniform, Density = 0.5, UpdateFrequency = 3, PruneRate = 0.3,
        Smoothing = 0.1, Mixup = 0.2, Ema = 0.9, ClipGrad = 5.0, LogEvery = 0,
    };

    public static (Slak.Data.ImageDataset Train, Slak.Data.ImageDataset Test) Data(ulong seed) =>
        (TinyNet.Synthetic(48, seed), TinyNet.Synthetic(16, seed + 99));

    /// <summary>Trains <paramref name="epochs"/> epochs into <paramref name="folder"/>.</summary>
    public static Trainer TrainRun(string folder, ulong seed, int epochs = 1)
    {
        var (train, test) = Data(seed);
        var t = new Trainer(BnNet.Make(seed), train, test, Options(seed, epochs), folder);
        var r = t.Run();
        if (!r.Completed) throw new InvalidOperationException(r.Message);
        return t;
    }

    /// <summary>Resumes <paramref name="folder"/> with a fresh model.</summary>
    public static Trainer Resume(string folder, ulong seed, TrainOptions? options = null)
    {
        var (train, test) = Data(seed);
        return Trainer.Resume(BnNet.Make(seed + 777), train, test, folder, options);
    }

    /// <summary>Rewrites the safetensors file at <paramref name="path"/> through <paramref name="edit"/> (entries
    /// as name -> (dtype, shape, bytes), metadata without the checksums), with fresh checksums when
    /// <paramref name="checksums"/>: a structurally damaged file that a checksum alone would not catch.</summary>
    public static void Rewrite(string path, Action<Dictionary<string, (SafeTensorsDType DType, int[] Shape, byte[] Data)>,
        Dictionary<string, string>> edit, bool checksums = true)
    {
        var file = SafeTensorsFile.Read(path);
        var entries = file.Entries.ToDictionary(e => e.Name, e => (e.DType, e.GetShape(), e.Data.ToArray()), StringComparer.Ordinal);
        var metadata = file.Metadata.Where(m => m.Key != TensorChecksums.MetadataKey).ToDictionary(m => m.Key, m => m.Value, StringComparer.Ordinal);
        edit(entries, metadata);
        var w = new SafeTensorsWriter { Checksums = checksums };
        foreach (var (k, v) in metadata) w.SetMetadata(k, v);
        foreach (var (name, (dtype, shape, data)) in entries) w.AddRaw(name, dtype, data, shape);
        File.WriteAllBytes(path, w.ToBytes());
    }

    /// <summary>Flips one bit of the data section of the safetensors file at <paramref name="path"/>, inside
    /// the tensor <paramref name="tensor"/>.</summary>
    public static void FlipBit(string path, string tensor)
    {
        var file = SafeTensorsFile.Read(path);
        long at = 8 + file.HeaderLength + file[tensor].DataBegin;
        var bytes = File.ReadAllBytes(path);
        bytes[at] ^= 0x10;
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Runs `slak` (the built CLI) as a child process; returns its exit code and outputs.</summary>
    public static (int Exit, string Out, string Err) RunCli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Slak.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["SLAK_NUM_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"slak {string.Join(' ', args)} did not finish in 120 s");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
