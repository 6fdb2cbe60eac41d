// IGpuDevice.GemmBf16StridedBatched on the emulator (cublasGemmStridedBatchedEx's stand-in: bf16 operands, float32
// accumulation and output, one exactly widened host GEMM per item): bit for bit what one GemmBf16 per item computes
// (the loop the patchify input gradient ran before the batched binding), with shared (stride 0) and padded operands,
// leading dimensions past the row, alpha and beta; counted once per call (EmulatedDevice.Bf16GemmCount), and its
// batch and stride checks.
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;
using static Slak.Tests.Cuda.EmulatorTestSupport;

namespace Slak.Tests.Precision;

[TestFixture]
public sealed class EmulatorBf16StridedBatchedGemmTests
{
    private EmulatedDevice _dev = null!;

    [OneTimeSetUp]
    public void Open() => _dev = EmulatedDevice.Open();

    [OneTimeTearDown]
    public void Close() => _dev.Dispose();

    private DevicePtr UploadBf16(float[] v) => Upload<ushort>(_dev, [.. v.Select(ReducedFloat.ToBf16Bits)]);

    [TestCase(false, false, 5, 7, 9, 3, true, 0)]    // A shared by every item (the patchify forward: W, stride 0)
    [TestCase(true, false, 12, 10, 4, 4, true, 2)]   // the patchify input gradient: W^T shared, padded leading dims
    [TestCase(false, true, 3, 33, 17, 2, false, 1)]
    [TestCase(true, true, 8, 4, 300, 3, false, 0)]   // k over the host GEMM's 256-deep blocks
    public void EqualsOneGemmBf16PerItemBitForBit(bool transA, bool transB, int m, int n, int k, int batch,
                                                  bool sharedA, int pad)
    {
        var rng = TestRandom.ForCurrentTest();
        int aRows = transA ? k : m, aCols = transA ? m : k, bRows = transB ? n : k, bCols = transB ? k : n;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        long strideA = sharedA ? 0 : (long)aRows * lda + pad, strideB = (long)bRows * ldb + 1, strideC = (long)m * ldc + pad;
        var a = rng.NormalArray(strideA * (batch - 1) + (long)aRows * lda);
        var b = rng.NormalArray(strideB * (batch - 1) + (long)bRows * ldb);
        var c0 = rng.NormalArray(strideC * (batch - 1) + (long)m * ldc);
        const float alpha = 0.75f, beta = -0.5f;
        var da = UploadBf16(a);
        var db = UploadBf16(b);
        var batched = Upload<float>(_dev, c0);
        var looped = Upload<float>(_dev, c0);
        try
        {
            long before = EmulatedDevice.Bf16GemmCount;
            _dev.GemmBf16StridedBatched(transA, transB, m, n, k, alpha, da, lda, strideA, db, ldb, strideB, beta,
                                        batched, ldc, strideC, batch);
            Assert.That(EmulatedDevice.Bf16GemmCount - before, Is.EqualTo(1), "one batched call counts once");
            for (int i = 0; i < batch; i++)
                _dev.GemmBf16(transA, transB, m, n, k, alpha, da.Offset(i * strideA * sizeof(ushort)), lda,
                              db.Offset(i * strideB * sizeof(ushort)), ldb, beta,
                              looped.Offset(i * strideC * sizeof(float)), ldc);
            var got = Download<float>(_dev, batched, c0.Length);
            var want = Download<float>(_dev, looped, c0.Length);
            string what = rng.Ctx($"transA={transA} transB={transB} m={m} n={n} k={k} batch={batch} sharedA={sharedA}");
            for (int i = 0; i < got.Length; i++)
                Assert.That(BitConverter.SingleToUInt32Bits(got[i]), Is.EqualTo(BitConverter.SingleToUInt32Bits(want[i])),
                            $"{what}: element {i}: batched {got[i]:R}, per item {want[i]:R}");
            // Not every element is written: the padding between items keeps c0 (both ways), the rest changed.
            Assert.That(got.Where((v, i) => v != c0[i]).Count(), Is.EqualTo(batch * m * n), what);

            Assert.Throws<ArgumentException>(() => _dev.GemmBf16StridedBatched(transA, transB, m, n, k, alpha, da, lda,
                strideA, db, ldb, strideB, beta, batched, ldc, -1, batch));
            Assert.Throws<ArgumentException>(() => _dev.GemmBf16StridedBatched(transA, transB, m, n, k, alpha, da, lda,
                strideA, db, ldb, strideB, beta, batched, ldc, strideC, -1));
        }
        finally
        {
            _dev.Free(da);
            _dev.Free(db);
            _dev.Free(batched);
            _dev.Free(looped);
        }
    }
}
