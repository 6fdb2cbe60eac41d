// The patchify path of the dense convolution (Conv2dPatchifyKernels: conv2d_patchify.cu + GEMMs) on cuda-emu with every
// emulator sanitizer on:
//   - parity: forward (with and without bias), input gradient, weight gradient and bias gradient against float64 loops
//     written here, at breaker shapes: SLaK's stem (4x4/4, 3 input channels), downsampling (2x2/2), odd channel counts,
//     non-square maps, batch 1 and 3, a map whose size is not a multiple of the stride (the rows and columns no patch
//     reads get a zero input gradient), and a 1x1/1 convolution; outputs NaN-poisoned before every call; the test also
//     asserts that the patchify kernels ran and conv2d.cu's direct kernels did not;
//   - routing: a convolution with padding, a stride other than the kernel or a non-square kernel still runs the direct
//     kernels (Conv2dPatchifyKernels.Applies is the one predicate), and so does every one with the path disabled;
//   - plans: SLaK-T's 12 patchify launches at batch 128 and 256 fit sm_90's limits (grid-stride grids) and report their
//     workspace (P, dP, dy', W' bytes);
//   - tf32: under Precision.Tf32 the path's GEMMs round their inputs to TF32 (the math mode is set for them).
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

[TestFixture]
[NonParallelizable] // Conv2dPatchifyKernels.Disabled is process-wide
public sealed class PatchifyConvTests
{
    private Device _device;
    private EmulatedDevice _emu = null!;
    private EmulatorChecks _checks;
    private TestRandom _rng = null!;

    [SetUp]
    public void Open()
    {
        _device = TestDevices.Open("cuda-emu"); // ignored with the reason when the emulator is unavailable
        _emu = (EmulatedDevice)((CudaBackend)BackendRegistry.For(_device)).Gpu;
        _checks = _emu.Checks;
        _emu.Checks = EmulatorChecks.All;
        _rng = TestRandom.ForCurrentTest();
    }

    [TearDown]
    public void Close()
    {
        if (_emu is not null) _emu.Checks = _checks;
        Conv2dPatchifyKernels.Disabled = false;
    }

    private static readonly string[] PatchifyKernelNames = ["patchify_kernel", "unpatchify_kernel", "patchify_weight_bias_kernel"];
    private static readonly string[] DirectKernelNames = ["conv2d_fwd_kernel", "conv2d_bwd_data_kernel", "conv2d_bwd_filter_kernel"];

    private static readonly object[] Breakers =
    [
        // n, cin, h, w, cout, s (kernel = stride), bias
        new object[] { 1, 3, 8, 12, 5, 4, true },    // SLaK stem geometry, batch 1, non-square map
        new object[] { 3, 3, 16, 8, 7, 4, true },    // stem, batch 3, odd output channels
        new object[] { 3, 5, 6, 10, 7, 2, true },    // downsampling, odd channels both sides
        new object[] { 1, 8, 4, 4, 3, 2, false },    // downsampling without bias
        new object[] { 3, 3, 9, 7, 4, 2, true },     // map not a multiple of the stride: last row and column unread
        new object[] { 2, 3, 5, 3, 2, 1, true },     // 1x1 stride 1: a plain GEMM
    ];

    [TestCaseSource(nameof(Breakers))]
    [KernelParity("patchify_kernel", "unpatchify_kernel", "patchify_weight_bias_kernel")]
    public void PatchifyPathMatchesFloat64References(int n, int cin, int h, int w, int cout, int s, bool bias)
    {
        int oh = (h - s) / s + 1, ow = (w - s) / s + 1;
        var x = _rng.NormalArray((long)n * cin * h * w);
        var wt = _rng.NormalArray((long)cout * cin * s * s, 1 / Math.Sqrt(cin * s * s));
        var b = _rng.NormalArray(cout);
        var dy = _rng.NormalArray((long)n * cout * oh * ow);
        var r = Reference(x, wt, b, dy, n, cin, h, w, cout, s, bias);
        string what = $"patchify conv x ({n},{cin},{h},{w}) -> {cout}, {s}x{s}/{s}, bias {bias}";

        using var tx = Tensor.FromArray(x, [n, cin, h, w], _device);
        using var tw = Tensor.FromArray(wt, [cout, cin, s, s], _device);
        using var tb = Tensor.FromArray(b, [cout], _device);
        using var tdy = Tensor.FromArray(dy, [n, cout, oh, ow], _device);
        using var y = Tensor.Full([n, cout, oh, ow], float.NaN, _device);
        using var dx = Tensor.Full([n, cin, h, w], float.NaN, _device);
        using var dw = Tensor.Full([cout, cin, s, s], float.NaN, _device);
        using var db = Tensor.Full([cout], float.NaN, _device);
        var be = tx.Backend;
        var before = Counts();
        be.Conv2dForward(tx, tw, bias ? tb : null, y, s, s, 0, 0);
        be.Conv2dBackwardData(tdy, tw, dx, s, s, 0, 0);
        be.Conv2dBackwardFilter(tx, tdy, dw, bias ? db : null, s, s, 0, 0);
        var launched = Launched(before);

        // float32 GEMM sums of K = cin*s*s (forward) / cout (input gradient) / n*oh*ow (weight gradient) products.
        EmulatorTestSupport.AssertClose(y.ToArray(), r.Y, 1e-5, 1e-5, _rng.Ctx(what + ": y"));
        EmulatorTestSupport.AssertClose(dx.ToArray(), r.Dx, 1e-5, 1e-5, _rng.Ctx(what + ": dx"));
        EmulatorTestSupport.AssertClose(dw.ToArray(), r.Dw, 1e-5, 1e-5, _rng.Ctx(what + ": dw"));
        if (bias) EmulatorTestSupport.AssertClose(db.ToArray(), r.Db, 1e-5, 1e-5, _rng.Ctx(what + ": dbias"));
        Assert.That(launched, Does.Contain("patchify_kernel").And.Contain("unpatchify_kernel"), what);
        Assert.That(launched.Contains("patchify_weight_bias_kernel"), Is.EqualTo(bias), what + ": the bias column");
        Assert.That(launched.Intersect(DirectKernelNames), Is.Empty, what + ": no direct kernel");
    }

