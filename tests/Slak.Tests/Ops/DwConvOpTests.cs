// Depthwise "same" convolution (the large-kernel branches): rectangular odd kernels (7x3, 3x7, 5x5, 13x5, 1x1, 51x5
// on a small image), kernels larger than the image, with and without a weight mask, and both gradient semantics:
// maskedGrad on (our sparse semantics: the gradient of weight * mask, so masked taps get exactly 0) and off (the
// reference code's semantics: the dense gradient of the effective weight, as if the pruned weights were zero). The
// operator is the one-branch case of the decomposed family: its backend calls are checked here with one branch.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class DwConvOpTests(string device) : DeviceTest(device)
{
    private static readonly object[] Cases =
    [
        // n, c, h, w, kh, kw
        new object[] { 1, 1, 1, 1, 1, 1 },
        new object[] { 2, 3, 6, 5, 7, 3 },
        new object[] { 1, 2, 5, 7, 3, 7 },
        new object[] { 2, 2, 5, 5, 5, 5 },
        new object[] { 1, 3, 9, 6, 13, 5 },   // kernel taller than the image
        new object[] { 1, 1, 3, 2, 7, 7 },    // kernel larger than the image in both directions
        new object[] { 2, 4, 1, 1, 3, 3 },    // H = W = 1
        new object[] { 1, 3, 12, 10, 51, 5 }, // SLaK's long branch on a small image (forward only)
        new object[] { 2, 5, 23, 19, 5, 51 },
    ];

    private static float[] F32(RefTensor r) => r.Data.Select(v => (float)v).ToArray();

    [TestCaseSource(nameof(Cases))]
    public void ForwardAndKernelsMatchReference(int n, int c, int h, int w, int kh, int kw)
    {
        var (x, rx) = RandN([n, c, h, w]);
        var (wt, rw) = RandN([c, 1, kh, kw], 1 / Math.Sqrt(kh * kw));
        var mask = Rng.MaskArray(rw.Length, 0.6);
        var m = T(mask, c, 1, kh, kw);
        var rm = RefTensor.From(mask, c, 1, kh, kw);
        string what = $"DepthwiseConv2d x ({n},{c},{h},{w}) kernel {kh}x{kw}";
        Expect.AllClose(F.DepthwiseConv2d(x, wt), Reference.DepthwiseConv2d(rx, rw, null), 1e-5, 1e-5, Ctx(what));
        Expect.AllClose(F.DepthwiseConv2d(x, wt, m), Reference.DepthwiseConv2d(rx, rw, rm), 1e-5, 1e-5, Ctx(what + " masked"));

        // The backend's one family with one branch (what F.DepthwiseConv2d calls).
        var be = x.Backend;
        foreach (bool masked in new[] { false, true })
        {
            var y = Poisoned(n, c, h, w);
            be.DecomposedDwConvForward(x, [wt], [masked ? m : null], [y]);
            Expect.AllClose(y, Reference.DepthwiseConv2d(rx, rw, masked ? rm : null), 1e-5, 1e-5, Ctx($"IBackend.DecomposedDwConvForward, one branch, masked={masked} {what}"));
        }
        if (rx.Length * kh * kw > 40000) return;
        // Backward kernels on poisoned outputs, against numeric VJPs of the reference.
        var (dy, rdy) = RandN([n, c, h, w]);
        Func<RefTensor[], RefTensor> fm = r => Reference.DepthwiseConv2d(r[0], r[1], r[2]);
        RefTensor[] refs = [rx, rw, rm];
        var dx = Poisoned(n, c, h, w);
        be.DecomposedDwConvBackwardData([dy], [wt], [m], dx);
        Expect.AllClose(dx.ToArray(), GradCheck.NumericVjp(fm, refs, rdy.Data, 0), 1e-4, 1e-4, Ctx("IBackend.DecomposedDwConvBackwardData, one branch, masked " + what), [n, c, h, w]);
        var dw = Poisoned(c, 1, kh, kw);
        be.DecomposedDwConvBackwardFilter(x, [dy], [m], [dw]);
        var dwMasked = dw.ToArray();
        Expect.AllClose(dwMasked, GradCheck.NumericVjp(fm, refs, rdy.Data, 1), 1e-4, 1e-4, Ctx("IBackend.DecomposedDwConvBackwardFilter, one branch, skip mask " + what), [c, 1, kh, kw]);
        for (int i = 0; i < mask.Length; i++)
            if (mask[i] == 0) Assert.That(dwMasked[i], Is.EqualTo(0f), Ctx($"masked tap {i} must get exactly 0 with a skip mask"));
        dw = Poisoned(c, 1, kh, kw);
        be.DecomposedDwConvBackwardFilter(x, [dy], [null], [dw]);
        Func<RefTensor[], RefTensor> fd = r => Reference.DepthwiseConv2d(r[0], r[1], null);
        Expect.AllClose(dw.ToArray(), GradCheck.NumericVjp(fd, [rx, rw], rdy.Data, 1), 1e-4, 1e-4, Ctx("IBackend.DecomposedDwConvBackwardFilter, one branch, dense " + what), [c, 1, kh, kw]);
    }

    [TestCase(2, 2, 5, 4, 3, 5)]
    [TestCase(1, 3, 4, 6, 7, 3)]
    [TestCase(1, 1, 2, 3, 5, 5)]
    public void GradientWithoutMask(int n, int c, int h, int w, int kh, int kw)
    {
        var x = Rng.NormalArray(n * c * h * w);
        var wt = Rng.NormalArray(c * kh * kw);
        GradCheck.Check(Dev, Rng, $"DepthwiseConv2d {kh}x{kw} on {h}x{w}", [new("x", x, [n, c, h, w]), new("weight", wt, [c, 1, kh, kw])],
            t => F.DepthwiseConv2d(t[0], t[1]), r => Reference.DepthwiseConv2d(r[0], r[1], null));
    }

    [TestCase(2, 2, 5, 4, 3, 5)]
    [TestCase(1, 3, 4, 6, 7, 3)]
    public void MaskedGradientGivesExactZerosOnPrunedTaps(int n, int c, int h, int w, int kh, int kw)
    {
        var x = Rng.NormalArray(n * c * h * w);
        var wt = Rng.NormalArray(c * kh * kw);
        var mask = Rng.MaskArray(wt.Length, 0.5);
        var rm = RefTensor.From(mask, c, 1, kh, kw);
        // The mask is not a differentiable input: it is captured, on the test device.
        GradCheck.Check(Dev, Rng, $"DepthwiseConv2d masked, maskedGrad on, {kh}x{kw}", [new("x", x, [n, c, h, w]), new("weight", wt, [c, 1, kh, kw])],
            t => F.DepthwiseConv2d(t[0], t[1], T(mask, c, 1, kh, kw), maskedGrad: true), r => Reference.DepthwiseConv2d(r[0], r[1], rm));

        var xt = T(x, n, c, h, w);
        var wv = T(wt, c, 1, kh, kw);
        wv.RequiresGrad = true;
        F.Sum(F.Mul(F.DepthwiseConv2d(xt, wv, T(mask, c, 1, kh, kw), maskedGrad: true), T(Rng.NormalArray(x.Length), n, c, h, w))).Backward();
        var g = wv.Grad!.ToArray();
        for (int i = 0; i < mask.Length; i++)
            if (mask[i] == 0) Assert.That(g[i], Is.EqualTo(0f), Ctx($"pruned tap {i}: gradient must be exactly 0 with maskedGrad"));
    }

    [TestCase(2, 2, 5, 4, 3, 5)]
    [TestCase(1, 3, 4, 6, 7, 3)]
    public void UnmaskedGradientIsTheDenseGradientOfTheEffectiveWeight(int n, int c, int h, int w, int kh, int kw)
    {
        var x = Rng.NormalArray(n * c * h * w);
        var mask = Rng.MaskArray(c * kh * kw, 0.5);
        // As in the reference code, pruned weights are zero: then w * mask == w, and with maskedGrad off the
        // gradient is the dense one (pruned taps may get non-zero gradients, which is what regrowth reads).
        var wt = Rng.NormalArray(mask.Length).Select((v, i) => v * mask[i]).ToArray();
        GradCheck.Check(Dev, Rng, $"DepthwiseConv2d masked, maskedGrad off, {kh}x{kw}", [new("x", x, [n, c, h, w]), new("weight", wt, [c, 1, kh, kw])],
            t => F.DepthwiseConv2d(t[0], t[1], T(mask, c, 1, kh, kw), maskedGrad: false), r => Reference.DepthwiseConv2d(r[0], r[1], null));
    }
}
