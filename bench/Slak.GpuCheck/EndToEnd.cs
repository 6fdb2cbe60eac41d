// End-to-end rows: SLaK-T training steps at batch 64 and 128 (forward, soft-target cross-entropy, backward, AdamW)
// and SLaK-T inference at batch 128, on the fused large-kernel path (ReparamLargeKernelConv.Fused, the default), at
// 224 px with random weights (reference initialization, seed 7) and random images; "tiny" runs slak_nano at 32 px
// with batches 4 / 8 / 8. A row reports img/s (median step time over --repeats steps, capped at 10, after one
// warm-up step) and the device's peak memory in use (the caching allocator's count since the process started: each
// row is its own group, so under --isolate process that is the row's own peak). The inference row also compares the
// logits of its first 4 images with the CPU backend running the same weights; the training rows require a finite
// loss. Not run under --blocks sample (they launch whole grids by design).
using Slak.Autograd;
using Slak.Backends.Cuda;
using Slak.Models;
using Slak.NN;
using Slak.Optim;

namespace Slak.GpuCheck;

/// <summary>The end-to-end cases.</summary>
internal static class EndToEnd
{
    private const int ParityImages = 4;

    public static IEnumerable<GpuCase> Cases(bool full)
    {
        string model = full ? "slak_tiny" : "slak_nano";
        int[] trainBatches = full ? [64, 128] : [4, 8];
        int inferBatch = full ? 128 : 8;
        foreach (int b in trainBatches)
        {
            yield return new GpuCase($"e2e {model} train b{b}", $"e2e-train-{b}", "train step (fused, AdamW)",
                ctx => Train(ctx, model, b))
            { Sampling = SampleHandling.Skip, SampleNote = "end to end: whole grids" };
        }

        yield return new GpuCase($"e2e {model} infer b{inferBatch}", $"e2e-infer-{inferBatch}", "inference forward (fused)",
            ctx => Infer(ctx, model, inferBatch))
        { Sampling = SampleHandling.Skip, SampleNote = "end to end: whole grids" };

        // Mixed precision (docs/mixed-precision.md) at the batch 128, on a GPU only (the full scale): SLaK-T
        // training and inference under tf32 and bf16; targets on one H200: >= 2,500 img/s bf16 training, >= 8,000 bf16
        // inference. Their inference rows compare with the CPU under the same precision (tf32 is fp32 there), loosely.
        if (!full) yield break;
        foreach (var precision in new[] { Precision.Tf32, Precision.Bf16 })
        {
            string p = PrecisionNames.Name(precision);
            yield return new GpuCase($"e2e {model} train b128 {p}", $"e2e-train-128-{p}", $"train step (fused, AdamW), --precision {p}",
                ctx => Train(ctx, model, 128, precision))
            { Sampling = SampleHandling.Skip, SampleNote = "end to end: whole grids" };
            yield return new GpuCase($"e2e {model} infer b128 {p}", $"e2e-infer-128-{p}", $"inference forward (fused), --precision {p}",
                ctx => Infer(ctx, model, 128, precision))
            { Sampling = SampleHandling.Skip, SampleNote = "end to end: whole grids" };
        }
    }

    private static (SlakModel Model, int Size) Build(string presetName, Device device)
    {
        var preset = ModelPresets.Get(presetName);
        var model = new SlakModel(preset.Config, ModuleInit.FromRandom(new SlakRandom(7), device));
        foreach (var m in model.NamedModules().Select(x => x.Module).OfType<ReparamLargeKernelConv>())
        {
            m.Fused = true;
        }

        return (model, preset.InputSize);
    }

