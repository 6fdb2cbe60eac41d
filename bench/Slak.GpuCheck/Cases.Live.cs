// Rows of dwconv_live.cu, the live-tap register-tiled depthwise kernel (issue 20's third forward/input-gradient body;
// no production launch uses it yet, so it is reached through its launcher): the long branch (M x 5) of SLaK-T's
// stages 1 and 2, batch 128, a mask of density 0.6, forward and input gradient (the flipped kernel), against the CPU
// backend's one-branch decomposed forward / input gradient. Every output element is written by one block, so the
// generic poison comparison applies under --blocks sample.
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Kernels;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private static IEnumerable<GpuCase> Live()
    {
        const string g = "dwconv_live";
        foreach (bool flip in new[] { false, true })
            for (int stage = 0; stage < 2; stage++)
            {
                string op = flip ? "DwConvLiveKernels.Forward (flipped: input gradient)" : "DwConvLiveKernels.Forward";
                int st = stage;
                yield return new GpuCase(DwConvLiveKernels.KernelName, g, $"{op}, M x 5 branch, stage {stage + 1}",
                                         ctx => RunLive(ctx, st, flip));
            }
    }

    private static void RunLive(CheckContext ctx, int stage, bool flip)
    {
        var s = Sizes.For(ctx.Full);
        int kh = s.M[stage], kw = s.Small, b = s.B, c = s.C[stage], h = s.H[stage], w = h;
        const double density = 0.6;
        int[] xs = [b, c, h, w];
        var x = ctx.Random(xs);
        var wt = ctx.Random(c, 1, kh, kw);
        var mk = ctx.FromArray(ctx.Mask((long)c * kh * kw, density), c, 1, kh, kw);
        double flops = 2.0 * b * c * density * Sizes.ValidTaps(h, kh) * Sizes.ValidTaps(w, kw);
        double plane = 4.0 * b * c * h * w;
        string shape = $"{Describe(xs)} {kh}x{kw} d={density:0.0}";
        ctx.Check(shape, flops, 2 * plane, [xs], (be, o) =>
        {
            if (be is CudaBackend gpu)
                DwConvLiveKernels.Forward(gpu.Gpu, Ptr(o[0]), Ptr(T(x, be)), Ptr(T(wt, be)), Ptr(T(mk, be)), b, c, h, w,
                                          kh, kw, flip);
            else if (flip)
                be.DecomposedDwConvBackwardData([T(x, be)], [T(wt, be)], [T(mk, be)], o[0]);
            else
                be.DecomposedDwConvForward(T(x, be), [T(wt, be)], [T(mk, be)], o);
        });
    }
}
