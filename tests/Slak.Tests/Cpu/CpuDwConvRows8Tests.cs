// The 8 x 8-map path of the decomposed depthwise convolution (CpuDwConvRows8: NCHW rows, two per vector, forward and
// input gradient; the weight gradient stays on the small-map path) against the float64 references of DwRef: forward
// per branch and their sum beside them, the summed input gradient (and, through DwMapProblem, the weight gradient
// and the sum alone on the paths that serve them). The 8 x 8 stages' kernels of slak_nano and slak_nano64
// (15 x 3 + 3 x 15 + 3 x 3: windows spanning the map), kernels larger than the map (31 x 5: taps that never meet it),
// square windows (15 x 15, 5 x 5), a 1 x 1 branch, a branch alone; channel counts 31, 62 and small odd ones;
// densities 1 / 0.6 / 0; branch 0 through its tap list, the others through their masks; every output poisoned (NaN)
// first; 1, 2 and 3 threads. Plus: bit-identical repeats at 1, 2 and 3 threads and equal bits between them, agreement
// with the small-map path, and the switch (the path is off by default, SLAK_DWCONV_ROWS8=1: every test turns it on
// and restores it). Seeds come from TestRandom (replay with SLAK_TEST_SEED) and are in every failure message.
using System.Runtime.Intrinsics.X86;
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[NonParallelizable] // switches CpuDwConvRows8.Enabled and CpuParallel.Threads during a test
public sealed class CpuDwConvRows8Tests
{
    private static readonly (int, int)[] M15 = [(15, 3), (3, 15), (3, 3)];

    private static IEnumerable<TestCaseData> Cases()
    {
        // N, C, density, threads, branch kernel sizes (Kh, Kw)
        yield return Case("slak_nano stage 1 kernels, C 31, density 0.6, 1 thread", 4, 31, 0.6, 1, M15);
        yield return Case("slak_nano stage 1 kernels, C 31, density 0.6, 2 threads", 4, 31, 0.6, 2, M15);
        yield return Case("slak_nano stage 1 kernels, C 31, density 0.6, 3 threads", 5, 31, 0.6, 3, M15);
        yield return Case("slak_nano64 stage 2 kernels, C 62, density 0.6, 2 threads", 3, 62, 0.6, 2, M15);
        yield return Case("slak_nano64 stage 2 kernels, C 62, dense, 3 threads", 3, 62, 1.0, 3, M15);
        yield return Case("7x3+3x7+3x3, C 13, density 0.6, 2 threads", 2, 13, 0.6, 2, [(7, 3), (3, 7), (3, 3)]);
        yield return Case("31x5+5x31+5x5 (taps beyond the map), C 7, density 0.6, 2 threads", 3, 7, 0.6, 2,
            [(31, 5), (5, 31), (5, 5)]);
        yield return Case("15x15 and 5x5 (square windows), C 5, density 0.6, 3 threads", 3, 5, 0.6, 3,
            [(15, 15), (5, 5)]);
        yield return Case("9x5 then 5x9 then 1x1, C 9, density 0.6, 1 thread", 2, 9, 0.6, 1,
            [(9, 5), (5, 9), (1, 1)]);
        yield return Case("3x15 alone, C 11, dense, 2 threads", 3, 11, 1.0, 2, [(3, 15)]);
        yield return Case("15x3 alone, C 3, density 0, 1 thread", 2, 3, 0.0, 1, [(15, 3)]);
    }

    private static TestCaseData Case(string name, int n, int c, double density, int threads, (int, int)[] sizes) =>
        new TestCaseData(n, c, density, threads, sizes).SetName(name);

    private bool _wasEnabled;

    [SetUp]
    public void TurnPathOn()
    {
        _wasEnabled = CpuDwConvRows8.Enabled;
        CpuDwConvRows8.Enabled = true;
    }

    [TearDown]
    public void RestorePath() => CpuDwConvRows8.Enabled = _wasEnabled;

