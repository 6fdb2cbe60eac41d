// The GEMMs inside the CUDA backend's own operators under --precision bf16 on cuda-emu: the fused MLP's forward
// (LinearBiasGelu) and input gradient (LinearBackwardDataGelu), and LinearBias (the MLP's second GEMM, Linear with
// bias) run IGpuDevice.GemmBf16 on 16-bit operands (IBf16KernelBackend), reading a held bf16 activation directly and
// packing a float32 operand, with the bias, GELU and bias-gradient epilogues in float32. Checked, outputs poisoned with
// NaN, with the input held as a 16-bit block and in float32 storage:
//   - GemmBf16 ran once per operator call (EmulatedDevice.Bf16GemmCount), and with a held input no widening kernel
//     (bf16_to_f32_kernel) ran and the input stayed 16-bit;
// The same for the gradients of the stem / downsampling convolutions' patchify path (kernel == stride, no padding):
// the input gradient's strided-batched GEMM reads dy and W as bf16, the weight gradient's GEMM packs the patches and
// dy's permutation (one GemmBf16StridedBatched, one GemmBf16); the bias gradient reads the rounded dy in float32 as
// before. The patchify forward packs the patches and W (one GemmBf16StridedBatched) and adds the float32 bias after the
// GEMM (the rounding path folds it into the GEMM as a ones row): before Bf16Backend stores y it equals the rounding
// path within float32 summation order (|got - want|
// <= 1e-6 |want| + 1e-6; the values are O(1)), and the stored y equals Bf16Backend on the CPU within |got - cpu|
// <= 2^-7 |cpu| + 1e-5 (both rounded to bf16 from float32 sums in different orders: a rounding that falls the other way
// costs one bf16 ulp, at most 2^-7 relative).
//   - every output equals the rounding path (the float32 operator on operands rounded to bf16, what Bf16Backend ran
//     before, with its outputs rounded where Bf16Backend stores them) bit for bit: the emulator's GemmBf16 widens
//     exactly and runs the same host GEMM.
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Precision;

public sealed class CudaBf16GemmPathTests
{
    private const string Widen = "bf16_to_f32_kernel";

