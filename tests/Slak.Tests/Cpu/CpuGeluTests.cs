// CpuGelu's span kernels (the one-pass AVX-512 path for whole 16-lane vectors, the block path for the rest and for
// machines without 512-bit vectors) against the float64 definitions in CpuMath: a dense grid over [-14, 14] (both
// tails, where the inline exp underflows, and a length that is not a multiple of 16 so both paths run) and random
// normal inputs at lengths 1..70. Outputs are NaN-poisoned first.
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
        var y = Enumerable.Repeat(float.NaN, x.Length).ToArray();
        var dx = Enumerable.Repeat(float.NaN, x.Length).ToArray();
        CpuGelu.Forward(x, y);
        CpuGelu.Backward(x, dy, dx);
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
}
