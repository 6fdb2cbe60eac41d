// Device memory of a training step by exact planning (issue 19, item 6), and the program that writes
// bench/results/memory.md from it.
//
// How a step uses memory (src/Slak/Tensors/TensorScope.cs, Autograd/AutogradEngine.cs): the trainer opens one
// TensorScope per step, so EVERY tensor the forward pass creates (each operator's output and saved statistics) stays
// allocated until the step ends; backward gradients are disposed as soon as the next node has consumed them, and
// kernel workspaces are freed before their launcher returns. Parameters, their gradients, AdamW's two moments and the
// sparse masks live across steps. So the peak of a step is
//     persistent + forward-retained + the largest set of backward temporaries alive at one time,
// where the first two are exact sums of allocator-rounded tensor sizes (enumerated below from the real model, built
// shape-only from the preset, one entry per tensor each operator allocates), and the third is bounded: at any point of
// the backward pass at most the pending residual gradient, the gradient being propagated, the operator's input
// gradient and, in the decomposed convolution, its three parked branch gradients and one accumulation are alive,
// which never exceeds TransientActivations (12) activations of the largest block map plus the largest workspace.
// The forward-retained sum is checked against the emulator's allocator (same model code, the emulator's rounding)
// by ForwardRetainedBytesMatchTheEmulatorAllocatorExactly; the table uses the GPU caching allocator's rounding
// (CachingAllocator.BucketSize).
using System.Diagnostics;
using System.Globalization;
using System.Text;
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;
using Slak.Models;
using Slak.NN;

namespace Slak.Tests.Cuda;

/// <summary>The planned device memory of one training step (bytes, allocator-rounded).</summary>
internal sealed record StepMemory(long Persistent, long ForwardRetained, long TransientBound, long Parameters)
{
    /// <summary>The planned peak: persistent + forward-retained + the backward transient bound.</summary>
    public long Peak => Persistent + ForwardRetained + TransientBound;
}

/// <summary>Exact planning of the tensors a training step of a SlakModel allocates (see the file header).</summary>
internal static class TrainingMemoryPlan
{
    /// <summary>Activations of the largest block map the backward temporaries can hold at once (upper bound).</summary>
    public const int TransientActivations = 12;

    /// <summary>Extra activations of the largest block map alive at once in a bf16 backward: the widened float32 copy
    /// of the 4C-wide GELU input the fused MLP's input gradient reads, and the rounded copy of its incoming gradient
    /// (CudaBackend.Bf16.cs, Bf16Backend.cs).</summary>
    public const int TransientActivationsBf16Extra = 5;