    private static readonly object[] NotPatchify =
    [
        // n, cin, h, w, cout, kh, kw, stride h, stride w, pad
        new object[] { 2, 3, 8, 8, 4, 4, 4, 4, 4, 1 },  // padding
        new object[] { 1, 2, 9, 9, 3, 3, 3, 2, 2, 0 },  // stride other than the kernel
        new object[] { 1, 2, 8, 8, 3, 2, 4, 2, 4, 0 },  // kernel = stride per axis, but not square
        new object[] { 1, 2, 8, 8, 3, 2, 2, 2, 1, 0 },  // square kernel, strides differ
    ];

    [TestCaseSource(nameof(NotPatchify))]
    public void OtherConvolutionsRunTheDirectKernels(int n, int cin, int h, int w, int cout, int kh, int kw, int sh, int sw, int pad)
    {
        var p = new Conv2dParams(n, cin, h, w, cout, kh, kw, sh, sw, pad, pad, (h + 2 * pad - kh) / sh + 1, (w + 2 * pad - kw) / sw + 1);
        Assert.That(Conv2dPatchifyKernels.Applies(p), Is.False, $"{p}: the predicate");
        var launched = RunAll(n, cin, h, w, cout, kh, kw, sh, sw, pad);
        Assert.That(launched, Is.SupersetOf(DirectKernelNames), $"{p}: direct kernels");
        Assert.That(launched.Intersect(PatchifyKernelNames), Is.Empty, $"{p}: no patchify kernel");
    }

    [Test]
    public void DisabledPathRunsTheDirectKernelsForTheStem()
    {
        var stem = new Conv2dParams(2, 3, 8, 8, 4, 4, 4, 4, 4, 0, 0, 2, 2);
        Assert.That(Conv2dPatchifyKernels.Applies(stem), Is.True, "the stem takes the patchify path");
        Conv2dPatchifyKernels.Disabled = true;
        Assert.That(Conv2dPatchifyKernels.Applies(stem), Is.False, "disabled");
        var launched = RunAll(2, 3, 8, 8, 4, 4, 4, 4, 4, 0);
        Assert.That(launched, Is.SupersetOf(DirectKernelNames), "disabled: direct kernels");
        Assert.That(launched.Intersect(PatchifyKernelNames), Is.Empty, "disabled: no patchify kernel");
    }

    [Test]
    public void Tf32RoundsThePatchifyGemmInputs()
    {
        const int n = 2, cin = 3, h = 16, w = 16, cout = 6, s = 4;
        var x = _rng.UniformArray((long)n * cin * h * w, -1, 1);
        var wt = _rng.UniformArray((long)cout * cin * s * s, -1, 1);
        var b = new float[cout];
        var fp32 = Reference(x, wt, b, new float[n * cout * 16], n, cin, h, w, cout, s, false).Y;
        var tf32 = Reference(x.Select(ReducedFloat.RoundTf32).ToArray(), wt.Select(ReducedFloat.RoundTf32).ToArray(),
                             b, new float[n * cout * 16], n, cin, h, w, cout, s, false).Y;
        using var tx = Tensor.FromArray(x, [n, cin, h, w], _device);
        using var tw = Tensor.FromArray(wt, [cout, cin, s, s], _device);
        using var y = Tensor.Full([n, cout, 4, 4], float.NaN, _device);
        using (MixedPrecision.Use(Slak.Precision.Tf32)) tx.Backend.Conv2dForward(tx, tw, null, y, s, s, 0, 0);
        var got = y.ToArray();
        double toTf32 = got.Zip(tf32, (g, r) => Math.Abs(g - r)).Max(), toFp32 = got.Zip(fp32, (g, r) => Math.Abs(g - r)).Max();
        // 48 products of magnitude <= 1: float32 summation error well below 1e-5; TF32 inputs move a sum by ~1e-3.
        Assert.That(toTf32, Is.LessThan(1e-5), _rng.Ctx("tf32 conv vs float64 on TF32-rounded inputs"));
        Assert.That(toFp32, Is.GreaterThan(1e-4), _rng.Ctx("tf32 conv must differ from fp32"));
    }

