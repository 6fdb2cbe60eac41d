// CpuGelu's span kernels (the table form: AVX-512 for whole 16-lane vectors and a masked last vector; without
// AVX-512 the same operations in AVX2 lanes and one by one) against the float64 definitions in CpuMath: a dense grid over [-14, 14]
// (both tails, past the tables' saturation, and a length that is not a multiple of 16) and random normal inputs at
// lengths 1..70, outputs NaN-poisoned first (and one past the end, which must stay untouched); the error bounds that
// CpuGelu.cs states, over every x = -12 .. 12 in steps of 2^-12; exact saturation; NaN in, NaN out; and the
// fallbacks giving the AVX-512 path's bits.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
public class CpuGeluTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    private static float[] Grid()
    {
        var x = new float[2803]; // 28 / 0.01 + 3: not a multiple of 16
        for (int i = 0; i < x.Length; i++) x[i] = -14f + 0.01f * i;
        return x;
    }

    private void Check(float[] x, float[] dy, string ctx)
    {
        var y = Enumerable.Repeat(float.NaN, x.Length + 1).ToArray();
        var dx = Enumerable.Repeat(float.NaN, x.Length + 1).ToArray();
        CpuGelu.Forward(x, y.AsSpan(0, x.Length));
        CpuGelu.Backward(x, dy, dx.AsSpan(0, x.Length));
        Assert.That(float.IsNaN(y[^1]) && float.IsNaN(dx[^1]), Is.True, _rng.Ctx($"{ctx}: wrote past the end"));
        for (int i = 0; i < x.Length; i++)
        {
            double want = CpuMath.Gelu(x[i]);
            Assert.That(Math.Abs(y[i] - want), Is.LessThanOrEqualTo(1e-6 + 2e-6 * Math.Abs(want)),
                _rng.Ctx($"{ctx}: GELU({x[i]:R}) = {y[i]:R}, float64 {want:R} (index {i} of {x.Length})"));
            double wantD = dy[i] * (double)CpuMath.GeluDerivative(x[i]);
            Assert.That(Math.Abs(dx[i] - wantD), Is.LessThanOrEqualTo(1e-6 + 4e-6 * Math.Abs(wantD)),
                _rng.Ctx($"{ctx}: dy * GELU'({x[i]:R}) = {dx[i]:R}, float64 {wantD:R} (index {i} of {x.Length})"));
        }
    }

    [Test]
    public void GridOverBothTailsMatchesFloat64()
    {
        var x = Grid();
        Check(x, Enumerable.Repeat(1f, x.Length).ToArray(), "grid, dy = 1");
        Check(x, _rng.NormalArray(x.Length), "grid, random dy");
    }

    [Test]
    public void RandomInputsAtEveryShortLengthMatchFloat64()
    {
        for (int n = 1; n <= 70; n++)
            Check(_rng.NormalArray(n, std: 3), _rng.NormalArray(n), $"length {n}");
    }

    private static double Gelu64(double x) => 0.5 * x * (1 + CpuMath.Erf(x / Math.Sqrt(2)));

    private static double Derivative64(double x) =>
        0.5 * (1 + CpuMath.Erf(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);

    /// <summary>The bounds stated in CpuGelu.cs (measured maxima: GELU 8.9e-7 / 3.0e-6 relative, 3.5e-8 absolute;
    /// GELU' 8.0e-8 absolute), with a little room, at every x = -12 .. 12 in steps of 2^-12.</summary>
    [Test]
    public void DenseSweepIsWithinTheStatedErrorBounds()
    {
        int n = 24 * 4096 + 1;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = -12f + i / 4096f;
        var y = Enumerable.Repeat(float.NaN, n).ToArray();
        var d = Enumerable.Repeat(float.NaN, n).ToArray();
        CpuGelu.Forward(x, y);
        CpuGelu.Backward(x, Enumerable.Repeat(1f, n).ToArray(), d);
        double rel3 = 0, rel5 = 0, absNeg = 0, absD = 0;
        for (int i = 0; i < n; i++)
        {
            double w = Gelu64(x[i]), e = Math.Abs(y[i] - w);
            if (x[i] >= -3 && w != 0) rel3 = Math.Max(rel3, e / Math.Abs(w));
            if (x[i] >= -5 && w != 0) rel5 = Math.Max(rel5, e / Math.Abs(w));
            if (x[i] < 0) absNeg = Math.Max(absNeg, e);
            absD = Math.Max(absD, Math.Abs(d[i] - Derivative64(x[i])));
        }
        TestContext.Out.WriteLine($"GELU relative error max {rel3:G3} (x >= -3), {rel5:G3} (x >= -5); absolute {absNeg:G3} " +
            $"(x < 0); GELU' absolute {absD:G3}");
        Assert.That(rel3, Is.LessThanOrEqualTo(1e-6), "GELU relative error, x >= -3");
        Assert.That(rel5, Is.LessThanOrEqualTo(4e-6), "GELU relative error, x >= -5");
        Assert.That(absNeg, Is.LessThanOrEqualTo(5e-8), "GELU absolute error, x < 0");
        Assert.That(absD, Is.LessThanOrEqualTo(1.2e-7), "GELU' absolute error");
    }

    [Test]
    public void SaturatesExactlyPastTheTables()
    {
        float[] x = [7.25f, 9.25f, 100f, 3e38f, -7.25f, -9.25f, -100f, -3e38f]; // past A = 6.5 (Q) and 7 (R)
        var y = new float[x.Length];
        var d = new float[x.Length];
        CpuGelu.Forward(x, y);
        CpuGelu.Backward(x, Enumerable.Repeat(1f, x.Length).ToArray(), d);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.That(y[i], Is.EqualTo(x[i] > 0 ? x[i] : 0f), $"GELU({x[i]:R})");
            Assert.That(d[i], Is.EqualTo(x[i] > 0 ? 1f : 0f), $"GELU'({x[i]:R})");
        }
    }

    [Test]
    public void NaNPropagates()
    {
        float[] x = [1f, float.NaN, -1f, float.NaN];
        var y = new float[x.Length];
        var d = new float[x.Length];
        CpuGelu.Forward(x, y);
        CpuGelu.Backward(x, [1f, 1f, 1f, 1f], d);
        Assert.That(float.IsNaN(y[1]) && float.IsNaN(y[3]) && float.IsNaN(d[1]) && float.IsNaN(d[3]), Is.True,
            $"GELU = [{string.Join(", ", y)}], GELU' = [{string.Join(", ", d)}]");
        Assert.That(float.IsFinite(y[0]) && float.IsFinite(y[2]) && float.IsFinite(d[0]) && float.IsFinite(d[2]), Is.True,
            "a NaN lane must not spill into its neighbours");
    }

    /// <summary>The fallbacks (machines without AVX-512: AVX2 in 8 lanes, then one by one) run the same operations, so
    /// they give the same bits as the AVX-512 path; checked on the grid (not a multiple of 8) and random inputs.</summary>
    [Test]
    public unsafe void FallbacksGiveTheVectorPathsBits()
    {
        if (!CpuGelu.Vectorized) Assert.Ignore("no AVX-512: only the fallbacks run here");
        var x = Grid().Concat(_rng.NormalArray(1001, std: 3)).Concat([float.NaN, 0f, -0f]).ToArray();
        var dy = _rng.NormalArray(x.Length);
        var y = new float[x.Length];
        var d = new float[x.Length];
        CpuGelu.Forward(x, y);
        CpuGelu.Backward(x, dy, d);
        var yl = Enumerable.Repeat(float.NaN, x.Length).ToArray();
        var dl = Enumerable.Repeat(float.NaN, x.Length).ToArray();
        fixed (float* px = x, pg = dy, py = yl, pd = dl)
        {
            CpuGelu.ForwardLanes(px, py, x.Length);
            CpuGelu.BackwardLanes(px, pg, pd, x.Length);
        }
        for (int i = 0; i < x.Length; i++)
        {
            string at = _rng.Ctx($"x = {x[i]:R} (index {i})");
            Assert.That(CpuGelu.GeluScalar(x[i]), Is.EqualTo(y[i]), "GELU, one lane: " + at);
            Assert.That(dy[i] * CpuGelu.DerivativeScalar(x[i]), Is.EqualTo(d[i]), "dy * GELU', one lane: " + at);
            Assert.That(yl[i], Is.EqualTo(y[i]), "GELU, AVX2 lanes: " + at);
            Assert.That(dl[i], Is.EqualTo(d[i]), "dy * GELU', AVX2 lanes: " + at);
        }
    }
}
