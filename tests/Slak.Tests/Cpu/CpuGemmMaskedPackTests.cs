// A ragged sliver of a row-major B packed with masked loads (CpuGemm.MaskedPackB, the default on AVX-512) against the
// element-by-element copy before it (SLAK_GEMM_MASKED_PACK=0): a copy either way, so the products must agree bit for
// bit; and against float64. Every ragged width of one and two slivers (1..31, 33..63) and slak's odd widths (124, 249),
// row-major B with padded rows (the masked load must not read past a row's `cols` floats into NaN padding that would
// reach C), beta 0 (C poisoned with NaN) and 1, at 1, 2 and 3 threads, and the weight-gradient form A^T B (k = rows).
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuGemm.MaskedPackB
public class CpuGemmMaskedPackTests
{
    [TearDown]
    public void TearDown() => CpuGemm.MaskedPackB = true;

    private static readonly int[] Widths = [.. Enumerable.Range(1, 31), .. Enumerable.Range(33, 31), 124, 249];

    [Test]
    public void RaggedSliversMatchTheScalarPackBitForBitAndFloat64()
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (int n in Widths)
        foreach (bool ta in new[] { false, true })
        foreach (int threads in new[] { 1, 2, 3 })
        {
            float beta = n % 2 == 0 ? 1f : 0f;
            int m = ta ? 124 : 40, k = ta ? 528 : 31;
            string what = rng.Ctx($"transA={ta} m={m} n={n} k={k} beta={beta} threads={threads}");
            int lda = ta ? m : k, ldb = n + 5, ldc = n + 3;
            var a = rng.NormalArray((long)m * k);
            var b = rng.NormalArray((long)k * ldb);
            for (int p = 0; p < k; p++) b.AsSpan(p * ldb + n, 5).Fill(float.NaN); // padding a wide load would read
            var c0 = beta == 0f ? Enumerable.Repeat(float.NaN, m * ldc).ToArray() : rng.NormalArray((long)m * ldc);
            float[] Run(bool masked)
            {
                var c = (float[])c0.Clone();
                CpuGemm.MaskedPackB = masked;
                try
                {
                    CpuGemm.Sgemm(ta, false, m, n, k, 1f, a, lda, b, ldb, beta, c, ldc, threads);
                }
                finally
                {
                    CpuGemm.MaskedPackB = true;
                }
                for (int i = 0; i < m; i++) c.AsSpan(i * ldc + n, ldc - n).Clear(); // C's padding: not compared
                return c;
            }
            var got = Run(true);
            var c0Cleared = (float[])c0.Clone();
            for (int i = 0; i < m; i++) c0Cleared.AsSpan(i * ldc + n, ldc - n).Clear();
            CpuGemmTests.AssertMatchesFloat64(got, c0Cleared, a, lda, ta, b, ldb, false, m, n, k, 1f, beta, ldc, what);
            Expect.Exactly(got, Run(false), what + ": masked pack vs element by element");
        }
    }
}