    [TestCase(128)]
    [TestCase(256)]
    public void SlakTinyPlansFitTheDeviceAndReportTheirWorkspace(int batch)
    {
        var l = DeviceLimits.ForArchitecture(90);
        var model = new Slak.Models.SlakModel(Slak.Models.ModelPresets.Get("slak_tiny").Config, Slak.NN.ModuleInit.ShapeOnly);
        var plans = ModelLaunches.Enumerate(model, 224, batch, fused: true, l).Where(p => p.What.StartsWith("patchify ", StringComparison.Ordinal)).ToList();
        Assert.That(plans, Has.Count.EqualTo(12), "stem + 3 downsampling layers x 3 passes");
        foreach (var (what, plan) in plans)
        {
            Assert.That(LaunchPlans.Violation(plan, l), Is.EqualTo(PlanViolation.WithinLimits), $"{what} at batch {batch}: {plan}");
            Assert.That(plan.GridX, Is.InRange(1u, (uint)LaunchPlans.GridStrideMaxBlocks), $"{what}: grid-stride grid");
        }
        // The stem's forward at 224 px: P has 3*4*4 + 1 (ones) rows of batch*56*56 columns, plus W' = [W | bias].
        long stemForward = 4L * ((48 + 1) * batch * 56L * 56 + 124 * (48 + 1));
        Assert.That(plans[0].Plan.WorkspaceBytes, Is.EqualTo(stemForward), $"stem forward workspace at batch {batch}");
        // The last downsampling's weight gradient: P (499*4 rows) and dy' (998 rows), batch*7*7 columns.
        Assert.That(plans[^1].Plan.WorkspaceBytes, Is.EqualTo(4L * (499 * 4 + 998) * batch * 49), "down 3-4 weight gradient");
    }

    private HashSet<string> RunAll(int n, int cin, int h, int w, int cout, int kh, int kw, int sh, int sw, int pad)
    {
        int oh = (h + 2 * pad - kh) / sh + 1, ow = (w + 2 * pad - kw) / sw + 1;
        using var tx = Tensor.FromArray(_rng.NormalArray((long)n * cin * h * w), [n, cin, h, w], _device);
        using var tw = Tensor.FromArray(_rng.NormalArray((long)cout * cin * kh * kw), [cout, cin, kh, kw], _device);
        using var tb = Tensor.FromArray(_rng.NormalArray(cout), [cout], _device);
        using var tdy = Tensor.FromArray(_rng.NormalArray((long)n * cout * oh * ow), [n, cout, oh, ow], _device);
        using var y = Tensor.Empty([n, cout, oh, ow], _device);
        using var dx = Tensor.Empty([n, cin, h, w], _device);
        using var dw = Tensor.Empty([cout, cin, kh, kw], _device);
        using var db = Tensor.Empty([cout], _device);
        var before = Counts();
        var be = tx.Backend;
        be.Conv2dForward(tx, tw, tb, y, sh, sw, pad, pad);
        be.Conv2dBackwardData(tdy, tw, dx, sh, sw, pad, pad);
        be.Conv2dBackwardFilter(tx, tdy, dw, db, sh, sw, pad, pad);
        return Launched(before);
    }

    private static Dictionary<string, long> Counts() => new(EmulatedDevice.LaunchCounts, StringComparer.Ordinal);

    private static HashSet<string> Launched(Dictionary<string, long> before) =>
        EmulatedDevice.LaunchCounts.Where(c => c.Value > before.GetValueOrDefault(c.Key)).Select(c => c.Key)
            .ToHashSet(StringComparer.Ordinal);

    private sealed record Expected(double[] Y, double[] Dx, double[] Dw, double[] Db);

    // Direct float64 loops of the convolution with kernel = stride = s and no padding, and its three gradients.
    private static Expected Reference(float[] x, float[] wt, float[] b, float[] dy, int n, int cin, int h, int w,
                                      int cout, int s, bool bias)
    {
        int oh = (h - s) / s + 1, ow = (w - s) / s + 1;
        var y = new double[n * cout * oh * ow];
        var dx = new double[x.Length];
        var dw = new double[wt.Length];
        var db = new double[cout];
        for (int img = 0; img < n; img++)
            for (int co = 0; co < cout; co++)
                for (int r = 0; r < oh; r++)
                    for (int q = 0; q < ow; q++)
                    {
                        int yi = ((img * cout + co) * oh + r) * ow + q;
                        double acc = bias ? b[co] : 0, g = dy[yi];
                        db[co] += g;
                        for (int ci = 0; ci < cin; ci++)
                            for (int i = 0; i < s; i++)
                                for (int j = 0; j < s; j++)
                                {
                                    int xi = ((img * cin + ci) * h + r * s + i) * w + q * s + j;
                                    int wi = ((co * cin + ci) * s + i) * s + j;
                                    acc += (double)x[xi] * wt[wi];
                                    dx[xi] += g * wt[wi];
                                    dw[wi] += g * x[xi];
                                }
                        y[yi] = acc;
                    }
        return new Expected(y, dx, dw, db);
    }
}
