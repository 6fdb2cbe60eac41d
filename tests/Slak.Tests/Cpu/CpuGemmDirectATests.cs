// The row-block driver's in-place transposed A (CpuGemm.DirectTransposedA: full strips of a (k, m)-stored A read with
// row stride lda instead of packed; the ragged last strip still packed): the weight-gradient shapes of narrow layers
// (n within two slivers) on every micro-kernel this CPU runs, odd m / n / k, k = 1, padded leading dimensions, split k
// at two threads, alpha and beta, NaN-poisoned C when beta is 0; against float64, and bit for bit against the packed
// path (the same products in the same order).
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
public class CpuGemmDirectATests
{
    private static readonly (int M, int N, int K, int Threads, float Alpha, float Beta, int Pad)[] Shapes =
    [
        (124, 31, 300, 1, 1f, 0f, 0),   // slak_nano stage 1 dW (one sliver), shortened k
        (124, 31, 2100, 2, 1f, 0f, 0),  // split k at two threads (each part runs the row-block driver)
        (37, 62, 129, 2, 1.5f, 0.5f, 3),// two slivers, ragged strip, padded lda / ldb / ldc
        (9, 1, 1, 1, 1f, 0f, 0),        // k = 1, n = 1, one full strip and a ragged one of 1 row
        (8, 64, 17, 1, -1f, 1f, 1),     // exactly one strip, two full slivers
        (250, 20, 64, 2, 1f, 0f, 0),    // row blocks on two threads
        (3, 5, 2, 1, 1f, 0f, 0),        // only a ragged strip: nothing read in place
    ];

    [Test]
    public void InPlaceTransposedAMatchesFloat64AndThePackedPath()
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (var kernel in new[] { GemmKernel.Avx512, GemmKernel.Avx2, GemmKernel.Scalar }.Where(CpuGemm.IsSupported))
            foreach (var (m, n, k, threads, alpha, beta, pad) in Shapes)
            {
                string what = rng.Ctx($"{kernel} m={m} n={n} k={k} threads={threads} alpha={alpha} beta={beta} pad={pad}");
                int lda = m + pad, ldb = n + pad, ldc = n + pad;
                var a = rng.NormalArray((long)k * lda); // stored (k, m): op(A) = A^T
                var b = rng.NormalArray((long)k * ldb);
                var c0 = beta == 0f ? Enumerable.Repeat(float.NaN, m * ldc).ToArray() : rng.NormalArray((long)m * ldc);
                var expected = new double[m * ldc];
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < ldc; j++)
                    {
                        if (j >= n) { expected[i * ldc + j] = c0[i * ldc + j]; continue; }
                        double s = 0;
                        for (int p = 0; p < k; p++) s += (double)a[p * lda + i] * b[p * ldb + j];
                        expected[i * ldc + j] = alpha * s + (beta == 0f ? 0 : beta * (double)c0[i * ldc + j]);
                    }

                float[] Run(bool direct)
                {
                    var c = (float[])c0.Clone();
                    CpuGemm.DirectTransposedA = direct;
                    try
                    {
                        CpuGemm.Sgemm(true, false, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, kernel);
                    }
                    finally
                    {
                        CpuGemm.DirectTransposedA = true;
                    }
                    return c;
                }

                var direct = Run(true);
                // The padding columns of C keep their old content (NaN when poisoned): compared where they are numbers.
                var got = direct.Select((v, i) => i % ldc >= n && float.IsNaN(v) ? 0f : v).ToArray();
                var want = expected.Select((v, i) => i % ldc >= n && double.IsNaN(v) ? 0 : v).ToArray();
                Expect.AllClose(got, want, 1e-5 * Math.Sqrt(k) * Math.Abs(alpha) + 1e-6, 1e-5, what);
                Expect.Exactly(direct, Run(false), what + ": in place and packed must agree bit for bit");
            }
    }
}
