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

    // The joint kernel's bound on |g - dy GELU'(x)| (CpuGelu.ActivationAndGradient): GELU's stated 1.2e-7 per unit
    // dy, plus the result's rounding.
    private static double GradientBound(double dy, double want) => 1.2e-7 * (Math.Abs(dy) + Math.Abs(want));

    /// <summary>CpuGelu.ActivationAndGradient (act = GELU(x), g *= GELU'(x) from Q's table and its derivative): act the
    /// same bits as <see cref="CpuGelu.Forward"/>; with dy = 1 at every x = -12 .. 12 in steps of 2^-12, GELU' within
    /// the bound CpuGelu.cs states for GELU' (1.2e-7 absolute; the derivative form measured 5.9e-8 before the result's
    /// rounding); with random dy, |g - dy GELU'| within 1.2e-7 (|dy| + |dy GELU'|); outputs NaN-poisoned, one past the
    /// end untouched; the one-lane form the same bits.</summary>
    [Test]
    public void ActivationAndGradientMatchesForwardAndFloat64()
    {
        int n = 24 * 4096 + 1;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = -12f + i / 4096f;
        foreach (bool unitDy in new[] { true, false })
        {
            string ctx = _rng.Ctx(unitDy ? "dy = 1" : "random dy");
            var dy = unitDy ? Enumerable.Repeat(1f, n).ToArray() : _rng.NormalArray(n, std: 3);
            var act = Enumerable.Repeat(float.NaN, n + 1).ToArray();
            var g = dy.Concat([float.NaN]).ToArray();
            CpuGelu.ActivationAndGradient(x, act.AsSpan(0, n), g.AsSpan(0, n));
            Assert.That(float.IsNaN(act[n]) && float.IsNaN(g[n]), Is.True, ctx + ": wrote past the end");
            var y = new float[n];
            CpuGelu.Forward(x, y);
            double worst = 0;
            for (int i = 0; i < n; i++)
            {
                Assert.That(act[i], Is.EqualTo(y[i]), $"{ctx}: act at x = {x[i]:R} against Forward");
                double want = dy[i] * Derivative64(x[i]), e = Math.Abs(g[i] - want);
                worst = Math.Max(worst, e);
                Assert.That(e, Is.LessThanOrEqualTo(unitDy ? 1.2e-7 : GradientBound(dy[i], want)),
                    $"{ctx}: dy * GELU'({x[i]:R}) = {g[i]:R}, float64 {want:R}, dy = {dy[i]:R}");
                float gs = CpuGelu.ActivationAndGradientScalar(x[i], dy[i], out float ys);
                Assert.That(ys, Is.EqualTo(act[i]), $"{ctx}: one lane's act at x = {x[i]:R}");
                Assert.That(gs, Is.EqualTo(g[i]), $"{ctx}: one lane's gradient at x = {x[i]:R}");
            }
            TestContext.Out.WriteLine($"{ctx}: max |g - dy GELU'| = {worst:G3}");
        }
    }

    /// <summary>The joint kernel at every length 0..70 and the MLP's hidden widths (whole vectors and one masked
    /// tail), random x over both tails and past the table (std 5), against float64 and the two-pass kernels; NaN
    /// propagates lane by lane, saturation is exact, -0 takes GELU'(0) = 1/2.</summary>
    [Test]
    public void ActivationAndGradientAtEveryLengthAndEdgeValues()
    {
        foreach (int n in Enumerable.Range(0, 71).Concat([124, 248, 496, 996]))
        {
            string ctx = _rng.Ctx($"length {n}");
            var x = _rng.NormalArray(n, std: 5);
            var dy = _rng.NormalArray(n);
            var act = Enumerable.Repeat(float.NaN, n + 1).ToArray();
            var g = dy.Concat([float.NaN]).ToArray();
            CpuGelu.ActivationAndGradient(x, act.AsSpan(0, n), g.AsSpan(0, n));
            Assert.That(float.IsNaN(act[n]) && float.IsNaN(g[n]), Is.True, ctx + ": wrote past the end");
            var d = new float[n];
            CpuGelu.Backward(x, dy, d);
            for (int i = 0; i < n; i++)
            {
                double want = dy[i] * Derivative64(x[i]);
                Assert.That(Math.Abs(g[i] - want), Is.LessThanOrEqualTo(GradientBound(dy[i], want)),
                    $"{ctx}: dy * GELU'({x[i]:R}) = {g[i]:R}, float64 {want:R} (index {i})");
                Assert.That(Math.Abs(g[i] - d[i]), Is.LessThanOrEqualTo(2.5e-7 * (Math.Abs(dy[i]) + Math.Abs(want))),
                    $"{ctx}: joint {g[i]:R} against the two-pass kernel {d[i]:R} at x = {x[i]:R} (index {i})");
            }
        }
        float[] xe = [float.NaN, 1f, -0f, 0f, 7.25f, -7.25f, 100f, -3e38f, 3e38f, float.NaN, -1f];
        var ye = new float[xe.Length];
        var ge = Enumerable.Repeat(2f, xe.Length).ToArray();
        CpuGelu.ActivationAndGradient(xe, ye, ge);
        float[] wantG =
            [float.NaN, 2 * (float)Derivative64(1), 1f, 1f, 2f, 0f, 2f, 0f, 2f, float.NaN, 2 * (float)Derivative64(-1)];
        for (int i = 0; i < xe.Length; i++)
        {
            string at = $"x = {xe[i]:R}: GELU {ye[i]:R}, 2 GELU' {ge[i]:R}";
            if (float.IsNaN(wantG[i]))
            {
                Assert.That(float.IsNaN(ye[i]) && float.IsNaN(ge[i]), Is.True, at);
                continue;
            }
            Assert.That(Math.Abs(ge[i] - wantG[i]), Is.LessThanOrEqualTo(3e-7), at);
            if (Math.Abs(xe[i]) > 7) Assert.That(ye[i], Is.EqualTo(xe[i] > 0 ? xe[i] : 0f), at);
        }
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