    private static void Train(CheckContext ctx, string presetName, int batch, Precision precision = Precision.Fp32)
    {
        using var arithmetic = MixedPrecision.Use(precision);
        var (model, size) = Build(presetName, ctx.Gpu.Device);
        try
        {
            model.Train();
            var optimizer = new AdamW(model.NamedParameters(), lr: 1e-4f);
            var x = ctx.Own(Tensor.RandN(ctx.Rng, [batch, model.Config.InChans, size, size], ctx.Gpu.Device));
            int classes = model.Config.NumClasses;
            var targets = ctx.Own(F.SmoothedTargets(Enumerable.Range(0, batch).Select(i => i * 31 % classes).ToArray(),
                classes, 0.1f, ctx.Gpu.Device));
            float lastLoss = float.NaN;
            void Step()
            {
                using (TensorScope.Begin())
                {
                    var loss = F.SoftTargetCrossEntropy(model.Forward(x), targets);
                    lastLoss = loss.Item();
                    loss.Backward();
                }

                using (TensorScope.Begin())
                using (GradMode.NoGrad())
                {
                    optimizer.Step();
                    model.ZeroGrad();
                }
            }

            double ms = ctx.Time(Step, Math.Min(ctx.Options.Repeats, 10));
            var stats = ctx.Gpu.Gpu.MemoryStats;
            bool finite = float.IsFinite(lastLoss);
            ctx.Result = new RowResult(ctx.Case.Name, ctx.Case.Op, finite ? RowStatus.Ok : RowStatus.Fail)
            {
                Shape = $"({batch},{model.Config.InChans},{size},{size})",
                Ms = ms,
                Note = $"{batch * 1000.0 / ms:0.0} img/s, peak {stats.PeakInUseBytes / (double)(1L << 30):0.00} GiB in use, loss {lastLoss:0.000}" +
                       (finite ? "" : " (not finite)"),
            };
        }
        finally
        {
            Release(model);
        }
    }

    private static void Infer(CheckContext ctx, string presetName, int batch, Precision precision = Precision.Fp32)
    {
        using var arithmetic = MixedPrecision.Use(precision);
        var (model, size) = Build(presetName, ctx.Gpu.Device);
        var (cpuModel, _) = Build(presetName, Device.Cpu);
        try
        {
            model.Eval();
            cpuModel.Eval();
            var hostImages = ctx.Own(Tensor.RandN(ctx.Rng, [batch, model.Config.InChans, size, size], Device.Cpu));
            var x = ctx.Own(hostImages.To(ctx.Gpu.Device));
            float[] logits = [];
            void Forward()
            {
                using (TensorScope.Begin())
                using (GradMode.NoGrad())
                {
                    logits = model.Forward(x).ToArray();
                }
            }

            double ms = ctx.Time(Forward, Math.Min(ctx.Options.Repeats, 10));
            int n = Math.Min(ParityImages, batch), classes = model.Config.NumClasses;
            float[] expected;
            using (TensorScope.Begin())
            using (GradMode.NoGrad())
            {
                var slice = Tensor.FromArray(hostImages.ToArray().AsSpan(0, n * model.Config.InChans * size * size), [n, model.Config.InChans, size, size], Device.Cpu);
                expected = cpuModel.Forward(slice).ToArray();
            }

            double scale = expected.Max(Math.Abs) + 1e-3;
            // fp32: 1e-3; tf32 against the fp32 CPU and bf16 (8-bit mantissas through 12 blocks): 5e-2.
            double tolerance = precision == Precision.Fp32 ? 1e-3 : 5e-2;
            var r = OutputCompare.Compare(expected, logits.AsSpan(0, n * classes), [], sampled: false, tolerance * scale, tolerance);
            var stats = ctx.Gpu.Gpu.MemoryStats;
            ctx.Result = new RowResult(ctx.Case.Name, ctx.Case.Op, r.Ok(false) ? RowStatus.Ok : RowStatus.Fail)
            {
                Shape = $"({batch},{model.Config.InChans},{size},{size})",
                Ms = ms,
                MaxAbs = r.MaxAbs,
                MaxRel = r.MaxRel,
                Compared = r.Compared,
                Note = $"{batch * 1000.0 / ms:0.0} img/s, peak {stats.PeakInUseBytes / (double)(1L << 30):0.00} GiB in use; " +
                       $"logits of {n} images vs CPU" + (r.Bad > 0 ? $": {r.Bad} differ" : ""),
            };
        }
        finally
        {
            Release(model);
            Release(cpuModel);
        }
    }

    private static void Release(Module model)
    {
        foreach (var (_, t) in model.StateDict())
        {
            if (!t.IsDisposed) t.Dispose();
        }
    }
}
