// Parity tests of CpuGemm.Sgemm against a plain float64 reference: every transpose combination, every micro-kernel
// this CPU runs, odd sizes (ragged register tiles, k split across cache blocks, m and n past one block), padded
// leading dimensions whose padding holds NaN (must be neither read nor written), alpha/beta cases, and bad input.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
public class CpuGemmTests
{
    private static readonly GemmKernel[] Kernels = [GemmKernel.Avx512, GemmKernel.Avx2, GemmKernel.Scalar];

    private static IEnumerable<TestCaseData> Shapes()
    {
        (int M, int N, int K)[] shapes =
        [
            (1, 1, 1), (3, 17, 5), (17, 3, 65), (8, 32, 256), (65, 33, 257), (6, 16, 1), (257, 65, 17),
            (100, 70, 300), (9, 100, 520),
        ];
        foreach (var (m, n, k) in shapes)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    yield return new TestCaseData(ta, tb, m, n, k).SetArgDisplayNames($"{(ta ? "T" : "N")}{(tb ? "T" : "N")} m={m} n={n} k={k}");
    }

    [TestCaseSource(nameof(Shapes))]
    public void MatchesFloat64Reference(bool transA, bool transB, int m, int n, int k)
    {
        foreach (var kernel in Kernels.Where(CpuGemm.IsSupported))
            foreach (int threads in new[] { 1, 2 })
                Check(kernel, threads, transA, transB, m, n, k, alpha: 1f, beta: 0f, pad: 0);
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void PaddedLeadingDimensionsAndAlphaBeta(bool transA, bool transB)
    {
        foreach (var kernel in Kernels.Where(CpuGemm.IsSupported))
        {
            Check(kernel, 2, transA, transB, 37, 45, 29, alpha: 0.5f, beta: -1.5f, pad: 3);
            Check(kernel, 1, transA, transB, 13, 70, 260, alpha: -2f, beta: 1f, pad: 5);
            Check(kernel, 2, transA, transB, 16, 64, 40, alpha: 1f, beta: 0f, pad: 7);
        }
    }

    [Test]
    public void LargeMAndNCrossBlockBoundaries()
    {
        // n past the 4096-column panel; m in several packed-A chunks (the bound lowered to 40 x 64 floats).
        Check(GemmKernel.Auto, 2, true, true, 5, 4130, 9, alpha: 1f, beta: 0f, pad: 0);
        // Tall A: tasks over row blocks, each packing its own block of A (two k blocks).
        Check(GemmKernel.Auto, 2, false, true, 2001, 45, 300, alpha: 1.5f, beta: 0f, pad: 1);
        Check(GemmKernel.Auto, 2, true, false, 1999, 33, 270, alpha: 1f, beta: 0.5f, pad: 0);
        long saved = CpuGemm.MaxPackedA;
        try
        {
            CpuGemm.MaxPackedA = 40 * 64;
            Check(GemmKernel.Auto, 2, false, false, 1000, 20, 64, alpha: 1f, beta: 0.25f, pad: 0);
            Check(GemmKernel.Scalar, 1, true, false, 1000, 20, 64, alpha: 1f, beta: 0f, pad: 1);
        }
        finally
        {
            CpuGemm.MaxPackedA = saved;
        }
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void LongKSplitAcrossThreads(bool transA, bool transB)
    {
        // Small C and k >= 2048 take the split-k path when more than one thread is allowed.
        Check(GemmKernel.Auto, 2, transA, transB, 33, 20, 2100, alpha: 0.75f, beta: 0f, pad: 0);
        Check(GemmKernel.Auto, 3, transA, transB, 9, 17, 4099, alpha: 1f, beta: -0.5f, pad: 2);
    }

    [Test]
    public void AlphaZeroOrKZeroOnlyScalesC()
    {
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        var a = RandomArray(rng, 12);
        var b = RandomArray(rng, 12);
        var c0 = RandomArray(rng, 12);

        var c = (float[])c0.Clone();
        CpuGemm.Sgemm(false, false, 3, 4, 0, 1f, a, 1, b, 4, 2f, c, 4);
        Assert.That(c, Is.EqualTo(c0.Select(v => 2f * v).ToArray()), $"k=0, beta=2 (seed {seed})");

        c = Enumerable.Repeat(float.NaN, 12).ToArray();
        CpuGemm.Sgemm(false, false, 3, 4, 3, 0f, a, 3, b, 4, 0f, c, 4);
        Assert.That(c, Is.All.EqualTo(0f), $"alpha=0, beta=0 must overwrite NaN with 0 (seed {seed})");

        c = (float[])c0.Clone();
        CpuGemm.Sgemm(false, false, 3, 4, 3, 0f, a, 3, b, 4, 1f, c, 4);
        Assert.That(c, Is.EqualTo(c0), $"alpha=0, beta=1 leaves C (seed {seed})");
    }

    [Test]
    public void EmptyMOrNIsANoOp()
    {
        var c = new[] { 7f };
        CpuGemm.Sgemm(false, false, 0, 1, 5, 1f, [], 5, new float[5], 1, 0f, c, 1);
        CpuGemm.Sgemm(false, false, 1, 0, 5, 1f, new float[5], 5, [], 1, 0f, c, 1);
        Assert.That(c[0], Is.EqualTo(7f));
    }

    [Test]
    public void BadInputNamesTheArgument()
    {
        var a = new float[12];
        var b = new float[12];
        var c = new float[12];
        Assert.Multiple(() =>
        {
            Assert.That(() => CpuGemm.Sgemm(false, false, -1, 4, 3, 1f, a, 3, b, 4, 0f, c, 4),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("m")
                    .And.Message.Contains("m=-1"));
            Assert.That(() => CpuGemm.Sgemm(false, false, 3, -4, 3, 1f, a, 3, b, 4, 0f, c, 4),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("n"));
            Assert.That(() => CpuGemm.Sgemm(false, false, 3, 4, -3, 1f, a, 3, b, 4, 0f, c, 4),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("k"));
            Assert.That(() => CpuGemm.Sgemm(false, false, 3, 4, 3, 1f, a, 2, b, 4, 0f, c, 4),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("lda")
                    .And.Message.Contains("lda=2"));
            Assert.That(() => CpuGemm.Sgemm(true, false, 3, 4, 3, 1f, a, 2, b, 4, 0f, c, 4),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("lda")
                    .And.Message.Contains("m=3"));
            Assert.That(() => CpuGemm.Sgemm(false, true, 3, 4, 3, 1f, a, 3, b, 2, 0f, c, 4),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("ldb"));
            Assert.That(() => CpuGemm.Sgemm(false, false, 3, 4, 3, 1f, a, 3, b, 4, 0f, c, 3),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("ldc"));
            Assert.That(() => CpuGemm.Sgemm(false, false, 3, 4, 3, 1f, a.AsSpan(0, 8), 3, b, 4, 0f, c, 4),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("a").And.Message.Contains("needs 9"));
            Assert.That(() => CpuGemm.Sgemm(false, false, 3, 4, 3, 1f, a, 3, b.AsSpan(0, 11), 4, 0f, c, 4),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("b").And.Message.Contains("needs 12"));
            Assert.That(() => CpuGemm.Sgemm(false, false, 3, 4, 3, 1f, a, 3, b, 4, 0f, c.AsSpan(0, 11), 4),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("c").And.Message.Contains("needs 12"));
            Assert.That(() => CpuGemm.Sgemm(false, false, 3, 4, 3, 1f, c, 3, b, 4, 0f, c, 4),
                Throws.ArgumentException.With.Property("ParamName").EqualTo("c").And.Message.Contains("overlap"));
        });
    }

    // Runs one case with padded leading dimensions (padding = NaN) and C poisoned with NaN when beta == 0.
    private static void Check(GemmKernel kernel, int threads, bool transA, bool transB, int m, int n, int k,
        float alpha, float beta, int pad)
    {
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        int aRows = transA ? k : m, aCols = transA ? m : k, lda = aCols + pad;
        int bRows = transB ? n : k, bCols = transB ? k : n, ldb = bCols + pad;
        int ldc = n + pad;
        var a = Padded(rng, aRows, aCols, lda);
        var b = Padded(rng, bRows, bCols, ldb);
        var c = Padded(rng, m, n, ldc);
        if (beta == 0f)
            for (int i = 0; i < m; i++) c.AsSpan(i * ldc, n).Fill(float.NaN);
        var c0 = (float[])c.Clone();

        CpuGemm.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, kernel);

        string ctx = $"kernel={kernel} threads={threads} transA={transA} transB={transB} m={m} n={n} k={k} " +
                     $"alpha={alpha} beta={beta} pad={pad} seed={seed}";
        AssertMatchesFloat64(c, c0, a, lda, transA, b, ldb, transB, m, n, k, alpha, beta, ldc, ctx);
        for (int i = 0; i < m - 1; i++)
            for (int j = n; j < ldc; j++)
                if (!float.IsNaN(c[i * ldc + j]))
                    Assert.Fail($"padding C[{i},{j}] was written; {ctx}");
    }

    /// <summary>Every C[i, j] (j &lt; n) of <paramref name="got"/> against alpha * op(A) op(B) + beta * c0 in float64.
    /// float32 accumulation: the error grows like sqrt(k) * eps * sum|terms|, so atol 1e-6, rtol 4e-6 * sqrt(k + 1)
    /// of the sum of the terms' magnitudes.</summary>
    internal static void AssertMatchesFloat64(float[] got, float[] c0, float[] a, int lda, bool transA, float[] b,
        int ldb, bool transB, int m, int n, int k, float alpha, float beta, int ldc, string ctx)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0, abs = 0;
                for (int p = 0; p < k; p++)
                {
                    double t = (double)a[transA ? p * lda + i : i * lda + p] * b[transB ? j * ldb + p : p * ldb + j];
                    sum += t;
                    abs += Math.Abs(t);
                }
                double expected = alpha * sum, scale = Math.Abs(alpha) * abs;
                if (beta != 0f)
                {
                    expected += (double)beta * c0[i * ldc + j];
                    scale += Math.Abs(beta * c0[i * ldc + j]);
                }
                double tol = 1e-6 + 4e-6 * Math.Sqrt(k + 1) * scale;
                if (!(Math.Abs(got[i * ldc + j] - expected) <= tol))
                    Assert.Fail($"C[{i},{j}] = {got[i * ldc + j]}, expected {expected} (tol {tol:g3}); {ctx}");
            }
    }

    private static float[] Padded(Random rng, int rows, int cols, int ld)
    {
        var x = new float[Math.Max(0, (rows - 1) * ld + cols)];
        Array.Fill(x, float.NaN);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) x[i * ld + j] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    private static float[] RandomArray(Random rng, int n)
        => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
}
