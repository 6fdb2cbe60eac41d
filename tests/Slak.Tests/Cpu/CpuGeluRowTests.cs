// The one-pass row kernels of the GELU epilogues (CpuGelu.BiasForward: c += bias, y = GELU(c); CpuGelu.BackwardAccumulate:
// g *= GELU'(x), acc += g) against float64, at every length 0..70 and the slak_nano widths (whole 16-lane vectors plus
// one masked tail vector), over both tails of GELU; outputs NaN-poisoned first (past the row as well, which must
// stay untouched); and the two epilogue variants (one pass, and the earlier passes kept for the bench) agree on
// every GEMM driver shape.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
public unsafe class CpuGeluRowTests
{
    private static IEnumerable<int> Lengths() => Enumerable.Range(0, 71).Concat([124, 248, 496, 996]);

    [Test]
    public void BiasForwardMatchesFloat64AtEveryLength()
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (int n in Lengths())
        {
            string what = rng.Ctx($"length {n}");
            var c0 = rng.NormalArray(n, std: 5); // reaches both tails (and the exp's underflow past |x| ~ 13)
            var bias = rng.NormalArray(n + 3);   // longer than the row: only its first n are read
            var c = c0.Concat([float.NaN]).ToArray();
            var y = Enumerable.Repeat(float.NaN, n + 1).ToArray();
            CpuGelu.BiasForward(c.AsSpan(0, n), bias, y.AsSpan(0, n));
            Assert.That(float.IsNaN(c[n]) && float.IsNaN(y[n]), Is.True, what + ": wrote past the row");
            for (int i = 0; i < n; i++)
            {
                float pre = c0[i] + bias[i];
                Assert.That(c[i], Is.EqualTo(pre), what + $": pre-activation at {i}");
                double want = CpuMath.Gelu(pre);
                Assert.That(Math.Abs(y[i] - want), Is.LessThanOrEqualTo(1e-6 + 2e-6 * Math.Abs(want)),
                    what + $": GELU({pre:R}) = {y[i]:R}, float64 {want:R} (index {i})");
            }
        }
    }

    [Test]
    public void BackwardAccumulateMatchesFloat64AtEveryLength()
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (int n in Lengths())
        {
            string what = rng.Ctx($"length {n}");
            var x = rng.NormalArray(n + 2, std: 5);
            var g0 = rng.NormalArray(n);
            var acc0 = rng.NormalArray(n);
            var g = g0.Concat([float.NaN]).ToArray();
            var acc = acc0.Concat([float.NaN]).ToArray();
            CpuGelu.BackwardAccumulate(x, g.AsSpan(0, n), acc.AsSpan(0, n));
            Assert.That(float.IsNaN(g[n]) && float.IsNaN(acc[n]), Is.True, what + ": wrote past the row");
            for (int i = 0; i < n; i++)
            {
                double want = g0[i] * (double)CpuMath.GeluDerivative(x[i]);
                Assert.That(Math.Abs(g[i] - want), Is.LessThanOrEqualTo(1e-6 + 4e-6 * Math.Abs(want)),
                    what + $": dy * GELU'({x[i]:R}) = {g[i]:R}, float64 {want:R} (index {i})");
                Assert.That(acc[i], Is.EqualTo(acc0[i] + g[i]), what + $": column sum at {i}");
            }
        }
    }

    [Test]
    public void OnePassAndEarlierPassesAgreeOnEveryDriver()
    {
        var rng = TestRandom.ForCurrentTest();
        (int M, int N, int K, int Threads)[] shapes =
            [(2000, 124, 31, 2), (37, 124, 1, 1), (20, 4100, 8, 1), (100, 70, 40, 2), (30, 50, 2100, 2), (5, 17, 3, 1)];
        foreach (var (m, n, k, threads) in shapes)
        {
            string what = rng.Ctx($"m={m} n={n} k={k} threads={threads}");
            var a = rng.NormalArray((long)m * k);
            var b = rng.NormalArray((long)n * k, 1 / Math.Sqrt(k));
            var bias = rng.NormalArray(n);
            var pre = rng.NormalArray((long)m * n, 2);
            (float[] C, float[] Y) Forward(bool onePass)
            {
                var c = Enumerable.Repeat(float.NaN, m * n).ToArray();
                var y = Enumerable.Repeat(float.NaN, m * n).ToArray();
                fixed (float* pb = bias)
                fixed (float* py = y)
                    CpuGemm.Sgemm(false, true, m, n, k, 1f, a, k, b, k, 0f, c, n, threads,
                        epilogue: new BiasGeluEpilogue(pb, py) { OnePass = onePass });
                return (c, y);
            }
            (float[] C, float[] Db) Backward(bool onePass)
            {
                var c = Enumerable.Repeat(float.NaN, m * n).ToArray();
                var db = Enumerable.Repeat(float.NaN, n).ToArray();
                fixed (float* pp = pre)
                fixed (float* pdb = db)
                    CpuGemm.Sgemm(false, true, m, n, k, 1f, a, k, b, k, 0f, c, n, threads,
                        epilogue: new GeluGradBiasSumEpilogue(pp, pdb) { OnePass = onePass });
                return (c, db);
            }
            var (c1, y1) = Forward(true);
            var (c2, y2) = Forward(false);
            Expect.Exactly(c1, c2, what + ": pre-activation (the same additions)");
            Expect.AllClose(y1, y2.Select(v => (double)v).ToArray(), 1e-6, 4e-6, what + ": GELU");
            var (d1, db1) = Backward(true);
            var (d2, db2) = Backward(false);
            Expect.AllClose(d1, d2.Select(v => (double)v).ToArray(), 1e-6, 8e-6, what + ": dpre");
            Expect.AllClose(db1, db2.Select(v => (double)v).ToArray(), 1e-4 * Math.Sqrt(m), 1e-4, what + ": dbias");
            Expect.Exactly(Backward(true).Db, db1, what + ": dbias must repeat bit for bit");
        }
    }
}
