// The NCCL training row of the GPU check (`Slak.GpuCheck --nccl-train [cuda|cuda-emu]`, run by bench/gpu/nccl-check.sh
// after the smoke row): one data-parallel rank (a job of one, as `mpirun -np 1 slak train` makes) trains slak_nano
// at 32 px, batch 8, for 2 steps through the same path as the trainer: the gradient buckets started during backward
// (SLAK_DP_BUCKET_MB's default layout, here forced to 64 KiB so that there are many), the device collective with
// NCCL on the compute stream (a communicator from a fresh unique id), and every BatchNorm synchronised through it
// (SyncBatchNorm's device path, forced on although one rank needs no synchronisation). Checks: the loss is finite,
// the exchanged gradients equal the local ones bit for bit (a sum over one rank is the value itself), and the first
// forward's logits equal the plain BatchNorm's within 1e-4. On cuda-emu it uses the NCCL stand-in (CI runs it there);
// without NCCL or a GPU the row is skip. It has not run on a GPU yet.
using System.Diagnostics;
using System.Globalization;
using Slak.Autograd;
using Slak.Cuda.Interop;
using Slak.Cuda.Runtime;
using Slak.Distributed;
using Slak.Models;
using Slak.NN;
using Slak.Optim;

namespace Slak.GpuCheck;

/// <summary>The NCCL training row.</summary>
internal static class NcclTrainStep
{
    private const string Row = "nccl one-rank training step";

    /// <summary>Writes a one-row markdown table; returns 1 when the row is FAIL, 0 for ok or skip.</summary>
    public static int Run(TextWriter stdout, string deviceName)
    {
        stdout.WriteLine("| row | result | detail |");
        stdout.WriteLine("|---|---|---|");
        var device = Device.Parse(deviceName);
        if (device.Type == DeviceType.Cuda)
        {
            try { _ = Nccl.Api; }
            catch (CudaLibraryNotFoundException e)
            {
                stdout.WriteLine($"| {Row} | skip | {e.Summary} |");
                return 0;
            }
            if (!GpuDevices.IsCudaAvailable(out string why))
            {
                stdout.WriteLine($"| {Row} | skip | no CUDA device: {why} |");
                return 0;
            }
        }
        try
        {
            string detail = Train(device, out bool ok);
            stdout.WriteLine($"| {Row} | {(ok ? "ok" : "FAIL")} | {detail} |");
            return ok ? 0 : 1;
        }
        catch (Exception e) when (e is InvalidOperationException or CudaException or ArgumentException or NotSupportedException)
        {
            stdout.WriteLine($"| {Row} | FAIL | {e.Message.ReplaceLineEndings(" ")} |");
            return 1;
        }
    }