    private static CudaBackend Emu()
    {
        if (!CudaBackend.IsAvailable(Device.CudaEmu, out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
        return (CudaBackend)BackendRegistry.For(Device.CudaEmu);
    }

    private static Tensor T(float[] values, params int[] shape) => Tensor.FromArray(values, shape, Device.CudaEmu);

    private static Tensor Poisoned(params int[] shape) => Tensor.Full(shape, float.NaN, Device.CudaEmu);

    private static float[] Rounded(float[] v) => [.. v.Select(ReducedFloat.RoundBf16)];

    private static void SameBits(float[] got, float[] want, string what)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length), what);
        for (int i = 0; i < got.Length; i++)
            Assert.That(BitConverter.SingleToUInt32Bits(got[i]), Is.EqualTo(BitConverter.SingleToUInt32Bits(want[i])),
                        $"{what}[{i}]: bf16 path {got[i]:R}, rounding path {want[i]:R}");
    }

    // Runs op through Bf16Backend on cuda-emu and returns how many GEMMs with bf16 operands and widening kernels
    // it ran.
    private static (long Gemms, long Widened) Counted(Action op)
    {
        long gemms = EmulatedDevice.Bf16GemmCount, widened = EmulatedDevice.LaunchCounts.GetValueOrDefault(Widen);
        op();
        return (EmulatedDevice.Bf16GemmCount - gemms, EmulatedDevice.LaunchCounts.GetValueOrDefault(Widen) - widened);
    }

    [TestCase(37, 19, 23, true)]
    [TestCase(37, 19, 23, false)]
    [TestCase(5, 96, 384, true)]
    public void LinearBiasAndTheFusedMlpForwardRunGemmBf16AndEqualTheRoundingPath(int rows, int inF, int outF, bool hold)
    {
        var cuda = Emu();
        var bf16 = Bf16Backend.Wrap(cuda);
        var rng = TestRandom.ForCurrentTest();
        var x = rng.NormalArray((long)rows * inF);
        var w = rng.NormalArray((long)outF * inF, 1 / Math.Sqrt(inF));
        var bias = rng.NormalArray(outF);
        string what = $"rows {rows}, in {inF}, out {outF}, x held as bf16: {hold}";
        using var xt = T(x, rows, inF);
        using var wt = T(w, outF, inF);
        using var bt = T(bias, outF);
        if (hold) ((IBf16KernelBackend)cuda).StoreBf16(xt);

        using var y = Poisoned(rows, outF);
        var (gemms, widened) = Counted(() => bf16.LinearBias(xt, wt, bt, y));
        Assert.That(gemms, Is.EqualTo(1), rng.Ctx($"LinearBias ran GemmBf16, {what}"));
        Assert.That(widened, Is.Zero, rng.Ctx($"LinearBias widened nothing, {what}"));
        using var pre = Poisoned(rows, outF);
        using var act = Poisoned(rows, outF);
        (gemms, widened) = Counted(() => bf16.LinearBiasGelu(xt, wt, bt, pre, act));
        Assert.That(gemms, Is.EqualTo(1), rng.Ctx($"LinearBiasGelu ran GemmBf16, {what}"));
        Assert.That(widened, Is.Zero, rng.Ctx($"LinearBiasGelu widened nothing, {what}"));
        Assert.That(((CudaStorage)xt.Storage).IsBf16, Is.EqualTo(hold), rng.Ctx($"x keeps its storage, {what}"));

        // The rounding path: the float32 operators on the rounded operands, outputs rounded as Bf16Backend stores them.
        using var xrt = T(Rounded(x), rows, inF);
        using var wrt = T(Rounded(w), outF, inF);
        using var ry = Poisoned(rows, outF);
        cuda.LinearBias(xrt, wrt, bt, ry);
        using var rpre = Poisoned(rows, outF);
        using var ract = Poisoned(rows, outF);
        cuda.LinearBiasGelu(xrt, wrt, bt, rpre, ract);
        SameBits(y.ToArray(), Rounded(ry.ToArray()), rng.Ctx($"LinearBias, {what}"));
        SameBits(pre.ToArray(), Rounded(rpre.ToArray()), rng.Ctx($"LinearBiasGelu pre, {what}"));
        SameBits(act.ToArray(), Rounded(ract.ToArray()), rng.Ctx($"LinearBiasGelu output, {what}"));
    }

    [TestCase(37, 23, 19, true)]
    [TestCase(37, 23, 19, false)]
    public void TheFusedMlpInputGradientRunsGemmBf16AndEqualsTheRoundingPath(int rows, int outF, int hidden, bool hold)
    {
        var cuda = Emu();
        var bf16 = Bf16Backend.Wrap(cuda);
        var rng = TestRandom.ForCurrentTest();
        var dy = rng.NormalArray((long)rows * outF);
        var w = rng.NormalArray((long)outF * hidden, 1 / Math.Sqrt(hidden));
        var pre = rng.NormalArray((long)rows * hidden);
        string what = $"rows {rows}, out {outF}, hidden {hidden}, GELU input held as bf16: {hold}";
        using var dyt = T(dy, rows, outF);
        using var wt = T(w, outF, hidden);
        using var pt = T(pre, rows, hidden);
        if (hold) ((IBf16KernelBackend)cuda).StoreBf16(pt);
        using var dpre = Poisoned(rows, hidden);
        using var dbias = Poisoned(hidden);
        var (gemms, widened) = Counted(() => bf16.LinearBackwardDataGelu(dyt, wt, pt, dpre, dbias));
        Assert.That(gemms, Is.EqualTo(1), rng.Ctx($"GemmBf16 ran, {what}"));
        // GELU's derivative reads the held GELU input through one widened copy (float32 kernel), nothing else widens.
        Assert.That(widened, Is.EqualTo(hold ? 1 : 0), rng.Ctx($"widening kernels, {what}"));
        Assert.That(((CudaStorage)pt.Storage).IsBf16, Is.EqualTo(hold), rng.Ctx($"the GELU input keeps its storage, {what}"));

        using var dyr = T(Rounded(dy), rows, outF);
        using var wr = T(Rounded(w), outF, hidden);
        using var pf = T(hold ? Rounded(pre) : pre, rows, hidden);
        using var rdpre = Poisoned(rows, hidden);
        using var rdbias = Poisoned(hidden);
        cuda.LinearBackwardDataGelu(dyr, wr, pf, rdpre, rdbias);
        SameBits(dpre.ToArray(), rdpre.ToArray(), rng.Ctx($"dpre, {what}"));
        SameBits(dbias.ToArray(), rdbias.ToArray(), rng.Ctx($"dbias, {what}"));
    }

    [TestCase(2, 3, 5, 16, 16, 4, true)]   // the stem's 4x4/4 (3 input channels)
    [TestCase(3, 6, 4, 10, 6, 2, false)]   // a downsampling 2x2/2, H != W
    [TestCase(2, 70, 9, 4, 4, 2, true)]    // K = 280 over the host GEMM's 256-deep blocks
    public void PatchifyConvolutionGradientsRunGemmBf16AndEqualTheRoundingPath(int n, int cin, int cout, int h, int w,
                                                                              int s, bool hold)
    {
        var cuda = Emu();
        var bf16 = Bf16Backend.Wrap(cuda);
        var rng = TestRandom.ForCurrentTest();
        int oh = h / s, ow = w / s;
        var x = rng.NormalArray((long)n * cin * h * w);
        var wt = rng.NormalArray((long)cout * cin * s * s, 1 / Math.Sqrt(cin * s * s));
        var dy = rng.NormalArray((long)n * cout * oh * ow);
        string what = $"x ({n},{cin},{h},{w}), {cout} outputs, {s}x{s}/{s}, x held as bf16: {hold}";
        using var xt = T(x, n, cin, h, w);
        using var wgt = T(wt, cout, cin, s, s);
        using var dyt = T(dy, n, cout, oh, ow);
        if (hold) ((IBf16KernelBackend)cuda).StoreBf16(xt);

        using var dx = Poisoned(n, cin, h, w);
        var (gemms, widened) = Counted(() => bf16.Conv2dBackwardData(dyt, wgt, dx, s, s, 0, 0));
        Assert.That(gemms, Is.EqualTo(1), rng.Ctx($"input gradient: one strided-batched GemmBf16, {what}"));
        Assert.That(widened, Is.Zero, rng.Ctx($"input gradient widened nothing, {what}"));
        using var dw = Poisoned(cout, cin, s, s);
        using var db = Poisoned(cout);
        (gemms, widened) = Counted(() => bf16.Conv2dBackwardFilter(xt, dyt, dw, db, s, s, 0, 0));
        Assert.That(gemms, Is.EqualTo(1), rng.Ctx($"weight gradient: GemmBf16 once, {what}"));
        // The patchify kernel reads x as float32: a held x through one widened copy (as the rounding path's one copy).
        Assert.That(widened, Is.EqualTo(hold ? 1 : 0), rng.Ctx($"weight gradient's widening kernels, {what}"));
        Assert.That(((CudaStorage)xt.Storage).IsBf16, Is.EqualTo(hold), rng.Ctx($"x keeps its storage, {what}"));

        using var xr = T(Rounded(x), n, cin, h, w);
        using var wr = T(Rounded(wt), cout, cin, s, s);
        using var dyr = T(Rounded(dy), n, cout, oh, ow);
        using var rdx = Poisoned(n, cin, h, w);
        cuda.Conv2dBackwardData(dyr, wr, rdx, s, s, 0, 0);
        using var rdw = Poisoned(cout, cin, s, s);
        using var rdb = Poisoned(cout);
        cuda.Conv2dBackwardFilter(xr, dyr, rdw, rdb, s, s, 0, 0);
        SameBits(dx.ToArray(), rdx.ToArray(), rng.Ctx($"input gradient, {what}"));
        SameBits(dw.ToArray(), rdw.ToArray(), rng.Ctx($"weight gradient, {what}"));
        SameBits(db.ToArray(), rdb.ToArray(), rng.Ctx($"bias gradient, {what}"));
    }

    [TestCase(2, 3, 5, 16, 16, 4, true, true)]   // the stem's 4x4/4 (3 input channels)
    [TestCase(3, 6, 4, 10, 6, 2, false, true)]   // a downsampling 2x2/2, H != W
    [TestCase(2, 70, 9, 4, 4, 2, true, false)]   // K = 280 over the host GEMM's 256-deep blocks, no bias
    public void PatchifyConvolutionForwardRunsGemmBf16WithAFloat32BiasEpilogue(int n, int cin, int cout, int h, int w,
                                                                               int s, bool hold, bool withBias)
    {
        var cuda = Emu();
        var bf16 = Bf16Backend.Wrap(cuda);
        var rng = TestRandom.ForCurrentTest();
        int oh = h / s, ow = w / s;
        var x = rng.NormalArray((long)n * cin * h * w);
        var wt = rng.NormalArray((long)cout * cin * s * s, 1 / Math.Sqrt(cin * s * s));
        var bias = rng.NormalArray(cout);
        string what = $"x ({n},{cin},{h},{w}), {cout} outputs, {s}x{s}/{s}, x held as bf16: {hold}, bias: {withBias}";
        using var xt = T(x, n, cin, h, w);
        using var wgt = T(wt, cout, cin, s, s);
        using var bt = withBias ? T(bias, cout) : null;
        using var xr = T(Rounded(x), n, cin, h, w);
        using var wr = T(Rounded(wt), cout, cin, s, s);

        // Before storing: the bf16 GEMM and the bias epilogue against the rounding path's float32 output.
        using var yf = Poisoned(n, cout, oh, ow);
        var (gemms, _) = Counted(() =>
            Assert.That(((IBf16KernelBackend)cuda).TryConv2dForwardBf16(xt, wgt, bt, yf, s, s, 0, 0), Is.True));
        Assert.That(gemms, Is.EqualTo(1), rng.Ctx($"forward: one strided-batched GemmBf16, {what}"));
        using var ry = Poisoned(n, cout, oh, ow);
        cuda.Conv2dForward(xr, wr, bt, ry, s, s, 0, 0);
        var want = ry.ToArray();
        Assert.That(want.All(float.IsFinite), rng.Ctx($"the rounding path wrote every output, {what}"));
        Expect.AllClose(yf.ToArray(), [.. want.Select(v => (double)v)], 1e-6, 1e-6,
                        rng.Ctx($"forward before storing vs the rounding path, {what}"));

        // Through Bf16Backend: y stored as bf16, against Bf16Backend on the CPU.
        if (hold) ((IBf16KernelBackend)cuda).StoreBf16(xt);
        using var y = Poisoned(n, cout, oh, ow);
        long widenedBefore = EmulatedDevice.LaunchCounts.GetValueOrDefault(Widen);
        (gemms, _) = Counted(() => bf16.Conv2dForward(xt, wgt, bt, y, s, s, 0, 0));
        long widened = EmulatedDevice.LaunchCounts.GetValueOrDefault(Widen) - widenedBefore;
        Assert.That(gemms, Is.EqualTo(1), rng.Ctx($"stored forward: one strided-batched GemmBf16, {what}"));
        // The patchify kernel reads x as float32: a held x through one widened copy (as the rounding path's one copy).
        Assert.That(widened, Is.EqualTo(hold ? 1 : 0), rng.Ctx($"forward's widening kernels, {what}"));
        Assert.That(((CudaStorage)xt.Storage).IsBf16, Is.EqualTo(hold), rng.Ctx($"x keeps its storage, {what}"));
        Assert.That(((CudaStorage)y.Storage).IsBf16, Is.True, rng.Ctx($"y stored as a 16-bit block, {what}"));
        var cpu = Bf16Backend.Wrap(BackendRegistry.For(Device.Cpu));
        using var cx = Tensor.FromArray(x, [n, cin, h, w], Device.Cpu);
        using var cw = Tensor.FromArray(wt, [cout, cin, s, s], Device.Cpu);
        using var cb = withBias ? Tensor.FromArray(bias, [cout], Device.Cpu) : null;
        using var cy = Tensor.Full([n, cout, oh, ow], float.NaN, Device.Cpu);
        cpu.Conv2dForward(cx, cw, cb, cy, s, s, 0, 0);
        var got = y.ToArray();
        Assert.That(cy.ToArray().All(float.IsFinite), rng.Ctx($"the CPU wrote every output, {what}"));
        Assert.That(got.All(v => v == ReducedFloat.RoundBf16(v)), rng.Ctx($"stored y holds bf16 values, {what}"));
        Expect.AllClose(got, [.. cy.ToArray().Select(v => (double)v)], 1e-5, 1.0 / 128,
                        rng.Ctx($"stored forward vs Bf16Backend on the CPU, {what}"));
    }
}
