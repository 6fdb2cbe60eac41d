// Rows of dwconv_fused.cu, the fused decomposed depthwise convolution the model runs (SLaK's large kernel: M x 5,
// 5 x M and 5 x 5 branches from one read of the input): at every SLaK-T stage, batch 128, masks of density 0.6,
// the training forward (three branch outputs), the summed input gradient and the three weight gradients; the
// inference forward (only the sum written) dense at stages 1 and 4. Sampling as for the per-branch kernels (see
// Cases.Conv.cs): dwconv_fused_kernel is generic, dwconv_fused_wgrad_kernel is column-sampled (grid.x = channel).
// The rows run with the live-tap strip kernels off (FusedOnly), so they time the kernels they name at stages 1-2 too
// (Cases.Strip.cs times the strip kernels there). With --kernel, --shape, --branches and --density the same rows run
// at a user's shape (UserCases), for the strip kernels as well.
using Slak.Backends;
using Slak.Cuda.Kernels;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private enum FusedOp
    {
        Forward,
        ForwardSum,
        BackwardData,
        BackwardFilter,
    }

    private static IEnumerable<GpuCase> Fused()
    {
        const string g = "dwconv_fused";
        for (int stage = 0; stage < 4; stage++)
        {
            yield return Small(FusedCase(g, FusedOp.Forward, stage, 0.6), stage);
        }

        yield return FusedCase(g, FusedOp.ForwardSum, 0, 1.0);
        yield return Small(FusedCase(g, FusedOp.ForwardSum, 3, 1.0), 3);  // stage 4 at batch 128: the small-map kernel
        for (int stage = 0; stage < 4; stage++)
        {
            yield return Small(FusedCase(g, FusedOp.BackwardData, stage, 0.6), stage);
        }

        for (int stage = 0; stage < 4; stage++)
        {
            // Stages 3-4 (14x14, 7x7) at a training batch go to dwconv_small_wgrad.cu
            // (DwConvSmallWgradKernels.Applies); at reduced sizes (fewer than 32 images) or on an emulator library
            // without the instance the row runs the fused weight gradient under this name.
            var c = FusedCase(g, FusedOp.BackwardFilter, stage, 0.6);
            yield return stage < 2 ? c : c with
            {
                Name = "dwconv_small_wgrad_kernel", Op = c.Op + " (small-map kernel where its predicate takes the shape)",
                FallbackKernel = "dwconv_fused_wgrad_kernel",
            };
        }
    }

    /// <summary>Stages 3-4 (14x14, 7x7) at a training batch go to dwconv_small.cu (slak_plan_dwconv_small); at reduced
    /// sizes or on an emulator library without the instance the row runs the fused kernel under this name.</summary>
    private static GpuCase Small(GpuCase c, int stage) => stage < 2 ? c : c with
    {
        Name = "dwconv_small_kernel", Op = c.Op + " (small-map kernel where its plan takes the shape)",
        FallbackKernel = "dwconv_fused_kernel",
    };

    private static GpuCase FusedCase(string group, FusedOp op, string what, Action<CheckContext> run)
    {
        string kernel = op == FusedOp.BackwardFilter ? "dwconv_fused_wgrad_kernel" : "dwconv_fused_kernel";
        string name = op switch
        {
            FusedOp.Forward => "DecomposedDwConvForward",
            FusedOp.ForwardSum => "DecomposedDwConvForwardSum",
            FusedOp.BackwardData => "DecomposedDwConvBackwardData",
            _ => "DecomposedDwConvBackwardFilter (skip masked)",
        };
        var c = new GpuCase(kernel, group, $"{name}, {what}", run);
        return op != FusedOp.BackwardFilter ? c : c with
        {
            Sampling = SampleHandling.Columns,
            SampleNote = "per-chunk partials along grid.y: every chunk of sampled grid.x, finalize whole",
            Owner = ChannelOwner,
        };
    }

    /// <summary>The rows of one fused kernel at a user's shape (--kernel, --shape, --branches, --density):
    /// dwconv_fused_kernel gets the training forward, the inference sum and the input gradient,
    /// dwconv_fused_wgrad_kernel the weight gradient (masked taps skipped).</summary>
    public static IReadOnlyList<GpuCase> UserCases(CheckOptions o)
    {
        if (o.Shape is not { } shape || o.Branches is not { } branches)
            throw new ArgumentException($"--kernel {o.Kernel} needs --shape N,C,H,W and --branches KHxKW[,KHxKW...]");
        FusedOp[] convOps = [FusedOp.Forward, FusedOp.ForwardSum, FusedOp.BackwardData], wgradOps = [FusedOp.BackwardFilter];
        var (ops, strip) = o.Kernel switch
        {
            "dwconv_fused_kernel" => (convOps, false),
            "dwconv_fused_wgrad_kernel" => (wgradOps, false),
            DwConvStripKernels.Kernel => (convOps, true),
            DwConvStripKernels.WgradKernel => (wgradOps, true),
            _ => throw new ArgumentException($"--kernel must be one of {UserKernels}, got '{o.Kernel}'"),
        };
        (int, int)[] sizes = [.. branches];
        int b = shape[0], c = shape[1], h = shape[2], w = shape[3];
        return [.. ops.Select(op =>
        {
            var row = FusedCase("user", op, $"{Describe([.. shape])}", ctx =>
            {
                if (!strip)
                {
                    FusedOnly(() => RunFusedAt(ctx, op, b, c, h, w, sizes, o.Density));
                    return;
                }
                RequireStrip(ctx, op, b, c, h, w, sizes);
                RunFusedAt(ctx, op, b, c, h, w, sizes, o.Density);
            });
            return strip ? row with { Name = op == FusedOp.BackwardFilter ? DwConvStripKernels.WgradKernel : DwConvStripKernels.Kernel } : row;
        })];
    }

    /// <summary>The kernels --kernel accepts.</summary>
    public const string UserKernels =
        "dwconv_fused_kernel, dwconv_fused_wgrad_kernel, " + DwConvStripKernels.Kernel + ", " + DwConvStripKernels.WgradKernel;

    /// <summary>Runs <paramref name="run"/> with the live-tap strip kernels off, so that the depthwise launchers take
    /// the fused kernels at every shape: the rows named after dwconv_fused_kernel / dwconv_fused_wgrad_kernel time
    /// those kernels at stages 1-2 too, where the model's launchers run the strip kernels (the strip rows time
    /// them).</summary>
    private static void FusedOnly(Action run)
    {
        bool off = DwConvStripKernels.Off, wgradOff = DwConvStripKernels.WgradOff;
        DwConvStripKernels.Off = DwConvStripKernels.WgradOff = true;
        try
        {
            run();
        }
        finally
        {
            DwConvStripKernels.Off = off;
            DwConvStripKernels.WgradOff = wgradOff;
        }
    }

    private static GpuCase FusedCase(string group, FusedOp op, int stage, double density) =>
        FusedCase(group, op, $"stage {stage + 1}", ctx => RunFused(ctx, op, stage, density));

    private static void RunFused(CheckContext ctx, FusedOp op, int stage, double density)
    {
        var s = Sizes.For(ctx.Full);
        int m = s.M[stage], k = s.Small;
        FusedOnly(() => RunFusedAt(ctx, op, s.B, s.C[stage], s.H[stage], s.H[stage], [(m, k), (k, m), (k, k)], density));
    }

    private static void RunFusedAt(CheckContext ctx, FusedOp op, int b, int c, int h, int w, (int, int)[] sizes, double density)
    {
        int[] xs = [b, c, h, w];
        var x = ctx.Random(xs);
        var ws = sizes.Select(t => ctx.Random(c, 1, t.Item1, t.Item2)).ToArray();
        bool masked = density < 1;
        var ms = sizes.Select(t => ctx.FromArray(ctx.Mask((long)c * t.Item1 * t.Item2, density), c, 1, t.Item1, t.Item2)).ToArray();
        double flops = 2.0 * b * c * density * sizes.Sum(t => (double)Sizes.ValidTaps(h, t.Item1) * Sizes.ValidTaps(w, t.Item2));
        double plane = 4.0 * b * c * h * w;
        string shape = $"{Describe(xs)} {string.Join('+', sizes.Select(t => $"{t.Item1}x{t.Item2}"))} d={density:0.0}";
        IReadOnlyList<Tensor> W(IBackend be) => ws.Select(w => T(w, be)).ToArray();
        IReadOnlyList<Tensor?> M(IBackend be) => ms.Select(mk => masked ? T(mk, be) : null).ToArray();
        switch (op)
        {
            case FusedOp.Forward:
                ctx.Check(shape, flops, 4 * plane, [xs, xs, xs], (be, o) => be.DecomposedDwConvForward(T(x, be), W(be), M(be), o));
                break;
            case FusedOp.ForwardSum:
                ctx.Check(shape, flops, 2 * plane, [xs], (be, o) => be.DecomposedDwConvForwardSum(T(x, be), W(be), M(be), o[0]));
                break;
            case FusedOp.BackwardData:
            {
                var dys = sizes.Select(_ => ctx.Random(xs)).ToArray();
                ctx.Check(shape, flops, 4 * plane, [xs],
                    (be, o) => be.DecomposedDwConvBackwardData(dys.Select(d => (Tensor?)T(d, be)).ToArray(), W(be), M(be), o[0]));
                break;
            }

            default:
            {
                var dys = sizes.Select(_ => ctx.Random(xs)).ToArray();
                ctx.Check(shape, flops, 4 * plane, sizes.Select(t => new[] { c, 1, t.Item1, t.Item2 }).ToArray(),
                    (be, o) => be.DecomposedDwConvBackwardFilter(T(x, be), dys.Select(d => (Tensor?)T(d, be)).ToArray(), M(be),
                        o.Select(t => (Tensor?)t).ToArray()),
                    atol: 1e-3 + 2e-6 * b * h * w, rtol: 1e-3);
                break;
            }
        }
    }
}