    /// <summary>The plan of a step; <paramref name="bf16"/>: under --precision bf16 on CUDA, where the activations
    /// the forward pass stores as bf16 are held as 16-bit values (docs/mixed-precision.md).</summary>
    public static StepMemory Plan(SlakModel model, int image, int n, bool sparse, Func<long, long> round, bool bf16 = false)
    {
        long F(long floats) => floats <= 0 ? 0 : round(floats * sizeof(float));
        // An activation stored as bf16: 2 bytes an element under bf16, float32 otherwise.
        long H(long values) => !bf16 ? F(values) : values <= 0 ? 0 : round(values * sizeof(ushort));
        long forward = 0, largestMap = 0;
        int s = image;
        for (int i = 0; i < 4; i++)
        {
            var down = (ModuleList)model.DownsampleLayers[i];
            for (int j = 0; j < down.Count; j++)
            {
                switch (down[j])
                {
                    case Conv2d conv:
                        s = conv.OutputSize(s);
                        forward += H((long)n * conv.OutChannels * s * s);                  // y
                        break;
                    case LayerNorm ln:
                        forward += H((long)n * ln.Channels * s * s) + 2 * F((long)n * s * s); // y, mean, rstd
                        break;
                }
            }
            var stage = (ModuleList)model.Stages[i];
            for (int j = 0; j < stage.Count; j++)
            {
                var blk = (SlakBlock)stage[j];
                long rows = (long)n * s * s, a = rows * blk.Dim;
                largestMap = Math.Max(largestMap, a);
                var branches = blk.LargeKernel.Branches.ToArray();
                forward += branches.Length * H(a);                                         // branch outputs (one node)
                if (blk.LargeKernel.Fused && ReparamLargeKernelConv.FusedBatchNormSum && branches.All(b => b.Bn is not null))
                    forward += F(a) + branches.Length * 2 * F(blk.Dim);                    // BatchNorm2dSum: y (float32), per branch mean / invstd
                else
                {
                    foreach (var b in branches)
                        if (b.Bn is not null) forward += H(a) + 2 * F(blk.Dim);            // BN y, save mean / invstd
                    forward += (branches.Length - 1) * F(a);                               // branch sums
                }
                forward += H(a) + 2 * F(rows);                                              // LayerNorm to channels-last: y, mean, rstd
                if (!global::Slak.F.MlpOneOperator) forward += 2 * H(4 * a);                             // pwconv1, GELU
                else if (!global::Slak.F.MlpRecompute) forward += H(4 * a);                              // the MLP as one operator keeps pwconv1's output only
                forward += H(a);                                                            // pwconv2
                if (blk.DropPath.Rate > 0) forward += F(n);                                 // DropPath factors
                forward += F(a);                                                            // layer scale, NCHW, DropPath, residual add: one output
            }
        }
        int c4 = model.Widths[3], classes = model.Config.NumClasses;
        forward += F((long)n * c4) + H((long)n * c4) + 2 * F(n) + H((long)n * classes);   // pool, head LN, logits

        long persistent = 0, parameters = 0;
        foreach (var (_, p) in model.NamedParameters())
        {
            parameters += p.Numel;
            persistent += 4 * F(p.Numel);                       // weight, gradient, AdamW exp_avg and exp_avg_sq
            if (sparse && p.Rank >= 2) persistent += F(p.Numel); // mask (every weight of rank >= 2: an upper bound)
        }
        foreach (var (_, b) in model.NamedBuffers()) persistent += F(b.Numel);          // BatchNorm running stats
        persistent += F((long)n * model.Config.InChans * image * image) + 2 * F((long)n * classes); // batch, targets, probs

        // Largest kernel workspace of the backward: column-sum partials are at most 256 chunks of 4C floats, the
        // fused weight gradient's at most 2048 blocks' worth of taps; both far below one activation map, so one
        // activation of the largest map covers them (counted in the bound). The patchify path of the stem and the
        // downsampling layers (Conv2dPatchifyKernels) holds P / dP and the permuted dy for one call: at most 1.4
        // activations of the largest map (the stem's weight gradient, (48 + 124) x N*56*56 floats), at a point of the
        // backward where only that layer's gradients are alive, so well inside the bound.
        long transient = (TransientActivations + (bf16 ? TransientActivationsBf16Extra : 0)) * F(largestMap);
        return new StepMemory(persistent, forward, transient, parameters);
    }
}

