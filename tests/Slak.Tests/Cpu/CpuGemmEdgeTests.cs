// CpuGemm's current paths against float64 and against its earlier ones (CpuGemm.LegacyPaths): AVX-512 edge tiles
// written with masked stores (every width 1..33 and slak's odd widths 61..63, 123..125, 247..250, ragged rows), the
// small B packed on the calling thread, split k summed on the calling thread, the swapped A^T B transposed back in 8x8
// blocks (and not swapped at short k), tiles of one row block packing their own B, and full strips of a row-major A
// read in place when n spans at most two slivers; both transposes, beta 0 (C poisoned with NaN) and 1, padded C whose
// padding (NaN) must stay untouched; and the fused epilogues on the step's shapes. With beta = 0 the two paths do the
// same arithmetic, so they must agree bit for bit; with beta != 0 an edge tile now merges C with one FMA, as full tiles
// always did.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuGemm.LegacyPaths and CpuRowOps.Legacy
public unsafe class CpuGemmEdgeTests
{
    private static readonly int[] Widths =
        [.. Enumerable.Range(1, 33), 61, 62, 63, 123, 124, 125, 247, 248, 249, 250];

    [Test]
    public void EdgeWidthsMatchFloat64AndTheLegacyPaths()
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (int n in Widths)
            foreach (int m in new[] { 13, 40 })
                foreach (bool ta in new[] { false, true })
                    foreach (bool tb in new[] { false, true })
                        foreach (float beta in new[] { 0f, 1f })
                            Check(rng, ta, tb, m, n, 19, beta == 0f ? 1f : -0.5f, beta, 1);
    }

    // The step's shapes (rows cut to 1000 or 2000 where they are 8192), at two threads: row blocks with B packed inline
    // (and A read in place at n <= 64),
    // split k (dW, k > 2048), the swapped dW with its transpose-back, and the shared-panel tiles (m = 128).
    [TestCase(false, true, 1000, 124, 31)]
    [TestCase(false, true, 1000, 31, 124)]
    [TestCase(false, true, 2000, 31, 124)]
    [TestCase(false, false, 2000, 62, 248)]
    [TestCase(false, false, 1000, 124, 31)]
    [TestCase(false, false, 1000, 31, 124)]
    [TestCase(true, false, 124, 31, 4100)]
    [TestCase(true, false, 31, 124, 4100)]
    [TestCase(true, false, 249, 996, 128)]
    [TestCase(false, true, 128, 996, 249)]
    [TestCase(false, false, 128, 249, 996)]
    public void StepShapesMatchFloat64AndTheLegacyPaths(bool ta, bool tb, int m, int n, int k)
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (float beta in new[] { 0f, 1f })
            Check(rng, ta, tb, m, n, k, 1f, beta, 2);
    }

    // Two forms that must give the same bits as the ones before them: a row-major A read in place at k <= 64 into
    // more than two slivers (off with CpuRowOps.Legacy, SLAK_MLP_LEGACY=1), and full tiles stored without the alpha
    // multiply (alpha = 1) or added to C (alpha = beta = 1) instead of the FMA merge (the legacy paths' full tiles);
    // m a multiple of 8 and n of 32 where the legacy paths are the reference (their edge tiles merge C differently).
    [Test]
    public void ShortKRowAAndUnitAlphaTilesMatchTheEarlierFormsBitForBit()
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (int threads in new[] { 1, 2 })
        foreach (int k in new[] { 1, 19, 31, 62, 64, 65 })
        foreach (int m in new[] { 8, 40, 1000 })
        foreach (int n in new[] { 32, 64, 124, 249 })
        foreach (float beta in new[] { 0f, 1f })
        {
            string what = rng.Ctx($"m={m} n={n} k={k} beta={beta} threads={threads}");
            int ldc = n + 3;
            var a = rng.NormalArray((long)m * k);
            var b = rng.NormalArray((long)k * n);
            var c0 = beta == 0f ? Enumerable.Repeat(float.NaN, m * ldc).ToArray() : rng.NormalArray((long)m * ldc);
            float[] Run(bool rowOpsLegacy, bool legacyPaths)
            {
                var c = (float[])c0.Clone();
                CpuRowOps.Legacy = rowOpsLegacy;
                CpuGemm.LegacyPaths = legacyPaths;
                try
                {
                    CpuGemm.Sgemm(false, true, m, n, k, 1f, a, k, b, k, beta, c, ldc, threads);
                }
                finally
                {
                    CpuRowOps.Legacy = false;
                    CpuGemm.LegacyPaths = false;
                }
                return c;
            }
            var got = Run(false, false);
            CpuGemmTests.AssertMatchesFloat64(got, c0, a, k, false, b, k, true, m, n, k, 1f, beta, ldc, what);
            Expect.Exactly(got, Run(true, false), what + ": A read in place vs packed");
            if (n % 32 == 0) Expect.Exactly(got, Run(false, true), what + ": unit-alpha tiles vs the legacy FMA merge");
        }
    }

    // B packed once and used by many products (CpuGemm.PackedB, the block MLP's weights): the same bits as Sgemm on
    // one thread for both transposes of B, beta 0 (C poisoned) and 1, k across the Kc blocks (1, 31, 257, 600), n off
    // the sliver width and past Nc (4100: the per-call fallback), and several m reusing one packed B.
    [Test]
    public void PrepackedBMatchesSgemmBitForBit()
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (bool tb in new[] { false, true })
        foreach (int k in new[] { 1, 31, 257, 600 })
        foreach (int n in new[] { 1, 31, 124, 249, 4100 })
        {
            if (n == 4100 && k > 31) continue;
            int ldb = tb ? k + 2 : n + 2;
            var b = rng.NormalArray((long)(tb ? n : k) * ldb);
            fixed (float* pb = b)
            {
                using var packed = new CpuGemm.PackedB(tb, k, n, pb, ldb);
                foreach (int m in new[] { 1, 7, 64, 300 })
                foreach (float beta in new[] { 0f, 1f })
                {
                    string what = rng.Ctx($"transB={tb} m={m} n={n} k={k} beta={beta}");
                    int lda = k + 1, ldc = n + 3;
                    var a = rng.NormalArray((long)m * lda);
                    var c0 = beta == 0f ? Enumerable.Repeat(float.NaN, m * ldc).ToArray() : rng.NormalArray((long)m * ldc);
                    var expected = (float[])c0.Clone();
                    CpuGemm.Sgemm(false, tb, m, n, k, 1f, a, lda, b, ldb, beta, expected, ldc, 1);
                    var got = (float[])c0.Clone();
                    fixed (float* pa = a)
                    fixed (float* pc = got)
                        CpuGemm.SgemmPackedB(m, packed, 1f, pa, lda, beta, pc, ldc);
                    for (int i = 0; i < m; i++)
                        for (int j = n; j < ldc; j++)
                        {
                            got[i * ldc + j] = 0f; // padding (NaN when beta = 0): compared as zero on both sides
                            expected[i * ldc + j] = 0f;
                        }
                    Expect.Exactly(got, expected, what + ": prepacked B vs Sgemm");
                }
            }
        }
    }

    // One case: C (padded by 3 columns of NaN; NaN everywhere when beta = 0) on the current paths against float64
    // (float32 accumulation: atol 1e-6, rtol 4e-6 sqrt(k + 1) of the sum of |terms|), the padding left untouched, and
    // with beta = 0 the legacy paths' bits.
    private static void Check(TestRandom rng, bool ta, bool tb, int m, int n, int k, float alpha, float beta, int threads)
    {
        string what = rng.Ctx($"transA={ta} transB={tb} m={m} n={n} k={k} alpha={alpha} beta={beta} threads={threads}");
        int lda = ta ? m : k, ldb = tb ? k : n, ldc = n + 3;
        var a = rng.NormalArray((long)m * k);
        var b = rng.NormalArray((long)k * n);
        var c0 = beta == 0f ? Enumerable.Repeat(float.NaN, m * ldc).ToArray() : rng.NormalArray((long)m * ldc);
        for (int i = 0; i < m; i++) c0.AsSpan(i * ldc + n, 3).Fill(float.NaN);

        float[] Run(bool legacy)
        {
            var c = (float[])c0.Clone();
            CpuGemm.LegacyPaths = legacy;
            try
            {
                CpuGemm.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
            }
            finally
            {
                CpuGemm.LegacyPaths = false;
            }
            return c;
        }

        var got = Run(false);
        for (int i = 0; i < m; i++)
            for (int j = n; j < ldc; j++)
                if (!float.IsNaN(got[i * ldc + j]))
                    Assert.Fail($"padding C[{i},{j}] was written ({got[i * ldc + j]}); {what}");
        CpuGemmTests.AssertMatchesFloat64(got, c0, a, lda, ta, b, ldb, tb, m, n, k, alpha, beta, ldc, what);
        if (beta == 0f) Expect.Exactly(got, Run(true), what + ": current and legacy paths must agree bit for bit");
    }

    // The fused epilogues as the step runs them (beta = 0): bias + GELU (C = product + bias against float64, y = GELU
    // of it) and GELU' + bias gradient (dbias against the float64 column sum of the new C); C and y must have the
    // legacy paths' bits, and each path must repeat its own bits.
    [TestCase(1000, 124, 31, 2)]
    [TestCase(1000, 31, 124, 2)]
    [TestCase(300, 63, 17, 1)]
    [TestCase(128, 249, 62, 2)]
    [TestCase(512, 125, 33, 2)]
    public void FusedEpiloguesMatchFloat64AndTheLegacyPaths(int m, int n, int k, int threads)
    {
        var rng = TestRandom.ForCurrentTest();
        string what = rng.Ctx($"m={m} n={n} k={k} threads={threads}");
        var x = rng.NormalArray((long)m * k);
        var w = rng.NormalArray((long)n * k); // (n, k): the forward's transposed B
        var g = rng.NormalArray((long)k * n); // (k, n): the input gradient's B
        var bias = rng.NormalArray(n);
        var pre = rng.NormalArray((long)m * n);

        (float[] C, float[] Y, float[] Dc, float[] Db) Run(bool legacy)
        {
            var c = Enumerable.Repeat(float.NaN, m * n).ToArray();
            var y = Enumerable.Repeat(float.NaN, m * n).ToArray();
            var dc = Enumerable.Repeat(float.NaN, m * n).ToArray();
            var db = Enumerable.Repeat(float.NaN, n).ToArray();
            CpuGemm.LegacyPaths = legacy;
            try
            {
                fixed (float* pb = bias)
                fixed (float* py = y)
                fixed (float* pp = pre)
                fixed (float* pdb = db)
                {
                    CpuGemm.Sgemm(false, true, m, n, k, 1f, x, k, w, k, 0f, c, n, threads,
                        epilogue: new BiasGeluEpilogue(pb, py));
                    CpuGemm.Sgemm(false, false, m, n, k, 1f, x, k, g, n, 0f, dc, n, threads,
                        epilogue: new GeluGradBiasSumEpilogue(pp, pdb));
                }
            }
            finally
            {
                CpuGemm.LegacyPaths = false;
            }
            return (c, y, dc, db);
        }

        var cur = Run(false);
        var expectC = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = bias[j];
                for (int p = 0; p < k; p++) s += (double)x[i * k + p] * w[j * k + p];
                expectC[i * n + j] = s;
            }
        Expect.AllClose(cur.C, expectC, 1e-5 * Math.Sqrt(k), 1e-5, what + ": C = X W^T + bias");
        var expectDb = new double[n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) expectDb[j] += cur.Dc[i * n + j];
        Expect.AllClose(cur.Db, expectDb, 1e-5 * Math.Sqrt(m), 1e-5, what + ": dbias = column sums of dC");

        var old = Run(true);
        Expect.Exactly(cur.C, old.C, what + ": C, current vs legacy");
        Expect.Exactly(cur.Y, old.Y, what + ": y, current vs legacy");
        Expect.Exactly(cur.Dc, old.Dc, what + ": dC, current vs legacy");
        var again = Run(false);
        Expect.Exactly(again.Db, cur.Db, what + ": dbias repeats");
        Expect.Exactly(again.Dc, cur.Dc, what + ": dC repeats");
    }
}
