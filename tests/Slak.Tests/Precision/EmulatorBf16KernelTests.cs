// The bf16 kernels on the host emulator: the bf16 instantiation of dwconv_fused.cu (SLAK_DW_BF16=1, registered in
// libslak_emu.so as <name>__SLAK_DW_BF16_1; 16-bit activations and gradients, float32 weights, masks and
// accumulation) and IGpuDevice.GemmBf16 (cublasGemmEx's stand-in: bf16 operands, float32 accumulation and output).
// Depthwise: every breaker shape of DwConvDecomposedOpTests at mask densities 1, 0.6, 0.1 and 0, outputs poisoned
// (bf16 NaN), the forward, the inference sum and the input gradient checked
//   - bit for bit against the float32 kernel on the same (bf16-representable) inputs with its outputs rounded to bf16
//     on the host (the same code and summation order; only the loads and stores differ; the float32 launchers run
//     with the strip kernels off, since the bf16 instantiation exists for the fused kernel only), and
//   - against the CPU backend's float32 path within the bf16 tolerance: |got - cpu| <= 2^-8 |cpu| + 1e-5 (rounding to
//     nearest costs at most 2^-9 relative; the rest is float32 summation order).
// Inputs and weights are bf16-representable, so the CPU's float32 result is also what Bf16Backend on the CPU computes
// before it rounds its output. Shapes whose plans fall back to the per-branch kernels (four branches, M = 151) have no
// bf16 instantiation: the launchers must say so (false) and launch nothing.
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;
using static Slak.Tests.Cuda.EmulatorTestSupport;

namespace Slak.Tests.Precision;

[TestFixture]
[NonParallelizable] // DwConvStripKernels.Off is process-wide
public sealed class EmulatorBf16KernelTests
{
    private const double Bf16Rtol = 1.0 / 256, Atol = 1e-5;

    private EmulatedDevice _dev = null!;

    [OneTimeSetUp]
    public void Open() => _dev = EmulatedDevice.Open();

    [OneTimeTearDown]
    public void Close() => _dev.Dispose();

    private static readonly (int N, int C, int H, int W, string Branches)[] Shapes =
    [
        (1, 1, 1, 1, "5x3,3x5,3x3"),
        (2, 1, 6, 9, "7x3,3x7,3x3"),
        (1, 2, 4, 3, "13x5,5x13,5x5"),
        (2, 3, 14, 14, "47x5,5x47,5x5"),
        (1, 2, 7, 7, "13x5,5x13,5x5"),
        (1, 2, 12, 10, "51x7,7x51,7x7"),
        (1, 2, 9, 8, "7x7,3x3"),
        (2, 2, 5, 6, "3x5,5x3"),
        (1, 2, 33, 35, "9x5,5x9,5x5"),
        (1, 1, 20, 17, "151x5,5x151,5x5"),
        (1, 2, 9, 8, "7x3,3x7,3x3,5x5"),
    ];

    private static IEnumerable<TestCaseData> Cases() =>
        from s in Shapes
        from d in new[] { 1.0, 0.6, 0.1, 0.0 }
        select new TestCaseData(s.N, s.C, s.H, s.W, s.Branches, d);

    private static float[] Bf16Values(float[] v) => [.. v.Select(ReducedFloat.RoundBf16)];

    private DevicePtr UploadBf16(float[] v) => Upload<ushort>(_dev, [.. v.Select(ReducedFloat.ToBf16Bits)]);

    private DevicePtr PoisonedBf16(long count) => Poisoned(_dev, (count + 1) / 2, 0xFFFFFFFFu);

    private float[] DownloadBf16(DevicePtr p, int count) =>
        [.. Download<ushort>(_dev, p, count).Select(ReducedFloat.FromBf16Bits)];