[TestFixture]
public sealed class PlanMemoryTests
{
    // The emulator's allocator and the model code are the real ones: the bytes in use grow across a training-mode
    // forward pass (inside its step's scope, with the graph recorded) by exactly the planned forward-retained sum
    // (with the emulator's rounding).
    [TestCase(true, false)]
    [TestCase(false, false)]
    [TestCase(true, true)]
    [TestCase(false, true)]
    public void ForwardRetainedBytesMatchTheEmulatorAllocatorExactly(bool fused, bool bf16)
    {
        var device = Support.TestDevices.Open("cuda-emu");
        var gpu = ((CudaBackend)BackendRegistry.For(device)).Gpu;
        var preset = ModelPresets.Get("slak_nano");
        const int n = 2;
        int size = preset.InputSize;
        var model = new SlakModel(preset.Config, ModuleInit.FromRandom(new SlakRandom(7), device));
        foreach (var m in model.NamedModules().Select(m => m.Module).OfType<ReparamLargeKernelConv>()) m.Fused = fused;
        model.Train();
        var rng = new Random(11);
        var data = new float[n * preset.Config.InChans * size * size];
        for (int i = 0; i < data.Length; i++) data[i] = (float)rng.NextDouble();
        var x = Tensor.FromArray(data, [n, preset.Config.InChans, size, size], device);
        long measured;
        // Tensors other tests left to the garbage collector give their device memory back when finalised (queued, and
        // returned at the allocator's next call): let that happen now, not in the middle of the measured forward pass.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using (Tensor.Zeros([1], device)) { } // an allocator call drains the queue
        using (TensorScope.Begin())
        using (MixedPrecision.Use(bf16 ? Slak.Precision.Bf16 : Slak.Precision.Fp32))
        {
            long before = gpu.MemoryStats.InUseBytes;
            _ = model.Forward(x);
            measured = gpu.MemoryStats.InUseBytes - before;
        }
        var shapes = new SlakModel(preset.Config, ModuleInit.ShapeOnly);
        foreach (var m in shapes.NamedModules().Select(m => m.Module).OfType<ReparamLargeKernelConv>()) m.Fused = fused;
        var planned = TrainingMemoryPlan.Plan(shapes, size, n, sparse: false, HostAllocator.RoundUp, bf16);
        Assert.That(measured, Is.EqualTo(planned.ForwardRetained),
                    $"slak_nano {size}px batch {n} fused={fused} bf16={bf16}: bytes the forward pass keeps (cuda-emu allocator)");
        if (bf16)
        {
            // The 16-bit activations really are smaller on the device: the float32 plan is the float32 measurement.
            long fp32 = TrainingMemoryPlan.Plan(shapes, size, n, sparse: false, HostAllocator.RoundUp).ForwardRetained;
            TestContext.Out.WriteLine($"slak_nano {size}px batch {n} fused={fused}: forward keeps {measured} B under bf16, {fp32} B under fp32");
            Assert.That(measured, Is.LessThan(fp32 * 0.75), "bf16 storage keeps well under 3/4 of the float32 bytes");
        }
    }

    private const long ContextReserve = 1_000_000_000;

