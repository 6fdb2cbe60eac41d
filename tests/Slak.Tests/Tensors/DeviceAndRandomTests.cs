// Device parsing, SlakRandom (determinism, GetState/SetState continuing the same sequence, distribution moments) and
// the scalar math behind exact GELU (CpuMath.Erf against high-precision values computed with mpmath at 40 digits,
// GELU and its derivative against the test's own quadrature-based reference).
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Tensors;

[TestFixture]
public sealed class DeviceAndRandomTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    [TestCase("cpu", DeviceType.Cpu, 0)]
    [TestCase(" CPU ", DeviceType.Cpu, 0)]
    [TestCase("cuda", DeviceType.Cuda, 0)]
    [TestCase("cuda:3", DeviceType.Cuda, 3)]
    [TestCase("CUDA:12", DeviceType.Cuda, 12)]
    [TestCase("cuda-emu", DeviceType.CudaEmu, 0)]
    public void ParseAcceptsDeviceSpecs(string spec, DeviceType type, int index)
    {
        var d = Device.Parse(spec);
        Assert.That((d.Type, d.Index), Is.EqualTo((type, index)), spec);
        Assert.That(Device.Parse(d.ToString()), Is.EqualTo(d), $"round trip of {d}");
    }

    [TestCase("gpu")]
    [TestCase("cuda:")]
    [TestCase("cuda:-1")]
    [TestCase("cuda:x")]
    [TestCase("cuda:1:2")]
    [TestCase("")]
    public void ParseRejectsUnknownSpecs(string spec) =>
        Expect.Throws<ArgumentException>(() => Device.Parse(spec), "spec", $"Device.Parse(\"{spec}\")", $"'{spec}'");

    [Test]
    public void SameSeedSameSequenceDifferentSeedDifferentSequence()
    {
        ulong seed = (ulong)_rng.Seed;
        var a = new SlakRandom(seed);
        var b = new SlakRandom(seed);
        var c = new SlakRandom(seed + 1);
        int same = 0;
        for (int i = 0; i < 1000; i++)
        {
            ulong va = a.NextUInt64();
            Assert.That(b.NextUInt64(), Is.EqualTo(va), _rng.Ctx($"draw {i}"));
            if (c.NextUInt64() == va) same++;
        }
        Assert.That(same, Is.EqualTo(0), _rng.Ctx("a neighbouring seed gives an unrelated sequence"));
    }

    [Test]
    public void StateRoundTripContinuesTheSameSequence()
    {
        var a = new SlakRandom((ulong)_rng.Seed);
        for (int i = 0; i < 17; i++) a.NextNormal();   // odd count: a spare normal is cached in the state
        var state = a.GetState();
        var expected = Enumerable.Range(0, 50).Select(_ => (a.NextNormal(), a.NextFloat(), a.NextInt(1000))).ToArray();
        var b = new SlakRandom(12345);
        b.SetState(state);
        var actual = Enumerable.Range(0, 50).Select(_ => (b.NextNormal(), b.NextFloat(), b.NextInt(1000))).ToArray();
        Assert.That(actual, Is.EqualTo(expected), _rng.Ctx("restored generator continues exactly"));
        Expect.Throws<ArgumentException>(() => b.SetState(new ulong[5]), "state", "short state", "5");
        Expect.Throws<ArgumentException>(() => b.SetState(new ulong[6]), "state", "all-zero state", "zero");
    }

    [Test]
    public void DistributionsHaveTheRightMoments()
    {
        var r = new SlakRandom((ulong)_rng.Seed);
        const int n = 200_000;
        double s = 0, s2 = 0, u = 0, umin = 1, umax = 0;
        var counts = new int[10];
        for (int i = 0; i < n; i++)
        {
            double z = r.NextNormal();
            s += z; s2 += z * z;
            double f = r.NextFloat();
            u += f; umin = Math.Min(umin, f); umax = Math.Max(umax, f);
            counts[r.NextInt(10)]++;
        }
        double mean = s / n, variance = s2 / n - mean * mean;
        // 5-sigma bounds: std of the mean 1/sqrt(n) = 0.0022, of the variance sqrt(2/n) = 0.0032.
        Assert.That(mean, Is.EqualTo(0).Within(0.011), _rng.Ctx("normal mean"));
        Assert.That(variance, Is.EqualTo(1).Within(0.016), _rng.Ctx("normal variance"));
        Assert.That(u / n, Is.EqualTo(0.5).Within(0.0033), _rng.Ctx("uniform mean"));
        Assert.That(umin >= 0 && umax < 1, Is.True, _rng.Ctx("uniform in [0, 1)"));
        foreach (int c in counts) Assert.That(c, Is.EqualTo(n / 10).Within(700), _rng.Ctx("NextInt(10) bucket counts"));
        double beta = 0;
        for (int i = 0; i < 20000; i++) beta += r.NextBeta(0.8, 0.8);
        Assert.That(beta / 20000, Is.EqualTo(0.5).Within(0.011), _rng.Ctx("Beta(0.8, 0.8) mean"));
        Expect.Throws<ArgumentOutOfRangeException>(() => r.NextInt(0), "maxExclusive", "NextInt(0)", "0");
    }

    /// <summary>erf at 40 digits (mpmath 1.2.1), rounded to double.</summary>
    private static readonly (double X, double Erf)[] ErfTable =
    [
        (0.0, 0.0), (1e-08, 1.1283791670955126e-08), (0.1, 0.1124629160182849), (0.5, 0.5204998778130465),
        (1.0, 0.8427007929497149), (1.5, 0.9661051464753108), (2.0, 0.9953222650189527),
        (2.4999, 0.9995928300996666), (2.5, 0.999593047982555), (2.5001, 0.9995932657565293),
        (3.0, 0.9999779095030014), (3.5, 0.9999992569016276), (4.0, 0.9999999845827421),
        (5.0, 0.9999999999984626), (5.9, 0.9999999999999999), (-0.7, -0.6778011938374184),
        (-2.7, -0.9998656672600594), (-4.5, -0.9999999998033839),
    ];

    [Test]
    public void ErfMatchesHighPrecisionValues()
    {
        foreach (var (x, erf) in ErfTable)
        {
            Assert.That(CpuMath.Erf(x), Is.EqualTo(erf).Within(1e-12), $"CpuMath.Erf({x})");
            Assert.That(CpuMath.Erf(-x), Is.EqualTo(-erf).Within(1e-12), $"CpuMath.Erf(-{x}) (odd)");
            Assert.That(Reference.Erf(x), Is.EqualTo(erf).Within(1e-13), $"the tests' quadrature erf({x}) (the oracle itself)");
        }
        for (int i = 0; i < 2000; i++)
        {
            double x = _rng.Uniform(-7, 7);
            Assert.That(CpuMath.Erf(x), Is.EqualTo(Reference.Erf(x)).Within(1e-12), _rng.Ctx($"CpuMath.Erf({x:R}) vs quadrature"));
        }
    }

    [Test]
    public void GeluAndDerivativeMatchReference()
    {
        (double X, double Gelu)[] table =
        [
            (-5.0, -1.4332578593959695e-06), (-3.0, -0.0040496940948902835), (-1.0, -0.15865525393145705),
            (-0.5, -0.15426876936299344), (0.0, 0.0), (0.25, 0.14967658142073093), (1.0, 0.8413447460685429),
            (2.0, 1.9544997361036416), (3.5, 3.4991857982233756),
        ];
        foreach (var (x, g) in table)
        {
            Assert.That((double)CpuMath.Gelu((float)x), Is.EqualTo(g).Within(1e-7 + 1e-6 * Math.Abs(g)), $"Gelu({x})");
            Assert.That(Reference.Gelu(x), Is.EqualTo(g).Within(1e-14), $"reference Gelu({x})");
        }
        for (int i = 0; i < 2000; i++)
        {
            float x = (float)_rng.Uniform(-8, 8);
            double h = 1e-6 * Math.Max(1, Math.Abs(x));
            double d = (Reference.Gelu(x + h) - Reference.Gelu(x - h)) / (2 * h);
            Assert.That((double)CpuMath.GeluDerivative(x), Is.EqualTo(d).Within(1e-6 + 1e-6 * Math.Abs(d)), _rng.Ctx($"GeluDerivative({x:R})"));
            Assert.That((double)CpuMath.Gelu(x), Is.EqualTo(Reference.Gelu(x)).Within(1e-7 + 1e-6 * Math.Abs(x)), _rng.Ctx($"Gelu({x:R})"));
        }
    }
}