    [TestCaseSource(nameof(Cases))]
    [KernelParity("dwconv_fused_kernel")]
    public void TheBf16DepthwiseInstantiationMatchesTheFloat32KernelAndTheCpu(int n, int c, int h, int w, string list,
                                                                                double density)
    {
        var rng = TestRandom.ForCurrentTest();
        var ks = list.Split(',').Select(s => s.Split('x')).Select(p => (Kh: int.Parse(p[0]), Kw: int.Parse(p[1]))).ToArray();
        int nb = ks.Length, count = n * c * h * w;
        var x = Bf16Values(rng.NormalArray(count));
        var wts = ks.Select(k => Bf16Values(rng.NormalArray(c * k.Kh * k.Kw, 1 / Math.Sqrt(k.Kh * k.Kw)))).ToArray();
        var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, density)).ToArray();
        var dys = ks.Select(_ => Bf16Values(rng.NormalArray(count))).ToArray();
        string what = $"x ({n},{c},{h},{w}) branches {list} density {density}";

        var weightPtrs = wts.Select(v => Upload<float>(_dev, v)).ToArray();
        var maskPtrs = masks.Select(v => Upload<float>(_dev, v)).ToArray();
        var branches = ks.Select((k, b) => new DwConvFusedBranch(weightPtrs[b], maskPtrs[b], k.Kh, k.Kw)).ToArray();
        var xb = UploadBf16(x);
        var dyb = dys.Select(UploadBf16).ToArray();
        var yb = ks.Select(_ => PoisonedBf16(count)).ToArray();
        var sumb = PoisonedBf16(count);
        var dxb = PoisonedBf16(count);

        string instance = EmulatedDevice.InstanceName("dwconv_fused_kernel", [DwConvFusedKernels.Bf16Define]);
        Assert.That(EmulatedDevice.RegisteredKernels, Does.Contain(instance), "libslak_emu.so's bf16 instantiation");
        long before = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instance);
        bool fused = DwConvFusedKernels.Plan(_dev, branches, n, c, h, w).KernelChoice == PlanKernel.DwConvFused
                     && !DwConvFusedKernels.PerBranchOnly;
        bool ranF = DwConvFusedKernels.TryForwardBf16(_dev, yb, xb, branches, n, c, h, w);
        bool ranS = DwConvFusedKernels.TryForwardSumBf16(_dev, sumb, xb, branches, n, c, h, w);
        bool ranD = DwConvFusedKernels.TryBackwardDataBf16(_dev, dxb, dyb, branches, n, c, h, w);
        long launches = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instance) - before;
        Assert.That((ranF, ranS, ranD), Is.EqualTo((fused, fused, fused)), $"{what}: a bf16 launcher ran iff the plan is fused");
        Assert.That(launches, Is.EqualTo(fused ? 3 : 0), $"{what}: launches of {instance}");
        if (!fused)
        {
            FreeAll();
            Assert.Pass($"{what}: the plan takes the per-branch kernels, which have no bf16 instantiation");
        }
        var gotY = yb.Select(p => DownloadBf16(p, count)).ToArray();
        var gotSum = DownloadBf16(sumb, count);
        var gotDx = DownloadBf16(dxb, count);

        // The float32 kernel on the same values, outputs rounded on the host: bit for bit.
        var xf = Upload<float>(_dev, x);
        var dyf = dys.Select(v => Upload<float>(_dev, v)).ToArray();
        var yf = ks.Select(_ => Poisoned(_dev, count)).ToArray();
        var sumf = Poisoned(_dev, count);
        var dxf = Poisoned(_dev, count);
        // The float32 launchers take the strip kernels where its plan and an emulator instance take the shape (33x35,
        // 40x37, 40x24 here), with another summation order; the bf16 instantiation is always the fused kernel, so the
        // comparison is with the fused float32 kernel.
        using (StripKernelsOff.Forward())
        {
            DwConvFusedKernels.Forward(_dev, yf, xf, branches, n, c, h, w);
            DwConvFusedKernels.ForwardSum(_dev, sumf, xf, branches, n, c, h, w);
            DwConvFusedKernels.BackwardData(_dev, dxf, dyf, branches, n, c, h, w);
        }
        void Bits(float[] got, DevicePtr f32, string output)
        {
            var want = Bf16Values(Download<float>(_dev, f32, count));
            for (int i = 0; i < count; i++)
                Assert.That(BitConverter.SingleToUInt32Bits(got[i]), Is.EqualTo(BitConverter.SingleToUInt32Bits(want[i])),
                    rng.Ctx($"{output} element {i}: bf16 kernel {got[i]:R}, float32 kernel rounded {want[i]:R}; {what}"));
        }
        for (int b = 0; b < nb; b++) Bits(gotY[b], yf[b], $"forward branch {b}");
        Bits(gotSum, sumf, "inference sum");
        Bits(gotDx, dxf, "input gradient");

        // The CPU backend's float32 path within the bf16 tolerance.
        Tensor T(float[] v, params int[] shape) => Tensor.FromArray(v, shape, Device.Cpu);
        var xt = T(x, n, c, h, w);
        var wt = ks.Select((k, b) => T(wts[b], c, 1, k.Kh, k.Kw)).ToArray();
        var mt = ks.Select((k, b) => (Tensor?)T(masks[b], c, 1, k.Kh, k.Kw)).ToArray();
        var ys = ks.Select(_ => Tensor.Full([n, c, h, w], float.NaN, Device.Cpu)).ToArray();
        xt.Backend.DecomposedDwConvForward(xt, wt, mt, ys);
        var sum = Tensor.Full([n, c, h, w], float.NaN, Device.Cpu);
        xt.Backend.DecomposedDwConvForwardSum(xt, wt, mt, sum);
        var dx = Tensor.Full([n, c, h, w], float.NaN, Device.Cpu);
        xt.Backend.DecomposedDwConvBackwardData([.. dys.Select(v => (Tensor?)T(v, n, c, h, w))], wt, mt, dx);
        static double[] D(Tensor t) => [.. t.ToArray().Select(f => (double)f)];
        for (int b = 0; b < nb; b++)
            Expect.AllClose(gotY[b], D(ys[b]), Atol, Bf16Rtol, rng.Ctx($"forward branch {b} vs cpu float32, {what}"));
        Expect.AllClose(gotSum, D(sum), Atol, Bf16Rtol, rng.Ctx($"inference sum vs cpu float32, {what}"));
        Expect.AllClose(gotDx, D(dx), Atol, Bf16Rtol, rng.Ctx($"input gradient vs cpu float32, {what}"));
        foreach (var p in dyf.Concat(yf).Append(xf).Append(sumf).Append(dxf)) _dev.Free(p);
        FreeAll();

        void FreeAll()
        {
            foreach (var p in weightPtrs.Concat(maskPtrs).Concat(dyb).Concat(yb).Append(xb).Append(sumb).Append(dxb))
                _dev.Free(p);
        }
    }

    [TestCase(false, false, 7, 5, 9, 0)]
    [TestCase(true, false, 4, 33, 17, 3)]
    [TestCase(false, true, 16, 8, 1, 1)]
    [TestCase(true, true, 3, 2, 64, 0)]
    public void GemmBf16WidensItsOperandsExactlyAndAccumulatesInFloat32(bool transA, bool transB, int m, int n, int k,
                                                                          int pad)
    {
        var rng = TestRandom.ForCurrentTest();
        int aRows = transA ? k : m, aCols = transA ? m : k, bRows = transB ? n : k, bCols = transB ? k : n;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        var a = Bf16Values(rng.NormalArray((long)aRows * lda));
        var b = Bf16Values(rng.NormalArray((long)bRows * ldb));
        var c0 = rng.NormalArray((long)m * ldc);
        const float alpha = 1.25f, beta = 0.5f;
        var da = UploadBf16(a);
        var db = UploadBf16(b);
        var dc = Upload<float>(_dev, c0);
        long before = EmulatedDevice.Bf16GemmCount;
        _dev.GemmBf16(transA, transB, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc);
        Assert.That(EmulatedDevice.Bf16GemmCount - before, Is.EqualTo(1), "the bf16 GEMM stand-in ran");
        var got = Download<float>(_dev, dc, m * ldc);
        var want = new double[m * ldc];
        double scale = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < ldc; j++)
            {
                if (j >= n)
                {
                    want[i * ldc + j] = c0[i * ldc + j]; // the padding is not written
                    continue;
                }
                double acc = 0, mag = 0;
                for (int p = 0; p < k; p++)
                {
                    double av = transA ? a[p * lda + i] : a[i * lda + p], bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    acc += av * bv;
                    mag += Math.Abs(av * bv);
                }
                want[i * ldc + j] = alpha * acc + beta * c0[i * ldc + j];
                scale = Math.Max(scale, mag);
            }
        // Products of bf16 values are exact in float32: the only error is float32 summation (k terms).
        Expect.AllClose(got, want, 1e-6 * (scale + 1), 1e-6, rng.Ctx($"GemmBf16 transA={transA} transB={transB} m={m} n={n} k={k}"));
        var ex = Assert.Throws<ArgumentException>(() =>
            _dev.GemmBf16(transA, transB, m, n, k, alpha, da, Math.Max(1, aCols) - 1, db, ldb, beta, dc, ldc));
        if (aCols > 1) Assert.That(ex!.Message, Does.Contain("lda"));
        _dev.Free(da);
        _dev.Free(db);
        _dev.Free(dc);
    }
}
