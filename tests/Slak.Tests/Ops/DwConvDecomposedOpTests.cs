// The fused decomposed depthwise convolution (F.DecomposedDepthwiseConv2d and the IBackend.DecomposedDwConv*
// kernels) on every test device, against plain float64 references written below (forward, input gradient summed
// over branches, per-branch weight gradient) and against central differences of the float64 forward on tiny shapes.
// Breakers: C = 1, H != W, H = W = 1, kernels larger than the image, M up to 151, N in {3, 5, 7}, dense + small
// (Decom = false), two branches (N > K), four branches, mask densities 1.0, 0.6, 0.1, 0.0 and no mask (every breaker
// at every density for the forward, inference sum, input gradient and weight gradient). Outputs are poisoned with
// NaN before every kernel call. Shapes stay tiny because the emulator runs every CUDA thread as a fiber.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class DwConvDecomposedOpTests(string device) : DeviceTest(device)
{
    private static readonly object[] Cases =
    [
        // n, c, h, w, branches "KhxKw,...", mask density (-1: no mask)
        new object[] { 1, 1, 1, 1, "5x3,3x5,3x3", 1.0 },          // H = W = 1, C = 1
        new object[] { 2, 1, 6, 9, "7x3,3x7,3x3", 0.6 },          // C = 1, H != W, N = 3
        new object[] { 1, 2, 4, 3, "13x5,5x13,5x5", -1.0 },       // kernels larger than the image
        new object[] { 2, 3, 14, 14, "47x5,5x47,5x5", 0.6 },      // SLaK stage 3, batch and width scaled down
        new object[] { 1, 2, 7, 7, "13x5,5x13,5x5", 0.1 },        // SLaK stage 4
        new object[] { 1, 2, 12, 10, "51x7,7x51,7x7", 0.6 },      // stage-1 kernel, N = 7, small image
        new object[] { 1, 2, 9, 8, "7x7,3x3", 0.6 },              // Decom = false: dense K x K + N x N
        new object[] { 2, 2, 5, 6, "3x5,5x3", 0.0 },              // N > K: no small branch; every tap pruned
        new object[] { 1, 2, 33, 35, "9x5,5x9,5x5", 1.0 },        // more than one output tile in each direction
        new object[] { 1, 1, 20, 17, "151x5,5x151,5x5", 0.6 },    // M = 151 (the CUDA forward's fallback)
        new object[] { 1, 2, 9, 8, "7x3,3x7,3x3,5x5", 0.6 },      // four branches: the CUDA per-branch kernels
        new object[] { 1, 1, 40, 37, "31x5,5x31,5x5", 0.6 },      // CUDA steps clipped at both image edges, full between
        new object[] { 1, 2, 1, 40, "5x29,29x5,5x5", 0.6 },       // 1-row map, long kernels across and along it
        new object[] { 1, 1, 40, 24, "11x5,5x11,5x5", 0.6 },      // CUDA wgrad: 11 = 8 + 3, a short remainder strip
        new object[] { 1, 1, 60, 9, "51x5,5x51,5x5", 0.6 },       // CUDA wgrad: 51 = 6 x 8 + 3 with full steps
    ];

    [TestCaseSource(nameof(Cases))]
    [KernelParity("dwconv_fwd_tiled_kernel", "dwconv_wgrad_tiled_kernel")]
    public void KernelsMatchFloat64Reference(int n, int c, int h, int w, string branchList, double density)
    {
        var ks = BranchShapes.Parse(branchList);
        int nb = ks.Length;
        var (x, rx) = RandN([n, c, h, w]);
        var wts = new Tensor[nb];
        var rws = new RefTensor[nb];
        var masks = new Tensor?[nb];
        var rms = new RefTensor?[nb];
        var dys = new Tensor?[nb];
        var rdys = new RefTensor[nb];
        for (int b = 0; b < nb; b++)
        {
            (wts[b], rws[b]) = RandN([c, 1, ks[b].Kh, ks[b].Kw], 1 / Math.Sqrt(ks[b].Kh * ks[b].Kw));
            if (density >= 0)
            {
                var m = Rng.MaskArray(rws[b].Length, density);
                masks[b] = T(m, c, 1, ks[b].Kh, ks[b].Kw);
                rms[b] = RefTensor.From(m, c, 1, ks[b].Kh, ks[b].Kw);
            }
            (dys[b], rdys[b]) = RandN([n, c, h, w]);
        }
        string what = $"x ({n},{c},{h},{w}) branches {branchList} density {density}";
        var be = x.Backend;

        var ys = Enumerable.Range(0, nb).Select(_ => Poisoned(n, c, h, w)).ToArray();
        be.DecomposedDwConvForward(x, wts, masks, ys);
        for (int b = 0; b < nb; b++)
            Expect.AllClose(ys[b], Reference.DepthwiseConv2d(rx, rws[b], rms[b]), 1e-5, 1e-5, Ctx($"forward branch {b}, {what}"));

        var dx = Poisoned(n, c, h, w);
        be.DecomposedDwConvBackwardData(dys, wts, masks, dx);
        Expect.AllClose(dx, RefBackwardData(rdys, rws, rms), 1e-5, 1e-5, Ctx($"input gradient, {what}"));

        // Weight gradients: masked taps skipped (exactly 0) and dense, both from poisoned outputs.
        foreach (bool skip in new[] { true, false })
        {
            var dws = Enumerable.Range(0, nb).Select(b => (Tensor?)Poisoned(c, 1, ks[b].Kh, ks[b].Kw)).ToArray();
            be.DecomposedDwConvBackwardFilter(x, dys, skip ? masks : new Tensor?[nb], dws);
            for (int b = 0; b < nb; b++)
            {
                var expected = RefBackwardFilter(rx, rdys[b], ks[b].Kh, ks[b].Kw);
                var got = dws[b]!.ToArray();
                if (skip && rms[b] is { } rm)
                    for (int i = 0; i < got.Length; i++)
                    {
                        if (rm[i] != 0) continue;
                        Assert.That(got[i], Is.EqualTo(0f), Ctx($"pruned tap {i} of branch {b} must get exactly 0, {what}"));
                        expected[i] = 0;
                    }
                Expect.AllClose(got, expected.Data, 1e-4, 1e-5, Ctx($"weight gradient branch {b} skip={skip}, {what}"), expected.Shape);
            }
        }
    }

    /// <summary>Every breaker shape of <see cref="Cases"/> at the mask densities it does not already run (of 1, 0.6,
    /// 0.1, 0): the forward, the inference sum and the input gradient (the kernels whose bodies compute masked taps as
    /// zero weights on CUDA), against the float64 reference.</summary>
    private static IEnumerable<object[]> DensityCases() =>
        from object[] c in Cases
        from double d in new[] { 1.0, 0.6, 0.1, 0.0 }
        where (double)c[5] != d
        select new object[] { c[0], c[1], c[2], c[3], c[4], d };

    [TestCaseSource(nameof(DensityCases))]
    public void ForwardSumAndInputGradientMatchFloat64ReferenceAtEveryDensity(int n, int c, int h, int w,
                                                                              string branchList, double density)
    {
        var ks = BranchShapes.Parse(branchList);
        int nb = ks.Length;
        var (x, rx) = RandN([n, c, h, w]);
        var wts = new Tensor[nb];
        var rws = new RefTensor[nb];
        var masks = new Tensor?[nb];
        var rms = new RefTensor?[nb];
        var dys = new Tensor?[nb];
        var rdys = new RefTensor[nb];
        for (int b = 0; b < nb; b++)
        {
            (wts[b], rws[b]) = RandN([c, 1, ks[b].Kh, ks[b].Kw], 1 / Math.Sqrt(ks[b].Kh * ks[b].Kw));
            var m = Rng.MaskArray(rws[b].Length, density);
            masks[b] = T(m, c, 1, ks[b].Kh, ks[b].Kw);
            rms[b] = RefTensor.From(m, c, 1, ks[b].Kh, ks[b].Kw);
            (dys[b], rdys[b]) = RandN([n, c, h, w]);
        }
        string what = $"x ({n},{c},{h},{w}) branches {branchList} density {density}";
        var be = x.Backend;

        var ys = Enumerable.Range(0, nb).Select(_ => Poisoned(n, c, h, w)).ToArray();
        be.DecomposedDwConvForward(x, wts, masks, ys);
        var sum = new RefTensor(n, c, h, w);
        for (int b = 0; b < nb; b++)
        {
            var expected = Reference.DepthwiseConv2d(rx, rws[b], rms[b]);
            Expect.AllClose(ys[b], expected, 1e-5, 1e-5, Ctx($"forward branch {b}, {what}"));
            for (int i = 0; i < sum.Length; i++) sum.Data[i] += expected.Data[i];
        }

        var y = Poisoned(n, c, h, w);
        be.DecomposedDwConvForwardSum(x, wts, masks, y);
        Expect.AllClose(y, sum, 1e-5, 1e-5, Ctx($"inference sum, {what}"));

        var dx = Poisoned(n, c, h, w);
        be.DecomposedDwConvBackwardData(dys, wts, masks, dx);
        Expect.AllClose(dx, RefBackwardData(rdys, rws, rms), 1e-5, 1e-5, Ctx($"input gradient, {what}"));
    }

    /// <summary>The weight gradient (masked taps skipped: exactly 0; and dense) at every breaker shape of
    /// <see cref="Cases"/> and the densities it does not already run, against the float64 reference.</summary>
    [TestCaseSource(nameof(DensityCases))]
    [KernelParity("dwconv_fused_wgrad_kernel")]
    public void WeightGradientMatchesFloat64ReferenceAtEveryDensity(int n, int c, int h, int w, string branchList,
                                                                     double density)
    {
        var ks = BranchShapes.Parse(branchList);
        int nb = ks.Length;
        var (x, rx) = RandN([n, c, h, w]);
        var masks = new Tensor?[nb];
        var rms = new RefTensor[nb];
        var dys = new Tensor?[nb];
        var rdys = new RefTensor[nb];
        for (int b = 0; b < nb; b++)
        {
            var m = Rng.MaskArray(c * ks[b].Kh * ks[b].Kw, density);
            masks[b] = T(m, c, 1, ks[b].Kh, ks[b].Kw);
            rms[b] = RefTensor.From(m, c, 1, ks[b].Kh, ks[b].Kw);
            (dys[b], rdys[b]) = RandN([n, c, h, w]);
        }
        string what = $"x ({n},{c},{h},{w}) branches {branchList} density {density}";
        foreach (bool skip in new[] { true, false })
        {
            var dws = Enumerable.Range(0, nb).Select(b => (Tensor?)Poisoned(c, 1, ks[b].Kh, ks[b].Kw)).ToArray();
            x.Backend.DecomposedDwConvBackwardFilter(x, dys, skip ? masks : new Tensor?[nb], dws);
            for (int b = 0; b < nb; b++)
            {
                var expected = RefBackwardFilter(rx, rdys[b], ks[b].Kh, ks[b].Kw);
                var got = dws[b]!.ToArray();
                if (skip)
                    for (int i = 0; i < got.Length; i++)
                    {
                        if (rms[b][i] != 0) continue;
                        Assert.That(got[i], Is.EqualTo(0f), Ctx($"pruned tap {i} of branch {b} must get exactly 0, {what}"));
                        expected[i] = 0;
                    }
                Expect.AllClose(got, expected.Data, 1e-4, 1e-5, Ctx($"weight gradient branch {b} skip={skip}, {what}"), expected.Shape);
            }
        }
    }

    [Test]
    [KernelParity("dwconv_fused_kernel", "dwconv_fused_wgrad_kernel")]
    public void AbsentBranchGradientsAreZeroAndLeaveTheOthersAlone()
    {
        int n = 2, c = 2, h = 5, w = 6;
        var (x, rx) = RandN([n, c, h, w]);
        var (w0, rw0) = RandN([c, 1, 7, 3]);
        var (w1, _) = RandN([c, 1, 3, 7]);
        var (dy0, rdy0) = RandN([n, c, h, w]);
        var dx = Poisoned(n, c, h, w);
        x.Backend.DecomposedDwConvBackwardData([dy0, null], [w0, w1], [null, null], dx);
        Expect.AllClose(dx, RefBackwardData([rdy0], [rw0], [null]), 1e-5, 1e-5, Ctx("input gradient with branch 1 absent"));
        var dws = new Tensor?[] { Poisoned(c, 1, 7, 3), Poisoned(c, 1, 3, 7) };
        x.Backend.DecomposedDwConvBackwardFilter(x, [dy0, null], [null, null], dws);
        Expect.AllClose(dws[0]!.ToArray(), RefBackwardFilter(rx, rdy0, 7, 3).Data, 1e-4, 1e-5, Ctx("weight gradient of branch 0"));
        Assert.That(dws[1]!.ToArray(), Is.All.EqualTo(0f), Ctx("weight gradient of a branch without output gradient"));
        var dxNone = Poisoned(n, c, h, w);
        x.Backend.DecomposedDwConvBackwardData([null, null], [w0, w1], [null, null], dxNone);
        Assert.That(dxNone.ToArray(), Is.All.EqualTo(0f), Ctx("input gradient with every branch absent"));
    }

    [TestCase(2, 2, 5, 4, "5x3,3x5,3x3", true)]
    [TestCase(1, 1, 3, 6, "7x3,3x7,3x3", true)]
    [TestCase(1, 2, 4, 4, "5x5,3x3", false)]
    [TestCase(1, 1, 4, 5, "3x5,5x3", false)]
    public void OperatorGradientsMatchCentralDifferences(int n, int c, int h, int w, string branchList, bool masked)
    {
        var ks = BranchShapes.Parse(branchList);
        int nb = ks.Length;
        var masks = ks.Select(k => masked ? Rng.MaskArray(c * k.Kh * k.Kw, 0.6) : null).ToArray();
        // Distinct coefficients per branch so that a gradient routed to the wrong branch shows.
        var coef = Enumerable.Range(0, nb).Select(b => 1.0f - 0.7f * b).ToArray();
        var inputs = new List<GradInput> { new("x", Rng.NormalArray(n * c * h * w), [n, c, h, w]) };
        for (int b = 0; b < nb; b++)
            inputs.Add(new($"weights[{b}]", Rng.NormalArray(c * ks[b].Kh * ks[b].Kw), [c, 1, ks[b].Kh, ks[b].Kw]));
        GradCheck.Check(Dev, Rng, $"DecomposedDepthwiseConv2d {branchList} masked={masked}", inputs.ToArray(),
            t =>
            {
                var ms = masks.Select((m, b) => m is null ? null : T(m, c, 1, ks[b].Kh, ks[b].Kw)).ToArray();
                var ys = F.DecomposedDepthwiseConv2d(t[0], t[1..], ms);
                Tensor sum = F.Scale(ys[0], coef[0]);
                for (int b = 1; b < nb; b++) sum = F.Add(sum, F.Scale(ys[b], coef[b]));
                return sum;
            },
            r =>
            {
                var sum = new RefTensor(r[0].Shape);
                for (int b = 0; b < nb; b++)
                {
                    var rm = masks[b] is { } m ? RefTensor.From(m, c, 1, ks[b].Kh, ks[b].Kw) : null;
                    var y = Reference.DepthwiseConv2d(r[0], r[b + 1], rm);
                    for (int i = 0; i < sum.Length; i++) sum[i] += coef[b] * y[i];
                }
                return sum;
            });
    }

    [Test]
    public void MaskedGradSelectsExactZerosOrTheDenseGradientPerBranch()
    {
        int n = 2, c = 2, h = 6, w = 5;
        var (x, rx) = RandN([n, c, h, w]);
        var (w0, _) = RandN([c, 1, 7, 3]);
        var (w1, _) = RandN([c, 1, 3, 7]);
        w0.RequiresGrad = w1.RequiresGrad = true;
        var m0 = Rng.MaskArray(c * 21, 0.5);
        var m1 = Rng.MaskArray(c * 21, 0.5);
        var ys = F.DecomposedDepthwiseConv2d(x, [w0, w1], [T(m0, c, 1, 7, 3), T(m1, c, 1, 3, 7)], [true, false]);
        var (r0, rr0) = RandN([n, c, h, w]);
        var (r1, rr1) = RandN([n, c, h, w]);
        F.Add(F.Sum(F.Mul(ys[0], r0)), F.Sum(F.Mul(ys[1], r1))).Backward();
        var g0 = w0.Grad!.ToArray();
        var g1 = w1.Grad!.ToArray();
        var e0 = RefBackwardFilter(rx, rr0, 7, 3);
        var e1 = RefBackwardFilter(rx, rr1, 3, 7);
        for (int i = 0; i < m0.Length; i++)
            if (m0[i] == 0)
            {
                Assert.That(g0[i], Is.EqualTo(0f), Ctx($"maskedGrad on: pruned tap {i} must get exactly 0"));
                e0[i] = 0;
            }
        Expect.AllClose(g0, e0.Data, 1e-4, 1e-5, Ctx("maskedGrad on: live taps"));
        Expect.AllClose(g1, e1.Data, 1e-4, 1e-5, Ctx("maskedGrad off: the dense gradient, pruned taps included"));
    }

    [Test]
    public void RejectsInconsistentArguments()
    {
        var x = T(new float[2 * 3 * 4 * 4], 2, 3, 4, 4);
        var ok = T(new float[3 * 5 * 3], 3, 1, 5, 3);
        Expect.Throws<ArgumentException>(() => F.DecomposedDepthwiseConv2d(x, []), "weights", Ctx("no branch"), "at least one");
        Expect.Throws<ArgumentException>(() => F.DecomposedDepthwiseConv2d(x, [ok, T(new float[3 * 4 * 3], 3, 1, 4, 3)]),
            "weights", Ctx("even kernel"), "odd", "kh=4");
        Expect.Throws<ArgumentException>(() => F.DecomposedDepthwiseConv2d(x, [T(new float[2 * 9], 2, 1, 3, 3)]),
            "weights", Ctx("channel mismatch"), "(3, 1, Kh, Kw)");
        Expect.Throws<ArgumentException>(() => F.DecomposedDepthwiseConv2d(x, [ok], [null, null]),
            "masks", Ctx("mask count"), "one entry per branch");
    }

    // ---- float64 references (plain loops) ----

    /// <summary>dx = sum over branches of the correlation of dy[b] with the flipped w[b] * mask[b].</summary>
    private static RefTensor RefBackwardData(RefTensor[] dys, RefTensor[] ws, RefTensor?[] masks)
    {
        var dx = new RefTensor(dys[0].Shape);
        int n = dx.Size(0), c = dx.Size(1), h = dx.Size(2), wd = dx.Size(3);
        for (int b = 0; b < dys.Length; b++)
        {
            int kh = ws[b].Size(2), kw = ws[b].Size(3);
            for (int img = 0; img < n; img++)
                for (int ch = 0; ch < c; ch++)
                    for (int r = 0; r < h; r++)
                        for (int q = 0; q < wd; q++)
                        {
                            // y[r', q'] used x[r, q] with tap (r - r' + kh/2, q - q' + kw/2).
                            double s = 0;
                            for (int i = 0; i < kh; i++)
                                for (int j = 0; j < kw; j++)
                                {
                                    int ro = r - i + kh / 2, qo = q - j + kw / 2;
                                    if (ro < 0 || ro >= h || qo < 0 || qo >= wd) continue;
                                    double m = masks[b] is { } mk ? mk[ch, 0, i, j] : 1;
                                    s += dys[b][img, ch, ro, qo] * ws[b][ch, 0, i, j] * m;
                                }
                            dx[img, ch, r, q] += s;
                        }
        }
        return dx;
    }

    /// <summary>dw[c, 0, i, j] = sum over images and output pixels of x[p + (i, j) - pad] * dy[p] (dense).</summary>
    private static RefTensor RefBackwardFilter(RefTensor x, RefTensor dy, int kh, int kw)
    {
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), wd = x.Size(3);
        var dw = new RefTensor(c, 1, kh, kw);
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                {
                    double s = 0;
                    for (int img = 0; img < n; img++)
                        for (int r = 0; r < h; r++)
                            for (int q = 0; q < wd; q++)
                            {
                                int hi = r + i - kh / 2, wi = q + j - kw / 2;
                                if (hi < 0 || hi >= h || wi < 0 || wi >= wd) continue;
                                s += x[img, ch, hi, wi] * dy[img, ch, r, q];
                            }
                    dw[ch, 0, i, j] = s;
                }
        return dw;
    }
}
