// GEMM epilogues (CpuGemm.Epilogue.cs) against float64: bias, bias + GELU (pre-activation kept in C, GELU written to
// y) and GELU's derivative + bias-gradient column sum, on every driver that can run them (row blocks with one and two
// threads, two column panels, shared-panel tiles, split k, k = 0), NaN-poisoned outputs, and bit-for-bit repetition
// for a fixed thread count (the column sum is reduced per row block, then in block order).
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
public unsafe class CpuGemmEpilogueTests
{
    // (m, n, k, threads): which driver each one reaches is noted.
    private static readonly (int M, int N, int K, int Threads)[] Shapes =
    [
        (2000, 124, 31, 2), // tall A: row blocks (DriveLocalA), the slak_nano stage-1 pwconv1 shape
        (2000, 124, 31, 1), // the same on one thread
        (3, 5, 2, 2),       // tiny: one thread, one ragged block
        (20, 4100, 8, 1),   // two column panels of the row-block driver
        (100, 70, 40, 2),   // few row blocks, two threads: shared panels and tiles (epilogue after the product)
        (30, 50, 2100, 2),  // split k (epilogue after the product)
        (4, 6, 0, 1),       // k = 0: C is the epilogue of zeros
    ];

    private static double[] Product(float[] a, float[] b, int m, int n, int k, bool transB)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)a[i * k + p] * (transB ? b[j * k + p] : b[p * n + j]);
                c[i * n + j] = s;
            }
        return c;
    }

    private static double GeluDerivative(double x) =>
        0.5 * (1 + Reference.Erf(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);

    [Test]
    public void BiasAndBiasGeluMatchFloat64OnEveryDriver()
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (var (m, n, k, threads) in Shapes)
        {
            string what = rng.Ctx($"m={m} n={n} k={k} threads={threads}");
            int ld = Math.Max(k, 1);
            var a = rng.NormalArray((long)m * k);
            var b = rng.NormalArray((long)n * k, 1 / Math.Sqrt(Math.Max(k, 1)));
            var bias = rng.NormalArray(n);
            var prod = Product(a, b, m, n, k, transB: true);
            double atol = 1e-5 * Math.Sqrt(k + 1);

            var c = Enumerable.Repeat(float.NaN, m * n).ToArray();
            fixed (float* pb = bias)
                CpuGemm.Sgemm(false, true, m, n, k, 1f, a, ld, b, ld, 0f, c, n, threads, epilogue: new BiasEpilogue(pb));
            var expected = new double[m * n];
            for (int i = 0; i < m * n; i++) expected[i] = prod[i] + bias[i % n];
            Expect.AllClose(c, expected, atol, 1e-5, what + ": bias");

            var pre = Enumerable.Repeat(float.NaN, m * n).ToArray();
            var y = Enumerable.Repeat(float.NaN, m * n).ToArray();
            fixed (float* pb = bias)
            fixed (float* py = y)
                CpuGemm.Sgemm(false, true, m, n, k, 1f, a, ld, b, ld, 0f, pre, n, threads, epilogue: new BiasGeluEpilogue(pb, py));
            Expect.AllClose(pre, expected, atol, 1e-5, what + ": pre-activation");
            // GELU of the float32 pre-activation (so the GEMM's rounding is not counted twice).
            Expect.AllClose(y, pre.Select(v => Reference.Gelu((double)v)).ToArray(), 1e-6, 1e-5, what + ": GELU");
        }
    }

    [Test]
    public void GeluDerivativeAndBiasGradientMatchFloat64OnEveryDriver()
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (var (m, n, k, threads) in Shapes)
        {
            string what = rng.Ctx($"m={m} n={n} k={k} threads={threads}");
            int ld = Math.Max(k, 1);
            // dA = dY W with dY (m, k), W (k, n): the input gradient of a Linear layer of k outputs and n inputs.
            var dy = rng.NormalArray((long)m * k);
            var w = rng.NormalArray((long)k * n, 1 / Math.Sqrt(Math.Max(k, 1)));
            var pre = rng.NormalArray((long)m * n, 2);
            var prod = Product(dy, w, m, n, k, transB: false);
            var expected = new double[m * n];
            var expectedBias = new double[n];
            for (int i = 0; i < m * n; i++)
            {
                expected[i] = prod[i] * GeluDerivative(pre[i]);
                expectedBias[i % n] += expected[i];
            }

            float[] Run()
            {
                var c = Enumerable.Repeat(float.NaN, m * n).ToArray();
                var db = Enumerable.Repeat(float.NaN, n).ToArray();
                fixed (float* pp = pre)
                fixed (float* pdb = db)
                    CpuGemm.Sgemm(false, false, m, n, k, 1f, dy, ld, w, n, 0f, c, n, threads,
                        epilogue: new GeluGradBiasSumEpilogue(pp, pdb));
                return [.. c, .. db];
            }

            var first = Run();
            double atol = 1e-5 * Math.Sqrt(k + 1);
            Expect.AllClose(first[..(m * n)], expected, atol, 1e-4, what + ": dpre");
            Expect.AllClose(first[(m * n)..], expectedBias, atol * Math.Sqrt(m), 1e-4, what + ": dbias");
            Expect.Exactly(Run(), first, what + ": a second run (same thread count) must repeat bit for bit");
        }
    }
}
