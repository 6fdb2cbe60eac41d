// Rows of norm.cu, loss.cu and optim.cu at SLaK-T shapes: LayerNorm over channels-last rows (the block's norm: the
// warp-per-row kernels at every stage's rows; the block-per-row kernels on stage-4 rows of width 1,030),
// channels-first LayerNorm (the downsample norm before stage 2), BatchNorm of a large-kernel branch (stage 1), the loss
// on (B, 1000) logits, AdamW on the largest weight (stage-4 pwconv, 3992 x 998, masked at density 0.6). Backward inputs
// (mean, 1/std) come from the CPU forward. Sampling: the forward kernels and the per-row / per-pixel backward kernels
// write each output element from one block (generic); the parameter-gradient kernels accumulate over every row or pixel
// (per chunk, then finalized): they run whole (the warp-per-row backward writes dx and its partials from the same
// blocks: it runs whole), while the data-gradient kernel of the same operation is sampled. BatchNorm's partial sums and
// their per-channel finalize run whole and its element pass (batchnorm_affine_kernel, batchnorm_bwd_dx_kernel: one
// block per 8192 elements) is sampled. The loss kernels have one block per row of a 128-row batch (whole: 128 blocks).
// AdamW updates in place (InPlace). PyTorch's layer_norm / batch_norm at every stage runs beside these rows in
// bench/gpu/run.sh (bench/torch/norm_peer.py).
using Slak.Backends;
using Slak.Backends.Cpu;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private static IEnumerable<GpuCase> Norms()
    {
        const string g = "norm";
        // The warp-per-row kernels: one row class per SLaK-T stage (widths 124 / 249 / 499 / 998 at
        // maps 56 / 28 / 14 / 7).
        string[] classes = ["128", "256", "512", "1024"];
        for (int i = 0; i < classes.Length; i++)
        {
            int stage = i;
            yield return new GpuCase($"layernorm_rows{classes[i]}_fwd_kernel", g, "LayerNormLastDim", ctx =>
            {
                var (rows, c, x, w, b) = LnStageInputs(ctx, stage);
                ctx.Check($"({rows},{c})", 8.0 * rows * c, 8.0 * rows * c, [[rows, c], [rows], [rows]],
                    (be, o) => be.LayerNormLastDim(T(x, be), T(w, be), T(b, be), 1e-6f, o[0], o[1], o[2]));
            });
        }
        GpuCase LnRowsBackward(string kernel, int stage) => new(kernel, g, "LayerNormLastDimBackward", ctx =>
        {
            var (rows, c, x, w, b) = LnStageInputs(ctx, stage);
            CheckLnRowsBackward(ctx, rows, c, x, w, b);
        })
        {
            Sampling = SampleHandling.Whole,
            SampleNote = "dx and the per-chunk parameter partials come from the same blocks: runs whole",
        };
        for (int i = 0; i < classes.Length; i++) yield return LnRowsBackward($"layernorm_rows{classes[i]}_bwd_kernel", i);
        yield return LnRowsBackward("layernorm_param_finalize_kernel", 0);

        // Rows wider than 1,024 (the block-per-row kernels): stage-4 rows at a width of 1,030.
        yield return new GpuCase("layernorm_fwd_kernel", g, "LayerNormLastDim (wide)", ctx =>
        {
            var (rows, c, x, w, b) = LnWideInputs(ctx);
            ctx.Check($"({rows},{c})", 8.0 * rows * c, 8.0 * rows * c, [[rows, c], [rows], [rows]],
                (be, o) => be.LayerNormLastDim(T(x, be), T(w, be), T(b, be), 1e-6f, o[0], o[1], o[2]));
        });
        GpuCase LnBackward(string kernel) => new(kernel, g, "LayerNormLastDimBackward (wide)", ctx =>
        {
            var (rows, c, x, w, b) = LnWideInputs(ctx);
            CheckLnRowsBackward(ctx, rows, c, x, w, b);
        })
        {
            SampledKernels = ["layernorm_bwd_data_kernel"],
            SampleNote = "parameter partials accumulate over row chunks: they run whole",
        };
        yield return LnBackward("layernorm_bwd_data_kernel");
        yield return LnBackward("layernorm_bwd_param_partial_kernel");

        yield return new GpuCase("layernorm_cf_fwd_kernel", g, "LayerNormChannelsFirst", ctx =>
        {
            var (shape, x, w, b) = CfInputs(ctx);
            long n = x.Cpu.Numel;
            int[] stat = [shape[0], shape[2], shape[3]];
            ctx.Check(Describe(shape), 8.0 * n, 8.0 * n, [shape, stat, stat],
                (be, o) => be.LayerNormChannelsFirst(T(x, be), T(w, be), T(b, be), 1e-6f, o[0], o[1], o[2]));
        });
        GpuCase CfBackward(string kernel) => new(kernel, g, "LayerNormChannelsFirstBackward", ctx =>
        {
            var (shape, x, w, b) = CfInputs(ctx);
            int[] stat = [shape[0], shape[2], shape[3]];
            var y = ctx.Own(Tensor.Empty(shape, Device.Cpu));
            var mean = ctx.Own(Tensor.Empty(stat, Device.Cpu));
            var rstd = ctx.Own(Tensor.Empty(stat, Device.Cpu));
            CpuBackend.Instance.LayerNormChannelsFirst(x.Cpu, w.Cpu, b.Cpu, 1e-6f, y, mean, rstd);
            var m = ctx.FromArray(mean.ToArray(), stat);
            var r = ctx.FromArray(rstd.ToArray(), stat);
            var dy = ctx.Random(shape);
            long n = x.Cpu.Numel;
            ctx.Check(Describe(shape), 12.0 * n, 12.0 * n, [shape, [shape[1]], [shape[1]]],
                (be, o) => be.LayerNormChannelsFirstBackward(T(x, be), T(w, be), T(m, be), T(r, be), T(dy, be), o[0], o[1], o[2]),
                atol: 1e-3 + 1e-6 * n / shape[1], rtol: 1e-3);
        })
        {
            SampledKernels = ["layernorm_cf_bwd_data_kernel"],
            SampleNote = "parameter gradient: partials per (image, 1,024-pixel chunk) and their finalize, run whole",
        };
        yield return CfBackward("layernorm_cf_bwd_data_kernel");
        yield return CfBackward("layernorm_cf_bwd_param_partial_kernel");

        GpuCase BnTrain(string kernel) => new(kernel, g, "BatchNormTrain", ctx =>
        {
            var (shape, x, w, b) = BnInputs(ctx);
            var rm = ctx.Random(shape[1]);
            var rv = ctx.FromArray(Enumerable.Repeat(1f, shape[1]).ToArray(), shape[1]);
            long n = x.Cpu.Numel;
            ctx.Check(Describe(shape), 8.0 * n, 12.0 * n, [shape, [shape[1]], [shape[1]]],
                (be, o) => be.BatchNormTrain(T(x, be), T(w, be), T(b, be), T(rm, be), T(rv, be), 0.1f, 1e-5f, o[0], o[1], o[2]),
                atol: 1e-3, rtol: 1e-3);
        })
        {
            SampledKernels = ["batchnorm_affine_kernel"],
            SampleNote = "statistics: float64 partials per (channel, chunk) and the per-channel finalize, run whole",
        };
        yield return BnTrain("batchnorm_stats_partial_kernel");
        yield return BnTrain("batchnorm_stats_finalize_kernel");
        yield return BnTrain("batchnorm_affine_kernel");
        yield return new GpuCase("batchnorm_eval_coef_kernel", g, "BatchNormEval", ctx =>
        {
            var (shape, x, w, b) = BnInputs(ctx);
            var rm = ctx.Random(shape[1]);
            var rv = ctx.FromArray(Enumerable.Range(0, shape[1]).Select(i => 0.5f + (i % 7) / 7f).ToArray(), shape[1]);
            long n = x.Cpu.Numel;
            ctx.Check(Describe(shape), 2.0 * n, 8.0 * n, [shape],
                (be, o) => be.BatchNormEval(T(x, be), T(w, be), T(b, be), T(rm, be), T(rv, be), 1e-5f, o[0]));
        })
        {
            SampledKernels = ["batchnorm_affine_kernel"],
            SampleNote = "coefficients: one thread per channel, run whole",
        };
        GpuCase BnBackward(string kernel) => new(kernel, g, "BatchNormBackward", ctx =>
        {
            var (shape, x, w, b) = BnInputs(ctx);
            int c = shape[1];
            var y = ctx.Own(Tensor.Empty(shape, Device.Cpu));
            var mean = ctx.Own(Tensor.Empty([c], Device.Cpu));
            var inv = ctx.Own(Tensor.Empty([c], Device.Cpu));
            using (var rm = Tensor.Zeros(c)) using (var rv = Tensor.Ones([c], Device.Cpu))
            {
                CpuBackend.Instance.BatchNormTrain(x.Cpu, w.Cpu, b.Cpu, rm, rv, 0.1f, 1e-5f, y, mean, inv);
            }

            var m = ctx.FromArray(mean.ToArray(), c);
            var s = ctx.FromArray(inv.ToArray(), c);
            var dy = ctx.Random(shape);
            long n = x.Cpu.Numel;
            ctx.Check(Describe(shape), 10.0 * n, 12.0 * n, [shape, [c], [c]],
                (be, o) => be.BatchNormBackward(T(x, be), T(w, be), T(m, be), T(s, be), T(dy, be), o[0], o[1], o[2]),
                atol: 1e-3 + 1e-6 * n / c, rtol: 1e-3);
        })
        {
            SampledKernels = ["batchnorm_bwd_dx_kernel"],
            SampleNote = "parameter gradients: float64 partials per (channel, chunk) and the finalize, run whole",
        };
        yield return BnBackward("batchnorm_bwd_partial_kernel");
        yield return BnBackward("batchnorm_bwd_finalize_kernel");
        yield return BnBackward("batchnorm_bwd_dx_kernel");
    }

    private static IEnumerable<GpuCase> LossAndOptimizer()
    {
        yield return new GpuCase("softmax_xent_fwd_kernel", "loss", "SoftmaxCrossEntropy", ctx =>
        {
            var (rows, k, logits, targets) = LossInputs(ctx);
            ctx.Check($"({rows},{k})", 4.0 * rows * k, 12.0 * rows * k, [[rows, k], [1]],
                (be, o) => be.SoftmaxCrossEntropy(T(logits, be), T(targets, be), o[0], o[1]));
        }) { Sampling = SampleHandling.Whole, SampleNote = "one block per row; the loss sums every row" };
        yield return new GpuCase("softmax_xent_bwd_kernel", "loss", "SoftmaxCrossEntropyBackward", ctx =>
        {
            var (rows, k, logits, targets) = LossInputs(ctx);
            var probs = ctx.Own(Tensor.Empty([rows, k], Device.Cpu));
            using (var loss = Tensor.Empty([1], Device.Cpu))
            {
                CpuBackend.Instance.SoftmaxCrossEntropy(logits.Cpu, targets.Cpu, probs, loss);
            }

            var p = ctx.FromArray(probs.ToArray(), rows, k);
            var gradLoss = ctx.FromArray([1f], 1);
            ctx.Check($"({rows},{k})", 2.0 * rows * k, 12.0 * rows * k, [[rows, k]],
                (be, o) => be.SoftmaxCrossEntropyBackward(T(p, be), T(targets, be), T(gradLoss, be), o[0]), atol: 1e-6);
        });
        yield return new GpuCase("adamw_kernel", "optim", "AdamWStep (masked, in place)", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int rows = 4 * s.C[3], cols = s.C[3];
            int[] shape = [rows, cols];
            long n = (long)rows * cols;
            var grad = ctx.Random(shape);
            var mask = ctx.FromArray(ctx.Mask(n, 0.6), shape);
            float[] p0 = ctx.Random(shape).Cpu.ToArray();
            float[] m0 = ctx.Random(shape).Cpu.ToArray().Select(v => 0.1f * v).ToArray();
            float[] v0 = ctx.Random(shape).Cpu.ToArray().Select(v => 0.01f * v * v).ToArray();
            var hyper = new AdamWHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f, 7);
            ctx.Check(Describe(shape), 16.0 * n, 24.0 * n, [shape, shape, shape],
                (be, o) => be.AdamWStep(o[0], T(grad, be), o[1], o[2], T(mask, be), hyper, maskMoments: true),
                atol: 1e-5, rtol: 1e-4, initial: [p0, m0, v0]);
        }) { Sampling = SampleHandling.InPlace, SampleNote = "in place: compared where changed" };
    }

    private static (int Rows, int C, (Tensor Cpu, Tensor Gpu) X, (Tensor Cpu, Tensor Gpu) W, (Tensor Cpu, Tensor Gpu) B) LnInputs(CheckContext ctx)
    {
        var s = Sizes.For(ctx.Full);
        int rows = s.B * s.H[0] * s.H[0], c = s.C[0];
        return (rows, c, ctx.Random(rows, c), ctx.Random(c), ctx.Random(c));
    }

    /// <summary>LayerNormLastDimBackward on (rows, c) inputs: mean and 1/std from the CPU forward, dy random.</summary>
    private static void CheckLnRowsBackward(CheckContext ctx, int rows, int c, (Tensor Cpu, Tensor Gpu) x,
                                            (Tensor Cpu, Tensor Gpu) w, (Tensor Cpu, Tensor Gpu) b)
    {
        var stats = ctx.Own(Tensor.Empty([rows, c], Device.Cpu));
        var mean = ctx.Own(Tensor.Empty([rows], Device.Cpu));
        var rstd = ctx.Own(Tensor.Empty([rows], Device.Cpu));
        CpuBackend.Instance.LayerNormLastDim(x.Cpu, w.Cpu, b.Cpu, 1e-6f, stats, mean, rstd);
        var m = ctx.FromArray(mean.ToArray(), rows);
        var r = ctx.FromArray(rstd.ToArray(), rows);
        var dy = ctx.Random(rows, c);
        ctx.Check($"({rows},{c})", 12.0 * rows * c, 12.0 * rows * c, [[rows, c], [c], [c]],
            (be, o) => be.LayerNormLastDimBackward(T(x, be), T(w, be), T(m, be), T(r, be), T(dy, be), o[0], o[1], o[2]),
            atol: 1e-3 + 1e-6 * rows, rtol: 1e-3);
    }

    // Rows of the block's LayerNorm at stage `stage`: SLaK-T's width at either scale (the row class is the kernel).
    private static (int Rows, int C, (Tensor Cpu, Tensor Gpu) X, (Tensor Cpu, Tensor Gpu) W, (Tensor Cpu, Tensor Gpu) B) LnStageInputs(CheckContext ctx, int stage)
    {
        var s = Sizes.For(ctx.Full);
        int c = Sizes.For(true).C[stage];
        int rows = s.B * s.H[stage] * s.H[stage];
        return (rows, c, ctx.Random(rows, c), ctx.Random(c), ctx.Random(c));
    }

    private static (int Rows, int C, (Tensor Cpu, Tensor Gpu) X, (Tensor Cpu, Tensor Gpu) W, (Tensor Cpu, Tensor Gpu) B) LnWideInputs(CheckContext ctx)
    {
        var s = Sizes.For(ctx.Full);
        const int c = 1030;
        int rows = s.B * s.H[3] * s.H[3];
        return (rows, c, ctx.Random(rows, c), ctx.Random(c), ctx.Random(c));
    }

    private static (int[] Shape, (Tensor Cpu, Tensor Gpu) X, (Tensor Cpu, Tensor Gpu) W, (Tensor Cpu, Tensor Gpu) B) CfInputs(CheckContext ctx)
    {
        var s = Sizes.For(ctx.Full);
        int[] shape = [s.B, s.C[0], s.H[0], s.H[0]];
        return (shape, ctx.Random(shape), ctx.Random(s.C[0]), ctx.Random(s.C[0]));
    }

    private static (int[] Shape, (Tensor Cpu, Tensor Gpu) X, (Tensor Cpu, Tensor Gpu) W, (Tensor Cpu, Tensor Gpu) B) BnInputs(CheckContext ctx) =>
        CfInputs(ctx);

    private static (int Rows, int K, (Tensor Cpu, Tensor Gpu) Logits, (Tensor Cpu, Tensor Gpu) Targets) LossInputs(CheckContext ctx)
    {
        var s = Sizes.For(ctx.Full);
        int rows = s.B, k = s.Classes;
        var logits = ctx.Random(rows, k);
        int[] labels = Enumerable.Range(0, rows).Select(i => (i * 7919) % k).ToArray();
        using var t = F.SmoothedTargets(labels, k, 0.1f, Device.Cpu);
        return (rows, k, logits, ctx.FromArray(t.ToArray(), rows, k));
    }
}