    private static string Train(Device device, out bool ok)
    {
        var preset = ModelPresets.Get("slak_nano");
        var model = new SlakModel(preset.Config, ModuleInit.FromRandom(new SlakRandom(7), device));
        var rng = new SlakRandom(8);
        const int batch = 8, size = 32;
        var x = Tensor.RandN(rng, [batch, model.Config.InChans, size, size], device);
        int classes = model.Config.NumClasses;
        var targets = F.SmoothedTargets(Enumerable.Range(0, batch).Select(i => i * 31 % classes).ToArray(), classes, 0.1f, device);

        // The plain model's logits first (ordinary BatchNorm), then every BatchNorm through the collective.
        model.Train();
        var buffers = model.NamedBuffers().Select(b => b.Tensor.ToArray()).ToList(); // restored after the plain forward
        float[] plain;
        using (TensorScope.Begin())
        using (GradMode.NoGrad())
            plain = model.Forward(x).ToArray();
        int k = 0;
        foreach (var (_, b) in model.NamedBuffers()) b.Backend.CopyFromHost(buffers[k++], b);

        var clock = Stopwatch.StartNew();
        using var one = new OneRank();
        using var reduce = new Counting(device.Type == DeviceType.Cuda ? NcclAllReduce.Create(one, device) : new StagedDeviceAllReduce(one));
        var dp = new DataParallel(one, syncBatchNorm: true) { Tensors = new DeviceTensorCollective(reduce) };
        dp.Attach(model);
        foreach (var (_, m) in model.NamedModules())
            if (m is BatchNorm2d bn) bn.Sync = dp; // one rank: Attach leaves them plain; force the device SyncBatchNorm
        double initMs = clock.Elapsed.TotalMilliseconds;
        Environment.SetEnvironmentVariable(GradientBuckets.BucketVariable, "0.0625");
        var optimizer = new AdamW(model.NamedParameters(), lr: 1e-4f);
        var parameters = model.Parameters().ToList();
        float loss = float.NaN;
        int changed = 0;
        double logitError = 0;
        clock.Restart();
        for (int step = 0; step < 2; step++)
        {
            using (TensorScope.Begin())
            {
                var logits = model.Forward(x);
                if (step == 0)
                {
                    var synced = logits.ToArray();
                    for (int i = 0; i < synced.Length; i++) logitError = Math.Max(logitError, Math.Abs(synced[i] - plain[i]));
                }
                var l = F.SoftTargetCrossEntropy(logits, targets);
                loss = l.Item();
                using (dp.BeginBackward(step)) l.Backward();
            }
            var local = parameters.Select(p => p.Grad?.ToArray()).ToList();
            dp.AverageGradients(parameters, loss, step);
            for (int i = 0; i < parameters.Count; i++)
                if (local[i] is { } g && !g.AsSpan().SequenceEqual(parameters[i].Grad!.ToArray())) changed++;
            using (TensorScope.Begin())
            using (GradMode.NoGrad())
            {
                optimizer.Step();
                model.ZeroGrad();
            }
        }
        double stepMs = clock.Elapsed.TotalMilliseconds / 2;
        ok = float.IsFinite(loss) && changed == 0 && logitError <= 1e-4 && reduce.BatchNormCalls > 0;
        return string.Create(CultureInfo.InvariantCulture,
            $"{dp.Tensors.Description} on {device}: setup {initMs:F0} ms, {stepMs:F0} ms per step (slak_nano b{batch}, {size} px); {dp.GradientSummary}; "
            + $"loss {loss:F3}; {changed} gradients changed by the one-rank exchange; {reduce.BatchNormCalls} SyncBatchNorm exchanges; "
            + $"SyncBatchNorm logits vs BatchNorm max |diff| {logitError:G3}");
    }

    /// <summary>Counts the SyncBatchNorm exchanges (to show the device path ran).</summary>
    private sealed class Counting(IDeviceAllReduce inner) : IDeviceAllReduce
    {
        public int BatchNormCalls { get; private set; }

        public string Description => inner.Description;

        public int Size => inner.Size;

        public void SumInPlace(Tensor values, string what)
        {
            if (what.Contains("SyncBatchNorm", StringComparison.Ordinal)) BatchNormCalls++;
            inner.SumInPlace(values, what);
        }

        public void Dispose() => inner.Dispose();
    }

    /// <summary>A job of one rank without MPI: every reduction leaves the values as they are.</summary>
    private sealed class OneRank : ICollectives
    {
        public int Rank => 0;

        public int Size => 1;

        public int LocalSize => 1;

        public TimeSpan CollectiveTimeout => TimeSpan.FromSeconds(60);

        public void Sum(Span<double> values, string what) { }

        public IPendingReduction StartSum(double[] send, double[] result, string what)
        {
            send.CopyTo(result, 0);
            return new Done();
        }

        public void Broadcast(Span<byte> values, int root, string what) { }

        public void Abort(string message, int exitCode) => throw new InvalidOperationException(message);

        public void Dispose() { }

        private sealed class Done : IPendingReduction
        {
            public bool Poll() => true;

            public void Wait() { }
        }
    }
}