    [TestCaseSource(nameof(Cases))]
    public void Rows8PathMatchesReference(int n, int c, double density, int threads, (int, int)[] sizes)
    {
        RequirePath();
        var rnd = TestRandom.ForCurrentTest();
        var p = new DwMapProblem(new Random(rnd.Seed), n, c, 8, 8, sizes, density);
        Assert.That(CpuDwConvRows8.Applies(8, 8, p.Branches), Is.True, rnd.Ctx("applies"));
        int keep = CpuParallel.Threads;
        try
        {
            CpuParallel.Threads = threads;
            p.CheckAgainstReference(rnd, $"{threads} thread(s)");
        }
        finally
        {
            CpuParallel.Threads = keep;
        }
    }

    [Test]
    public void OnlyEightByEightMapsWithOddKernelsTakeThePath()
    {
        RequirePath();
        CpuDwConvBranch[] odd = [new(15, 3, new float[15 * 3])], even = [new(4, 3, new float[4 * 3])];
        Assert.That(CpuDwConvRows8.Applies(8, 8, odd), Is.True, "8x8");
        Assert.That(CpuDwConvRows8.Applies(8, 8, even), Is.False, "8x8, even kernel height");
        Assert.That(CpuDwConvRows8.Applies(16, 16, odd), Is.False, "16x16");
        Assert.That(CpuDwConvRows8.Applies(8, 4, odd), Is.False, "8x4");
        Assert.That(CpuDwConvRows8.Applies(4, 4, odd), Is.False, "4x4");
        CpuDwConvRows8.Enabled = false;
        Assert.That(CpuDwConvRows8.Applies(8, 8, odd), Is.False, "8x8 with the path switched off");
    }

    [Test]
    public void RepeatsAreBitIdenticalAtOneTwoAndThreeThreads()
    {
        RequirePath();
        var rnd = TestRandom.ForCurrentTest();
        // Batch 128 and slak_nano's stage 1, as in training: enough work that 2 and 3 threads fork.
        var p = new DwMapProblem(new Random(rnd.Seed), 128, 31, 8, 8, M15, 0.6);
        int keep = CpuParallel.Threads;
        try
        {
            var runs = new Dictionary<int, DwMapOutputs>();
            foreach (int threads in new[] { 1, 2, 3 })
            {
                CpuParallel.Threads = threads;
                var first = p.Run();
                var again = p.Run();
                first.AssertIdentical(again, rnd.Ctx($"{threads} thread(s), repeat"));
                runs[threads] = first;
            }
            runs[1].AssertIdentical(runs[2], rnd.Ctx("1 vs 2 threads"));
            runs[1].AssertIdentical(runs[3], rnd.Ctx("1 vs 3 threads"));
        }
        finally
        {
            CpuParallel.Threads = keep;
        }
    }

    [TestCase(31)]
    [TestCase(62)]
    public void Rows8PathAgreesWithSmallMapPath(int c)
    {
        RequirePath();
        var rnd = TestRandom.ForCurrentTest();
        var p = new DwMapProblem(new Random(rnd.Seed), 5, c, 8, 8, M15, 0.6);
        CpuDwConvRows8.Enabled = false;
        var small = p.Run();
        CpuDwConvRows8.Enabled = true;
        var rows = p.Run();
        for (int b = 0; b < rows.Ys.Length; b++) Close(rows.Ys[b], small.Ys[b], $"forward branch {b}", rnd);
        Close(rows.Sum, small.Sum, "forward sum", rnd);
        Close(rows.Dx, small.Dx, "input gradient", rnd);
    }

    private static void RequirePath()
    {
        if (!Avx512F.IsSupported)
            Assert.Ignore("the 8 x 8-map path needs AVX-512; this machine runs the other paths");
    }

    // The two paths sum in different orders: agreement to float rounding of sums of up to ~100 terms of size ~1.
    private static void Close(float[] a, float[] b, string what, TestRandom rnd)
    {
        for (int i = 0; i < a.Length; i++)
        {
            double tol = 5e-5 + 2e-5 * Math.Abs(b[i]);
            if (!(Math.Abs(a[i] - b[i]) <= tol))
                Assert.Fail(rnd.Ctx($"{what}: element {i} is {a[i]} on the 8 x 8-map path, {b[i]} on the " +
                    $"small-map path (tolerance {tol:g3})"));
        }
    }
}
