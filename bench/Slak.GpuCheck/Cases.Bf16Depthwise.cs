// Rows of the bf16 instantiation of dwconv_small.cu (SLAK_DW_BF16=1, launched by the CUDA backend under
// --precision bf16 where the plan takes the small-map kernel: SLaK-T's stages 3-4 at a training batch): the training
// forward (three branch outputs, held as 16-bit) at stages 3 and 4 and the inference sum at stage 4, masks of density
// 0.6, run through Bf16Backend on both sides: the GPU's 16-bit kernel against Bf16Backend on the CPU (the same
// rounding points). Both round their float32 sums to bf16, and the sums differ in order, so an output may sit one bf16
// unit apart (at most 2^-7 relative). At reduced sizes (fewer than 16 images) the plan keeps the fused kernel and the
// row runs its bf16 instantiation under this name. The weight gradient's rows run dwconv_small_wgrad.cu's bf16-x
// instance (SLAK_DW_BF16=1) at stages 3-4 and dwconv_fused_wgrad_kernel's (SLAK_DW_BF16=1: x 16-bit, dy float32) at
// stages 1-2, through Bf16Backend on both sides, with the float32 weight gradient's tolerance.
using Slak.Backends;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private static IEnumerable<GpuCase> Bf16Depthwise(string group)
    {
        foreach (var (stage, sum) in new[] { (2, false), (3, false), (3, true) })
        {
            string op = sum ? "DecomposedDwConvForwardSum" : "DecomposedDwConvForward";
            yield return new GpuCase("dwconv_small_kernel", group, $"{op} under bf16 (SLAK_DW_BF16 instantiation), stage {stage + 1}",
                                     ctx => RunBf16Depthwise(ctx, stage, sum))
            {
                FallbackKernel = "dwconv_fused_kernel",
                Sampling = SampleHandling.Skip,
                SampleNote = "the bf16 outputs are the kernel's own 16-bit blocks, which cannot be poisoned",
            };
        }
        // The fused weight gradient's bf16-x instance (stages 1-2; x read as 16-bit, dy and accumulation float32).
        foreach (int stage in new[] { 0, 1 })
            yield return new GpuCase("dwconv_fused_wgrad_kernel", group,
                                     $"DecomposedDwConvBackwardFilter under bf16 (SLAK_DW_BF16 instance, 16-bit x), stage {stage + 1}",
                                     ctx => RunBf16DepthwiseWgrad(ctx, stage))
            {
                Sampling = SampleHandling.Columns,
                SampleNote = "per-chunk partials along grid.y: every chunk of sampled grid.x, finalize whole",
                Owner = ChannelOwner,
            };
        // The weight gradient's bf16-x instance of dwconv_small_wgrad.cu (x read as 16-bit, dy and
        // accumulation float32).
        foreach (int stage in new[] { 2, 3 })
            yield return new GpuCase("dwconv_small_wgrad_kernel", group,
                                     $"DecomposedDwConvBackwardFilter under bf16 (SLAK_DW_BF16 instance, 16-bit x), stage {stage + 1}",
                                     ctx => RunBf16DepthwiseWgrad(ctx, stage))
            {
                FallbackKernel = "dwconv_fused_wgrad_kernel",
                Sampling = SampleHandling.Columns,
                SampleNote = "per-chunk partials along grid.y: every chunk of sampled grid.x, finalize whole",
                Owner = ChannelOwner,
            };
    }

    // Both sides through Bf16Backend (x and dy rounded to bf16, float32 sums in different orders): the float32 weight
    // gradient's tolerance.
    private static void RunBf16DepthwiseWgrad(CheckContext ctx, int stage)
    {
        var s = Sizes.For(ctx.Full);
        int m = s.M[stage], k = s.Small, b = s.B, c = s.C[stage], h = s.H[stage], w = h;
        (int Kh, int Kw)[] sizes = [(m, k), (k, m), (k, k)];
        const double density = 0.6;
        int[] xs = [b, c, h, w];
        var x = ctx.Random(xs);
        var dys = sizes.Select(_ => ctx.Random(xs)).ToArray();
        var ms = sizes.Select(t => ctx.FromArray(ctx.Mask((long)c * t.Kh * t.Kw, density), c, 1, t.Kh, t.Kw)).ToArray();
        double flops = 2.0 * b * c * density * sizes.Sum(t => (double)Sizes.ValidTaps(h, t.Kh) * Sizes.ValidTaps(w, t.Kw));
        double plane = (double)b * c * h * w;
        string shape = $"{Describe(xs)} {string.Join('+', sizes.Select(t => $"{t.Kh}x{t.Kw}"))} d={density:0.0} bf16 x";
        IReadOnlyList<Tensor?> M(IBackend be) => ms.Select(t => (Tensor?)T(t, be)).ToArray();
        ctx.Check(shape, flops, 2 * plane + 4 * 3 * plane, sizes.Select(t => new[] { c, 1, t.Kh, t.Kw }).ToArray(),
                  (be, o) => Bf16Backend.Wrap(be).DecomposedDwConvBackwardFilter(
                      T(x, be), dys.Select(d => (Tensor?)T(d, be)).ToArray(), M(be), o.Select(t => (Tensor?)t).ToArray()),
                  atol: 1e-3 + 2e-6 * b * h * w, rtol: 1e-3);
    }

    private static void RunBf16Depthwise(CheckContext ctx, int stage, bool sum)
    {
        var s = Sizes.For(ctx.Full);
        int m = s.M[stage], k = s.Small, b = s.B, c = s.C[stage], h = s.H[stage], w = h;
        (int Kh, int Kw)[] sizes = [(m, k), (k, m), (k, k)];
        const double density = 0.6;
        int[] xs = [b, c, h, w];
        var x = ctx.Random(xs);
        var ws = sizes.Select(t => ctx.Random(c, 1, t.Kh, t.Kw)).ToArray();
        var ms = sizes.Select(t => ctx.FromArray(ctx.Mask((long)c * t.Kh * t.Kw, density), c, 1, t.Kh, t.Kw)).ToArray();
        double flops = 2.0 * b * c * density * sizes.Sum(t => (double)Sizes.ValidTaps(h, t.Kh) * Sizes.ValidTaps(w, t.Kw));
        double plane = 2.0 * b * c * h * w; // bytes of one bf16 map
        string shape = $"{Describe(xs)} {string.Join('+', sizes.Select(t => $"{t.Kh}x{t.Kw}"))} d={density:0.0} bf16";
        IReadOnlyList<Tensor> W(IBackend be) => ws.Select(t => T(t, be)).ToArray();
        IReadOnlyList<Tensor?> M(IBackend be) => ms.Select(t => (Tensor?)T(t, be)).ToArray();
        const double atol = 1e-4, rtol = 1.0 / 128;
        if (sum)
            ctx.Check(shape, flops, 2 * plane, [xs],
                      (be, o) => Bf16Backend.Wrap(be).DecomposedDwConvForwardSum(T(x, be), W(be), M(be), o[0]), atol, rtol);
        else
            ctx.Check(shape, flops, 4 * plane, [xs, xs, xs],
                      (be, o) => Bf16Backend.Wrap(be).DecomposedDwConvForward(T(x, be), W(be), M(be), o), atol, rtol);
    }
}