    // The program of bench/results/memory.md (run on demand:
    //   SLAK_WRITE_MEMORY_MD=1 dotnet test tests/Slak.Tests -c Release --filter "FullyQualifiedName~WriteMemoryTable").
    [Test, Explicit("writes bench/results/memory.md")]
    public void WriteMemoryTable()
    {
        string root = FindRepoRoot();
        string path = Path.Combine(root, "bench", "results", "memory.md");
        var sb = new StringBuilder();
        string commit = Git(root, "rev-parse --short HEAD");
        sb.AppendLine("# Device memory of a training step (SLaK-T / S / B, 224 px)");
        sb.AppendLine();
        sb.AppendLine($"Produced by `PlanMemoryTests.WriteMemoryTable` (tests/Slak.Tests/Cuda/PlanMemoryTests.cs) on " +
                      $"{Environment.MachineName} ({Environment.ProcessorCount} cores, no GPU), " +
                      $"{DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC, commit {commit}:");
        sb.AppendLine("`SLAK_WRITE_MEMORY_MD=1 dotnet test tests/Slak.Tests -c Release --filter \"FullyQualifiedName~WriteMemoryTable\"`.");
        sb.AppendLine();
        sb.AppendLine("Method: exact planning, not a measurement on a GPU. Every tensor a training step allocates is " +
                      "enumerated from the real model (built shape-only from the preset) and rounded by the caching " +
                      "allocator's buckets (`CachingAllocator.BucketSize`). The trainer keeps every forward tensor " +
                      "until the step ends (one `TensorScope` per step), so the peak is *persistent* (weights, " +
                      "gradients, AdamW moments, sparse masks, BatchNorm buffers, the batch) + *forward-retained* " +
                      "(exact; the same sum is checked against the emulator's allocator in CI by " +
                      "`PlanMemoryTests.ForwardRetainedBytesMatchTheEmulatorAllocatorExactly`) + a *backward bound* " +
                      $"({TrainingMemoryPlan.TransientActivations} activations of the largest block map, an upper bound " +
                      "of the gradients and workspaces alive at once during backward). Fused decomposed kernels, " +
                      "float32, sparse masks on (40 % sparsity as in the paper presets). Not included: the CUDA " +
                      "context and cuBLAS workspace (about 0.5-1 GB outside the allocator), an EMA copy of the " +
                      "weights (+1x parameters when enabled), fragmentation of the cache across steps.");
        sb.AppendLine();
        sb.AppendLine("The bf16 columns: `--precision bf16` on CUDA, where the activations the forward pass stores as bf16 " +
                      "(GEMM, convolution, depthwise, GELU, LayerNorm and BatchNorm outputs, the logits) are held as " +
                      "16-bit values until the backward has read them; the residual stream, the branch sums, the norms' " +
                      "statistics, the pooled features, gradients and everything persistent stay float32 " +
                      "(docs/mixed-precision.md). Its forward-retained sum is checked against the emulator's allocator " +
                      "the same way; its backward bound adds " +
                      $"{TrainingMemoryPlan.TransientActivationsBf16Extra} activations for the float32 copies a bf16 " +
                      "backward makes for one call.");
        sb.AppendLine();
        sb.AppendLine("| model | params | batch | persistent | forward-retained | backward bound | peak (planned) | 24 GB | 80 GB | 141 GB | bf16 forward-retained | bf16 peak | bf16 24 GB | bf16 80 GB |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|:-:|:-:|:-:|---:|---:|:-:|:-:|");
        foreach (string name in new[] { "slak_tiny", "slak_small", "slak_base" })
        {
            var model = new SlakModel(ModelPresets.Get(name).Config, ModuleInit.ShapeOnly);
            foreach (int batch in new[] { 32, 64, 128 })
            {
                var m = TrainingMemoryPlan.Plan(model, 224, batch, sparse: true, CachingAllocator.BucketSize);
                var h = TrainingMemoryPlan.Plan(model, 224, batch, sparse: true, CachingAllocator.BucketSize, bf16: true);
                static string Gb(long b) => (b / 1e9).ToString("0.0", CultureInfo.InvariantCulture) + " GB";
                static string Fits(long peak, double gb) => peak + ContextReserve <= gb * 1e9 ? "yes" : "no";
                sb.AppendLine($"| {name} | {m.Parameters / 1e6:0.0} M | {batch} | {Gb(m.Persistent)} | {Gb(m.ForwardRetained)} | " +
                              $"{Gb(m.TransientBound)} | {Gb(m.Peak)} | {Fits(m.Peak, 24)} | {Fits(m.Peak, 80)} | {Fits(m.Peak, 141)} | " +
                              $"{Gb(h.ForwardRetained)} | {Gb(h.Peak)} | {Fits(h.Peak, 24)} | {Fits(h.Peak, 80)} |");
            }
        }
        sb.AppendLine();
        sb.AppendLine("\"Fits\": the planned peak plus 1 GB for the CUDA context and cuBLAS is at most the card's nominal " +
                      "memory (GB = 10^9 bytes; an \"80 GB\" card has 80 GiB, a little more). A batch that does not fit " +
                      "can run as micro-batches with gradient accumulation (activations scale linearly with the batch; " +
                      "persistent memory does not).");
        if (Environment.GetEnvironmentVariable("SLAK_WRITE_MEMORY_MD") == "1") File.WriteAllText(path, sb.ToString());
        TestContext.Out.WriteLine(sb.ToString());
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Slak.Cuda.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new DirectoryNotFoundException("repository root (Slak.Cuda.sln) not found");
    }

    private static string Git(string root, string args)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("git", args)
            {
                WorkingDirectory = root, RedirectStandardOutput = true, UseShellExecute = false,
            })!;
            string s = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return s.Length > 0 ? s : "unknown";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }
}
