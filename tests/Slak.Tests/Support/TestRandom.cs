// The per-test random source. Every test draws fresh inputs from its own seed, and every failure message carries
// that seed (Ctx), so a failing run can be replayed exactly: SLAK_TEST_SEED=<seed> dotnet test --filter <test>.
// Inputs are drawn with System.Random (not SlakRandom) so test data never depends on the code under test.
namespace Slak.Tests.Support;

/// <summary>Seeded random source for one test; its seed goes into every failure message.</summary>
public sealed class TestRandom
{
    private readonly Random _random;

    /// <summary>A source with an explicit seed.</summary>
    public TestRandom(int seed)
    {
        Seed = seed;
        _random = new Random(seed);
    }

    /// <summary>The seed (printed in failure messages).</summary>
    public int Seed { get; }

    /// <summary>A source for the current test: the seed comes from SLAK_TEST_SEED when set (replay), otherwise
    /// it is fresh for every run.</summary>
    public static TestRandom ForCurrentTest() => new(NewSeed());

    /// <summary>A seed for a test that seeds its own generator: SLAK_TEST_SEED when set (replay), otherwise fresh and
    /// positive. (NUnit's TestContext.CurrentContext.Random ignores SLAK_TEST_SEED, so a seed drawn from it cannot be
    /// replayed.)</summary>
    public static int NewSeed()
    {
        var env = Environment.GetEnvironmentVariable("SLAK_TEST_SEED");
        return int.TryParse(env, out int s) ? s : Random.Shared.Next(1, int.MaxValue);
    }

    /// <summary>"what [seed=S; replay with SLAK_TEST_SEED=S]": the context string for assertion messages.</summary>
    public string Ctx(string what) => $"{what} [seed={Seed}; replay with SLAK_TEST_SEED={Seed}]";

    /// <summary>Uniform integer in [low, highInclusive].</summary>
    public int Int(int low, int highInclusive) => _random.Next(low, highInclusive + 1);

    /// <summary>True with probability <paramref name="p"/>.</summary>
    public bool Bool(double p = 0.5) => _random.NextDouble() < p;

    /// <summary>Uniform double in [low, high).</summary>
    public double Uniform(double low = 0, double high = 1) => low + (high - low) * _random.NextDouble();

    /// <summary>Standard normal sample (Box-Muller).</summary>
    public double Normal()
    {
        double u1 = 1.0 - _random.NextDouble(), u2 = _random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary><paramref name="n"/> float normal samples with the given mean and std.</summary>
    public float[] NormalArray(long n, double std = 1, double mean = 0)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(mean + std * Normal());
        return a;
    }

    /// <summary><paramref name="n"/> float uniform samples in [low, high).</summary>
    public float[] UniformArray(long n, double low, double high)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)Uniform(low, high);
        return a;
    }

    /// <summary>A 0/1 mask of <paramref name="n"/> elements, each 1 with probability <paramref name="keep"/>.</summary>
    public float[] MaskArray(long n, double keep)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = Bool(keep) ? 1f : 0f;
        return a;
    }

    /// <summary>An odd integer in [low, highInclusive] (low rounded up to odd).</summary>
    public int Odd(int low, int highInclusive)
    {
        int lo = low | 1;
        return lo + 2 * Int(0, (highInclusive - lo) / 2);
    }

    /// <summary>One of <paramref name="items"/>.</summary>
    public T Pick<T>(params T[] items) => items[_random.Next(items.Length)];
}
