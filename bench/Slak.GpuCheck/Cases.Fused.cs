// GPU-check rows of the fused decomposed depthwise convolution that the model runs (SLaK's large kernel: M x 5,
// 5 x M and 5 x 5 branches from one read of the input): forward with the three branch outputs, the inference
// forward that writes only their sum, the summed input gradient and the three weight gradients, at the SLaK-T
// stage shapes and batch 128 (the GPU target size; batch 2 and small maps on the emulator), dense and with
// masks of density 0.6 (the sparse-aware paths). FLOPs count only taps inside the image, times the density.
using Slak.Backends;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private static void FusedDwConv(CheckRunner run, bool full)
    {
        int b = full ? 128 : 2;
        var stages = full
            ? new (int C, int H, int M)[] { (124, 56, 51), (249, 28, 49), (499, 14, 47), (998, 7, 13) }
            : [(8, 14, 13), (6, 7, 9)];
        const int s = 5;
        foreach (var (c, h, m) in stages)
        {
            foreach (double density in new[] { 1.0, 0.6 })
            {
                var sizes = new[] { (m, s), (s, m), (s, s) };
                var x = run.Random(b, c, h, h);
                var ws = sizes.Select(k => run.Random(c, 1, k.Item1, k.Item2)).ToArray();
                var ms = sizes.Select(k => run.FromArray(run.Mask(c * k.Item1 * k.Item2, density), c, 1, k.Item1, k.Item2)).ToArray();
                var dys = sizes.Select(_ => run.Random(b, c, h, h)).ToArray();
                bool masked = density < 1;
                double flops = 2.0 * b * c * density * sizes.Sum(k => (double)ValidTaps(h, k.Item1) * ValidTaps(h, k.Item2));
                double plane = 4.0 * b * c * h * h;
                string shape = $"({b},{c},{h},{h}) {m}x{s}+{s}x{m}+{s}x{s} d={density:0.0}";
                int[] xs = [b, c, h, h];
                IReadOnlyList<Tensor> W(IBackend be) => ws.Select(w => T(w, be)).ToArray();
                IReadOnlyList<Tensor?> M(IBackend be) => ms.Select(mk => masked ? T(mk, be) : null).ToArray();
                run.Check("fused dwconv fwd", shape, flops, 4 * plane, [xs, xs, xs],
                    (be, o) => be.DecomposedDwConvForward(T(x, be), W(be), M(be), o));
                run.Check("fused dwconv fwd sum", shape, flops, 2 * plane, [xs],
                    (be, o) => be.DecomposedDwConvForwardSum(T(x, be), W(be), M(be), o[0]));
                run.Check("fused dwconv bwd data", shape, flops, 4 * plane, [xs],
                    (be, o) => be.DecomposedDwConvBackwardData(dys.Select(d => (Tensor?)T(d, be)).ToArray(), W(be), M(be), o[0]));
                run.Check("fused dwconv bwd filter", shape, flops, 4 * plane,
                    sizes.Select(k => new[] { c, 1, k.Item1, k.Item2 }).ToArray(),
                    (be, o) => be.DecomposedDwConvBackwardFilter(T(x, be), dys.Select(d => (Tensor?)T(d, be)).ToArray(), M(be),
                        o.Select(t => (Tensor?)t).ToArray()),
                    atol: 1e-2, rtol: 1e-3);
                foreach (var t in ws.Concat(ms).Concat(dys).Append(x)) { t.Cpu.Dispose(); t.Gpu.Dispose(); }
            }
        }
    }
}
