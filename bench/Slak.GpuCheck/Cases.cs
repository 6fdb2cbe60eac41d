// The kernels the GPU check runs, at SLaK-T sizes ("full", batch 32) or small sizes ("tiny", for the emulator).
// FLOPs count multiply-adds as 2 and, for the depthwise convolutions, only taps whose input lies inside the image
// (what a kernel that clips its extent must execute); bytes are one read of each input and one write of each output.
using Slak.Backends;
using Slak.Backends.Cpu;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private static Tensor T((Tensor Cpu, Tensor Gpu) pair, IBackend be) => be is CpuBackend ? pair.Cpu : pair.Gpu;

    /// <summary>Sum over output positions of the taps of a k-tap "same" filter that land inside a length-n axis.</summary>
    private static long ValidTaps(int n, int k)
    {
        long sum = 0;
        for (int r = 0; r < n; r++) sum += Math.Min(k, n + k / 2 - r) - Math.Max(0, k / 2 - r);
        return sum;
    }

    public static void AddAll(CheckRunner run, bool full)
    {
        int b = full ? 32 : 2;
        DwConv(run, b, full);
        FusedDwConv(run, full);
        Gemm(run, b, full);
        Norms(run, b, full);
        Elementwise(run, b, full);
        Sparse(run, full);
    }

    /// <summary>One prune/regrow round (our semantics, random regrowth) on the largest SLaK-T classifier-sized layer;
    /// the mask is reset from a copy on each run, so repeated timing runs see the same input. Masks must be identical.</summary>
    private static void Sparse(CheckRunner run, bool full)
    {
        int rows = full ? 998 : 30, cols = full ? 3992 : 100, n = rows * cols;
        var w = run.Random(rows, cols);
        var m0 = run.Mask(n, 0.6);
        long numRemove = (long)Math.Ceiling(0.3 * m0.Count(v => v != 0));
        var mask = run.FromArray(m0, rows, cols);
        run.Check("sparse prune/regrow", $"({rows},{cols}) d=0.6 p=0.3", 0, 16.0 * n, [[rows, cols], [rows, cols]],
            (be, o) =>
            {
                be.Copy(T(mask, be), o[0]);
                be.SparsePruneRegrow(T(w, be), o[0], null, o[1], numRemove, SparseRegrowth.RandomExact, 0x5EED_5EEDUL);
            }, atol: 0, rtol: 0);
    }

    private static void DwConv(CheckRunner run, int b, bool full)
    {
        var shapes = full
            ? new (int C, int H, int Kh, int Kw)[]
            {
                (124, 56, 51, 5), (124, 56, 5, 51), (124, 56, 5, 5), (249, 28, 49, 5), (249, 28, 5, 49),
                (499, 14, 47, 5), (499, 14, 5, 47), (998, 7, 13, 5), (998, 7, 5, 13), (124, 56, 31, 31),
            }
            : [(8, 14, 13, 5), (8, 14, 5, 13), (8, 14, 5, 5), (4, 7, 9, 9)];
        foreach (var (c, h, kh, kw) in shapes)
        {
            foreach (double density in new[] { 1.0, 0.6 })
            {
                var x = run.Random(b, c, h, h);
                var w = run.Random(c, 1, kh, kw);
                var dy = run.Random(b, c, h, h);
                var mask = run.FromArray(run.Mask(c * kh * kw, density), c, 1, kh, kw);
                bool masked = density < 1;
                double flops = 2.0 * b * c * ValidTaps(h, kh) * ValidTaps(h, kw) * density;
                double bytes = 8.0 * b * c * h * h;
                string shape = $"({b},{c},{h},{h}) {kh}x{kw} d={density:0.0}";
                run.Check("dwconv fwd", shape, flops, bytes, [[b, c, h, h]],
                    (be, o) => be.DwConv2dForward(T(x, be), T(w, be), masked ? T(mask, be) : null, o[0]));
                run.Check("dwconv bwd data", shape, flops, bytes, [[b, c, h, h]],
                    (be, o) => be.DwConv2dBackwardData(T(dy, be), T(w, be), masked ? T(mask, be) : null, o[0]));
                run.Check("dwconv bwd filter", shape, flops, bytes, [[c, 1, kh, kw]],
                    (be, o) => be.DwConv2dBackwardFilter(T(x, be), T(dy, be), masked ? T(mask, be) : null, o[0], masked),
                    atol: 1e-2, rtol: 1e-3);
                foreach (var t in new[] { x, w, dy, mask }) { t.Cpu.Dispose(); t.Gpu.Dispose(); }
            }
        }
    }

    private static void Gemm(CheckRunner run, int b, bool full)
    {
        int hw = full ? 56 * 56 : 7 * 7, c = full ? 124 : 16;
        int m = b * hw;
        foreach (var (ta, tb, mm, nn, kk, what) in new[]
                 {
                     (false, true, m, 4 * c, c, "pwconv1 fwd"), (false, false, m, c, 4 * c, "pwconv1 bwd data"),
                     (true, false, 4 * c, c, m, "pwconv1 bwd weight"),
                 })
        {
            var a = ta ? run.Random(kk, mm) : run.Random(mm, kk);
            var bm = tb ? run.Random(nn, kk) : run.Random(kk, nn);
            run.Check($"sgemm {what}", $"m={mm} n={nn} k={kk}", 2.0 * mm * nn * kk, 4.0 * ((double)mm * kk + (double)kk * nn + (double)mm * nn),
                [[mm, nn]], (be, o) => be.Gemm(ta, tb, mm, nn, kk, 1f, T(a, be), T(bm, be), 0f, o[0]), atol: 1e-2, rtol: 1e-3);
            a.Cpu.Dispose(); a.Gpu.Dispose(); bm.Cpu.Dispose(); bm.Gpu.Dispose();
        }
        int img = full ? 224 : 28, co = full ? 124 : 16;
        var x = run.Random(b, 3, img, img);
        var w = run.Random(co, 3, 4, 4);
        var bias = run.Random(co);
        int o4 = img / 4;
        run.Check("conv2d stem fwd", $"({b},3,{img},{img}) 4x4/4", 2.0 * b * co * o4 * o4 * 48, 4.0 * b * (3 * img * img + co * o4 * o4),
            [[b, co, o4, o4]], (be, o) => be.Conv2dForward(T(x, be), T(w, be), T(bias, be), o[0], 4, 4, 0, 0));
    }

    private static void Norms(CheckRunner run, int b, bool full)
    {
        int c = full ? 124 : 12, h = full ? 56 : 7;
        long rows = (long)b * h * h;
        var x = run.Random(b, c, h, h);
        var w = run.Random(c);
        var bias = run.Random(c);
        var rm = run.Random(c);
        var rv = run.FromArray(Enumerable.Repeat(1f, c).ToArray(), c);
        double bytes = 8.0 * b * c * h * h;
        string shape = $"({b},{c},{h},{h})";
        run.Check("layernorm channels-last fwd", $"({rows},{c})", 0, bytes, [[b * h * h, c], [b * h * h], [b * h * h]],
            (be, o) => be.LayerNormLastDim(Reshaped(T(x, be), b * h * h, c), T(w, be), T(bias, be), 1e-6f, o[0], o[1], o[2]));
        run.Check("layernorm channels-first fwd", shape, 0, bytes, [[b, c, h, h], [b, h, h], [b, h, h]],
            (be, o) => be.LayerNormChannelsFirst(T(x, be), T(w, be), T(bias, be), 1e-6f, o[0], o[1], o[2]));
        run.Check("batchnorm eval", shape, 0, bytes, [[b, c, h, h]],
            (be, o) => be.BatchNormEval(T(x, be), T(w, be), T(bias, be), T(rm, be), T(rv, be), 1e-5f, o[0]));
    }

    private static Tensor Reshaped(Tensor t, params int[] shape) => F.Reshape(t, shape);

    private static void Elementwise(CheckRunner run, int b, bool full)
    {
        int n = full ? b * 56 * 56 * 496 : 4096;
        var x = run.Random(n);
        var dy = run.Random(n);
        run.Check("gelu fwd", $"({n})", 0, 8.0 * n, [[n]], (be, o) => be.Gelu(T(x, be), o[0]));
        run.Check("gelu bwd", $"({n})", 0, 12.0 * n, [[n]], (be, o) => be.GeluBackward(T(x, be), T(dy, be), o[0]));
        run.Check("sum", $"({n})", 0, 4.0 * n, [[1]], (be, o) => be.SumAll(T(x, be), o[0]), atol: 1e-1, rtol: 1e-4);
        int k = full ? 1000 : 10, rows = full ? 128 : 4;
        var logits = run.Random(rows, k);
        var targets = run.FromArray(F.SmoothedTargets(Enumerable.Range(0, rows).Select(i => i % k).ToArray(), k, 0.1f, Device.Cpu).Data.ToArray(), rows, k);
        run.Check("softmax cross-entropy fwd", $"({rows},{k})", 0, 8.0 * rows * k, [[rows, k], [1]],
            (be, o) => be.SoftmaxCrossEntropy(T(logits, be), T(targets, be), o[0], o[1]));
    }
}
