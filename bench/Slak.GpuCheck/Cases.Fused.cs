// Rows of dwconv_fused.cu, the fused decomposed depthwise convolution the model runs (SLaK's large kernel: M x 5,
// 5 x M and 5 x 5 branches from one read of the input): at every SLaK-T stage, batch 128, masks of density 0.6,
// the training forward (three branch outputs), the summed input gradient and the three weight gradients; the
// inference forward (only the sum written) dense at stages 1 and 4. Sampling as for the per-branch kernels (see
// Cases.Conv.cs): dwconv_fused_kernel is generic, dwconv_fused_wgrad_kernel is column-sampled (grid.x = channel).
using Slak.Backends;

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
            yield return FusedCase(g, FusedOp.Forward, stage, 0.6);
        }

        yield return FusedCase(g, FusedOp.ForwardSum, 0, 1.0);
        yield return FusedCase(g, FusedOp.ForwardSum, 3, 1.0);
        for (int stage = 0; stage < 4; stage++)
        {
            yield return FusedCase(g, FusedOp.BackwardData, stage, 0.6);
        }

        for (int stage = 0; stage < 4; stage++)
        {
            yield return FusedCase(g, FusedOp.BackwardFilter, stage, 0.6);
        }
    }

    private static GpuCase FusedCase(string group, FusedOp op, int stage, double density)
    {
        string kernel = op == FusedOp.BackwardFilter ? "dwconv_fused_wgrad_kernel" : "dwconv_fused_kernel";
        string name = op switch
        {
            FusedOp.Forward => "DecomposedDwConvForward",
            FusedOp.ForwardSum => "DecomposedDwConvForwardSum",
            FusedOp.BackwardData => "DecomposedDwConvBackwardData",
            _ => "DecomposedDwConvBackwardFilter (skip masked)",
        };
        var c = new GpuCase(kernel, group, $"{name}, stage {stage + 1}", ctx => RunFused(ctx, op, stage, density));
        return op != FusedOp.BackwardFilter ? c : c with
        {
            Sampling = SampleHandling.Columns,
            SampleNote = "per-chunk partials along grid.y: every chunk of sampled grid.x, finalize whole",
            Owner = ChannelOwner,
        };
    }

    private static void RunFused(CheckContext ctx, FusedOp op, int stage, double density)
    {
        var s = Sizes.For(ctx.Full);
        int b = s.B, c = s.C[stage], h = s.H[stage], m = s.M[stage], k = s.Small;
        var sizes = new[] { (m, k), (k, m), (k, k) };
        int[] xs = [b, c, h, h];
        var x = ctx.Random(xs);
        var ws = sizes.Select(t => ctx.Random(c, 1, t.Item1, t.Item2)).ToArray();
        bool masked = density < 1;
        var ms = sizes.Select(t => ctx.FromArray(ctx.Mask((long)c * t.Item1 * t.Item2, density), c, 1, t.Item1, t.Item2)).ToArray();
        double flops = 2.0 * b * c * density * sizes.Sum(t => (double)Sizes.ValidTaps(h, t.Item1) * Sizes.ValidTaps(h, t.Item2));
        double plane = 4.0 * b * c * h * h;
        string shape = $"{Describe(xs)} {m}x{k}+{k}x{m}+{k}x{k} d={density:0.0}";
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
                    atol: 1e-3 + 2e-6 * b * h * h, rtol: 1e-3);
                break;
            }
        }
    }
}
