// Linear (with and without bias, 2-D and 4-D inputs), the backend GEMM (every transpose combination, alpha/beta)
// and dense Conv2d (stride 1/2/4, padding, bias on/off, the SLaK stem 4x4/4 and downsample 2x2/2 shapes): forward
// against float64 references, kernels on NaN-poisoned outputs, gradients by GradCheck. The kernels behind these
// are being replaced by optimized ones, so nothing here depends on how they compute.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class Conv2dOpTests(string device) : DeviceTest(device)
{
    private static float[] F32(RefTensor r) => r.Data.Select(v => (float)v).ToArray();

    [TestCase(new[] { 1, 1 }, 1, true)]
    [TestCase(new[] { 5, 7 }, 3, true)]
    [TestCase(new[] { 5, 7 }, 3, false)]
    [TestCase(new[] { 2, 3, 4, 6 }, 5, true)]
    [TestCase(new[] { 2, 3, 4, 6 }, 1, false)]
    [TestCase(new[] { 2, 9, 9, 33 }, 65, true)]
    public void LinearForwardAndGradient(int[] xShape, int outF, bool bias)
    {
        int inF = xShape[^1];
        var (x, rx) = RandN(xShape);
        var (w, rw) = RandN([outF, inF], 1 / Math.Sqrt(inF));
        var (b, rb) = RandN([outF]);
        var expected = Reference.Linear(rx, rw, bias ? rb : null);
        Expect.AllClose(F.Linear(x, w, bias ? b : null), expected, 1e-5, 1e-5, Ctx($"Linear x {Slak.Shapes.Format(xShape)} -> {outF}, bias {bias}"));
        if (rx.Length > 200) return;
        GradInput[] inputs = bias
            ? [new("x", F32(rx), xShape), new("weight", F32(rw), [outF, inF]), new("bias", F32(rb), [outF])]
            : [new("x", F32(rx), xShape), new("weight", F32(rw), [outF, inF])];
        GradCheck.Check(Dev, Rng, $"Linear bias={bias}", inputs,
            t => F.Linear(t[0], t[1], bias ? t[2] : null), r => Reference.Linear(r[0], r[1], bias ? r[2] : null));
    }

    [Test]
    public void LinearGradientOnlyForWhatRequiresIt()
    {
        int[] xs = [3, 4];
        GradCheck.Check(Dev, Rng, "Linear, frozen weight", [new("x", Rng.NormalArray(12), xs), new("weight", Rng.NormalArray(8), [2, 4], false), new("bias", Rng.NormalArray(2), [2])],
            t => F.Linear(t[0], t[1], t[2]), r => Reference.Linear(r[0], r[1], r[2]));
        GradCheck.Check(Dev, Rng, "Linear, constant input", [new("x", Rng.NormalArray(12), xs, false), new("weight", Rng.NormalArray(8), [2, 4]), new("bias", Rng.NormalArray(2), [2], false)],
            t => F.Linear(t[0], t[1], t[2]), r => Reference.Linear(r[0], r[1], r[2]));
    }

    [TestCase(false, false)]
    [TestCase(false, true)]
    [TestCase(true, false)]
    [TestCase(true, true)]
    public void GemmAllTransposesWithAlphaBeta(bool transA, bool transB)
    {
        int m = Rng.Int(1, 70), n = Rng.Int(1, 70), k = Rng.Int(1, 130);
        var (a, ra) = RandN(transA ? [k, m] : [m, k]);
        var (b, rb) = RandN(transB ? [n, k] : [k, n]);
        var c = Poisoned(m, n);
        a.Backend.Gemm(transA, transB, m, n, k, 1f, a, b, 0f, c);
        string what = $"Gemm {(transA ? "T" : "N")}{(transB ? "T" : "N")} m={m} n={n} k={k}";
        double atol = 1e-5 * Math.Sqrt(k);
        Expect.AllClose(c, Reference.Gemm(transA, transB, m, n, k, 1, ra, rb, 0, new RefTensor(m, n)), atol, 1e-5, Ctx(what + ", beta 0 over NaN"));
        var (c0, rc0) = RandN([m, n]);
        a.Backend.Gemm(transA, transB, m, n, k, -0.5f, a, b, 2f, c0);
        Expect.AllClose(c0, Reference.Gemm(transA, transB, m, n, k, -0.5, ra, rb, 2, rc0), atol, 1e-5, Ctx(what + ", alpha -0.5, beta 2"));
    }

    private static readonly object[] ConvCases =
    [
        // n, cin, h, w, cout, kh, kw, stride, pad, bias
        new object[] { 1, 1, 1, 1, 1, 1, 1, 1, 0, true },
        new object[] { 2, 3, 8, 8, 4, 4, 4, 4, 0, true },    // SLaK stem: 4x4 stride 4
        new object[] { 2, 4, 6, 6, 5, 2, 2, 2, 0, true },    // SLaK downsample: 2x2 stride 2
        new object[] { 1, 2, 7, 5, 3, 3, 3, 1, 1, false },
        new object[] { 2, 3, 9, 7, 2, 3, 5, 2, 2, true },    // odd size, rectangular kernel, stride 2 with padding
        new object[] { 1, 2, 11, 10, 3, 4, 4, 4, 1, false }, // stride 4 with padding, ragged edge
        new object[] { 1, 1, 3, 3, 2, 5, 5, 1, 1, true },    // kernel as large as the padded image (3 + 2 = 5)
        new object[] { 2, 5, 17, 13, 7, 3, 3, 2, 1, true },  // larger forward-only case
    ];

    [TestCaseSource(nameof(ConvCases))]
    [KernelParity("conv2d_bwd_bias_kernel", "conv2d_bwd_data_kernel", "conv2d_bwd_filter_kernel", "conv2d_fwd_kernel")]
    public void Conv2dForwardKernelsAndGradient(int n, int cin, int h, int w, int cout, int kh, int kw, int stride, int pad, bool bias)
    {
        var (x, rx) = RandN([n, cin, h, w]);
        var (wt, rw) = RandN([cout, cin, kh, kw], 1 / Math.Sqrt(cin * kh * kw));
        var (b, rb) = RandN([cout]);
        var expected = Reference.Conv2d(rx, rw, bias ? rb : null, stride, stride, pad, pad);
        string what = $"Conv2d x ({n},{cin},{h},{w}) w ({cout},{cin},{kh},{kw}) stride {stride} pad {pad} bias {bias}";
        Expect.AllClose(F.Conv2d(x, wt, bias ? b : null, stride, pad), expected, 1e-5, 1e-5, Ctx(what));
        var y = Poisoned(expected.Shape);
        x.Backend.Conv2dForward(x, wt, bias ? b : null, y, stride, stride, pad, pad);
        Expect.AllClose(y, expected, 1e-5, 1e-5, Ctx("IBackend.Conv2dForward " + what));

        // Backward kernels on poisoned outputs, against numeric VJPs of the reference.
        if (rx.Length + rw.Length > 700) return;
        var (dy, rdy) = RandN(expected.Shape);
        Func<RefTensor[], RefTensor> f = r => Reference.Conv2d(r[0], r[1], bias ? r[2] : null, stride, stride, pad, pad);
        RefTensor[] refs = [rx, rw, rb];
        var dx = Poisoned(n, cin, h, w);
        x.Backend.Conv2dBackwardData(dy, wt, dx, stride, stride, pad, pad);
        Expect.AllClose(dx.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 0), 1e-4, 1e-4, Ctx("IBackend.Conv2dBackwardData " + what), [n, cin, h, w]);
        var dw = Poisoned(cout, cin, kh, kw);
        var db = bias ? Poisoned(cout) : null;
        x.Backend.Conv2dBackwardFilter(x, dy, dw, db, stride, stride, pad, pad);
        Expect.AllClose(dw.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 1), 1e-4, 1e-4, Ctx("IBackend.Conv2dBackwardFilter dw " + what), [cout, cin, kh, kw]);
        if (bias) Expect.AllClose(db!.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 2), 1e-4, 1e-4, Ctx("IBackend.Conv2dBackwardFilter dbias " + what));

        GradInput[] inputs = bias
            ? [new("x", F32(rx), [n, cin, h, w]), new("weight", F32(rw), [cout, cin, kh, kw]), new("bias", F32(rb), [cout])]
            : [new("x", F32(rx), [n, cin, h, w]), new("weight", F32(rw), [cout, cin, kh, kw])];
        GradCheck.Check(Dev, Rng, what, inputs, t => F.Conv2d(t[0], t[1], bias ? t[2] : null, stride, pad), f);
    }

    [Test]
    public void Conv2dPerAxisStrideAndPadding()
    {
        var (x, rx) = RandN([1, 2, 7, 9]);
        var (w, rw) = RandN([3, 2, 3, 1]);
        var y = F.Conv2d(x, w, null, (2, 1), (0, 2));
        Expect.AllClose(y, Reference.Conv2d(rx, rw, null, 2, 1, 0, 2), 1e-5, 1e-5, Ctx("Conv2d stride (2,1) padding (0,2)"));
        GradCheck.Check(Dev, Rng, "Conv2d per-axis", [new("x", F32(rx), [1, 2, 7, 9]), new("weight", F32(rw), [3, 2, 3, 1])],
            t => F.Conv2d(t[0], t[1], null, (2, 1), (0, 2)), r => Reference.Conv2d(r[0], r[1], null, 2, 1, 0, 2));
    }
}
