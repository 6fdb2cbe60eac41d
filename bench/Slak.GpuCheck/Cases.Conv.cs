// Rows of conv2d.cu, dwconv.cu and dwconv_fused.cu at SLaK-T shapes: the stem (4x4 stride 4, 3 -> 124 on 224 px),
// the stage-1 -> 2 downsample (2x2 stride 2, 124 -> 249), dwconv.cu's per-branch kernels (the depthwise family's
// fallback: more than three branches, the > 48 KB tiles; run here as the one-branch family with
// DwConvFusedKernels.PerBranchOnly, since its plans take the fused kernel at these shapes), the fused decomposed
// large kernel at every stage (M x 5 + 5 x M + 5 x 5, masks of density 0.6 = SLaK's 40 % sparsity) and the direct
// fallback kernels at the smallest kernel whose tile exceeds 48 KB (79 x 79, stage-4 batch and channels). FLOPs count
// only taps inside the image, times the density.
// Sampling: forward and data-gradient kernels write each output element from one block (generic); the weight
// gradients (dwconv_wgrad_*, dwconv_fused_wgrad) write per-chunk partials along grid.y that column_sum_finalize
// sums: they run column-sampled (every grid.y of a sampled grid.x; finalize whole) and only the weights those
// columns own are compared (grid.x = channel for the tiled kernels; a grid-stride range of (channel, tap) for the
// direct one). conv2d_bwd_filter computes each weight in one thread (generic); the bias gradient (one block per
// output channel over N*H*W) runs whole. These shapes take the patchify path (Cases.Patchify.cs) by default; the
// conv2d.cu rows force the direct kernels (Conv2dPatchifyKernels.Disabled) so that before and after stay measurable.
using Slak.Backends;
using Slak.Cuda.Kernels;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private static IEnumerable<GpuCase> Conv2d()
    {
        const string g = "conv2d";
        yield return new GpuCase("conv2d_fwd_kernel", g, "Conv2dForward (stem 4x4/4)", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int co = s.C[0], o4 = s.Image / 4;
            var x = ctx.Random(s.B, 3, s.Image, s.Image);
            var w = ctx.Random(co, 3, 4, 4);
            var bias = ctx.Random(co);
            ctx.Check($"({s.B},3,{s.Image},{s.Image}) -> {co}", 2.0 * s.B * co * o4 * o4 * 48,
                4.0 * s.B * (3.0 * s.Image * s.Image + (double)co * o4 * o4), [[s.B, co, o4, o4]],
                (be, o) => DirectConv(() => be.Conv2dForward(T(x, be), T(w, be), T(bias, be), o[0], 4, 4, 0, 0)));
        });
        yield return new GpuCase("conv2d_bwd_data_kernel", g, "Conv2dBackwardData (downsample 2x2/2)", ctx =>
        {
            var (s, ci, co, h) = Downsample(ctx);
            var dy = ctx.Random(s.B, co, h / 2, h / 2);
            var w = ctx.Random(co, ci, 2, 2);
            double flops = 2.0 * s.B * co * ci * 4 * (h / 2) * (h / 2);
            ctx.Check($"({s.B},{ci},{h},{h}) <- {co}", flops, 4.0 * s.B * (ci * h * h + co * (h / 2) * (h / 2)), [[s.B, ci, h, h]],
                (be, o) => DirectConv(() => be.Conv2dBackwardData(T(dy, be), T(w, be), o[0], 2, 2, 0, 0)), atol: 1e-3);
        });
        GpuCase Filter(string kernel) => new(kernel, g, "Conv2dBackwardFilter (downsample 2x2/2)", ctx =>
        {
            var (s, ci, co, h) = Downsample(ctx);
            var x = ctx.Random(s.B, ci, h, h);
            var dy = ctx.Random(s.B, co, h / 2, h / 2);
            double flops = 2.0 * s.B * co * ci * 4 * (h / 2) * (h / 2);
            long reduce = (long)s.B * (h / 2) * (h / 2);
            ctx.Check($"({s.B},{ci},{h},{h}) -> {co}", flops, 4.0 * s.B * (ci * h * h + co * (h / 2) * (h / 2)),
                [[co, ci, 2, 2], [co]],
                (be, o) => DirectConv(() => be.Conv2dBackwardFilter(T(x, be), T(dy, be), o[0], o[1], 2, 2, 0, 0)),
                atol: 1e-3 + 2e-6 * reduce, rtol: 1e-3);
        })
        {
            SampledKernels = ["conv2d_bwd_filter_kernel"],
            SampleNote = "bias gradient: one block per channel over N*H*W, runs whole",
        };
        yield return Filter("conv2d_bwd_filter_kernel");
        yield return Filter("conv2d_bwd_bias_kernel");
    }

    private static (Sizes S, int Ci, int Co, int H) Downsample(CheckContext ctx)
    {
        var s = Sizes.For(ctx.Full);
        return (s, s.C[0], s.C[1], s.H[0]);
    }

    private static IEnumerable<GpuCase> DwConv()
    {
        const string g = "dwconv";
        yield return DwForward("dwconv_fwd_tiled_kernel", g, stage: 0, long_: true, direct: false, backwardData: false);
        yield return DwForward("dwconv_fwd_tiled_kernel", g, stage: 0, long_: false, direct: false, backwardData: true);
        yield return DwForward("dwconv_fwd_tiled_kernel", g, stage: 3, long_: true, direct: false, backwardData: false);
        yield return DwForward("dwconv_fwd_direct_kernel", g, stage: 3, long_: true, direct: true, backwardData: false);
        yield return DwFilter("dwconv_wgrad_tiled_kernel", g, stage: 0, direct: false);
        yield return DwFilter("dwconv_wgrad_direct_kernel", g, stage: 3, direct: true);
    }

    private const string OneBranch = ", one branch, per-branch kernels";

    // dwconv.cu's kernels run as the family's fallback: forced for the call, process-wide (rows run one at a time).
    private static void PerBranchKernels(Action run)
    {
        DwConvFusedKernels.PerBranchOnly = true;
        try
        {
            run();
        }
        finally
        {
            DwConvFusedKernels.PerBranchOnly = false;
        }
    }

    private static (int Kh, int Kw) DwKernel(Sizes s, int stage, bool long_, bool direct) =>
        direct ? (Sizes.DirectK, Sizes.DirectK) : long_ ? (s.M[stage], s.Small) : (s.Small, s.M[stage]);

    private static GpuCase DwForward(string kernel, string group, int stage, bool long_, bool direct, bool backwardData) =>
        new(kernel, group, (backwardData ? "DecomposedDwConvBackwardData" : "DecomposedDwConvForward") + OneBranch, ctx =>
        {
            var s = Sizes.For(ctx.Full);
            var (kh, kw) = DwKernel(s, stage, long_, direct);
            int c = s.C[stage], h = s.H[stage];
            int[] xs = [s.B, c, h, h];
            var x = ctx.Random(xs);
            var w = ctx.Random(c, 1, kh, kw);
            var mask = ctx.FromArray(ctx.Mask((long)c * kh * kw, 0.6), c, 1, kh, kw);
            double flops = 2.0 * s.B * c * Sizes.ValidTaps(h, kh) * Sizes.ValidTaps(h, kw) * 0.6;
            ctx.Check($"{Describe(xs)} {kh}x{kw} d=0.6", flops, 8.0 * s.B * c * h * h, [xs],
                backwardData
                    ? (be, o) => PerBranchKernels(() => be.DecomposedDwConvBackwardData([T(x, be)], [T(w, be)], [T(mask, be)], o[0]))
                    : (be, o) => PerBranchKernels(() => be.DecomposedDwConvForward(T(x, be), [T(w, be)], [T(mask, be)], [o[0]])));
        });

    private static GpuCase DwFilter(string kernel, string group, int stage, bool direct) =>
        new(kernel, group, "DecomposedDwConvBackwardFilter (skip masked)" + OneBranch, ctx =>
        {
            var s = Sizes.For(ctx.Full);
            var (kh, kw) = DwKernel(s, stage, long_: true, direct);
            int c = s.C[stage], h = s.H[stage];
            int[] xs = [s.B, c, h, h];
            var x = ctx.Random(xs);
            var dy = ctx.Random(xs);
            var mask = ctx.FromArray(ctx.Mask((long)c * kh * kw, 0.6), c, 1, kh, kw);
            double flops = 2.0 * s.B * c * Sizes.ValidTaps(h, kh) * Sizes.ValidTaps(h, kw) * 0.6;
            ctx.Check($"{Describe(xs)} {kh}x{kw} d=0.6", flops, 8.0 * s.B * c * h * h, [[c, 1, kh, kw]],
                (be, o) => PerBranchKernels(() => be.DecomposedDwConvBackwardFilter(T(x, be), [T(dy, be)], [T(mask, be)], [o[0]])),
                atol: 1e-3 + 2e-6 * s.B * h * h, rtol: 1e-3);
        })
        {
            Sampling = SampleHandling.Columns,
            SampleNote = "per-chunk partials along grid.y: every chunk of sampled grid.x, finalize whole",
            // direct: a grid-stride loop of 256-thread blocks over (channel, tap); tiled: grid.x is the channel.
            Owner = direct ? (_, i, grid, _) => i / 256 % grid.X : ChannelOwner,
        };

    /// <summary>The channel (= grid.x block) of element i of a (C, 1, Kh, Kw) weight gradient, grid.x = C.</summary>
    private static long ChannelOwner(int output, long i, Slak.Cuda.Runtime.Dim3 grid, long numel) => i / (numel / grid.X);
}
