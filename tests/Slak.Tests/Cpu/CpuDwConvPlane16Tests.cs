// The 16-pixel-map path of the decomposed depthwise convolution (CpuDwConvPlane16: NCHW planes of 16 pixels, one
// Vector512 each, times per-channel 16 x 16 matrices) against the float64 references of DwRef: forward per branch and
// their sum (beside the branch outputs, and alone: the summed-matrix product), the summed input gradient, the weight
// gradient dense and masked (masked taps exactly 0). Maps 4x4 (slak_nano stage 2, slak_nano64 stage 3), 2x8, 8x2,
// 1x16, 16x1; channel counts 31, 62, 124, 249 and small odd ones; kernels larger than the map (taps that never meet
// it: gradient 0); densities 1 / 0.6 / 0; branch 0 through its tap list, the others through their masks; every output
// poisoned (NaN) first; 1, 2 and 3 threads. Plus: bit-identical repeats at 1, 2 and 3 threads and equal bits between
// them, agreement with the small-map path (SLAK_DWCONV_PLANE16=0), and the switch. Seeds come from TestRandom
// (replay with SLAK_TEST_SEED) and are in every failure message.
using System.Runtime.Intrinsics.X86;
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[NonParallelizable] // switches CpuDwConvPlane16.Enabled and CpuParallel.Threads during a test
public sealed class CpuDwConvPlane16Tests
{
    private static readonly (int, int)[] Nano2 = [(9, 3), (3, 9), (3, 3)];
    private static readonly (int, int)[] Nano64S3 = [(7, 3), (3, 7), (3, 3)];

    private static IEnumerable<TestCaseData> Cases()
    {
        // N, C, H, W, branch kernel sizes (Kh, Kw), density, threads
        yield return Case("4x4, slak_nano stage 2 kernels, C 62, density 0.6, 2 threads", 5, 62, 4, 4, Nano2, 0.6, 2);
        yield return Case("4x4, slak_nano64 stage 3 kernels, C 124, density 0.6, 3 threads", 4, 124, 4, 4, Nano64S3,
            0.6, 3);
        yield return Case("4x4, slak_nano stage 2 kernels, C 31, dense, 1 thread", 3, 31, 4, 4, Nano2, 1.0, 1);
        yield return Case("4x4, C 249, density 0.6, 2 threads", 3, 249, 4, 4, Nano2, 0.6, 2);
        yield return Case("4x4, 51x5+5x51+5x5 (taps beyond the map), C 7, density 0.6", 3, 7, 4, 4,
            [(51, 5), (5, 51), (5, 5)], 0.6, 2);
        yield return Case("4x4, density 0, C 5", 2, 5, 4, 4, Nano2, 0.0, 1);
        yield return Case("4x4, one 1x1 branch, C 3", 2, 3, 4, 4, [(1, 1)], 1.0, 1);
        yield return Case("2x8 map, 15x3+3x15+3x3, C 13", 3, 13, 2, 8, [(15, 3), (3, 15), (3, 3)], 0.6, 3);
        yield return Case("8x2 map, 15x3+3x15, C 11", 3, 11, 8, 2, [(15, 3), (3, 15)], 0.6, 2);
        yield return Case("1x16 map, 1x31+3x3, C 9", 2, 9, 1, 16, [(1, 31), (3, 3)], 0.6, 2);
        yield return Case("16x1 map, 5x1 alone, dense", 2, 6, 16, 1, [(5, 1)], 1.0, 1);
    }

    private static TestCaseData Case(string name, int n, int c, int h, int w, (int, int)[] sizes, double density,
        int threads) => new TestCaseData(n, c, h, w, sizes, density, threads).SetName(name);

    [TestCaseSource(nameof(Cases))]
    public void Plane16PathMatchesReference(int n, int c, int h, int w, (int, int)[] sizes, double density,
        int threads)
    {
        RequirePath();
        Assert.That(CpuDwConvPlane16.Applies(h, w), Is.True, $"{h}x{w}");
        var rnd = TestRandom.ForCurrentTest();
        var p = new DwMapProblem(new Random(rnd.Seed), n, c, h, w, sizes, density);
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
    public void OnlySixteenPixelMapsTakeThePath()
    {
        RequirePath();
        Assert.That(CpuDwConvPlane16.Applies(4, 4), Is.True, "4x4");
        Assert.That(CpuDwConvPlane16.Applies(2, 8), Is.True, "2x8");
        Assert.That(CpuDwConvPlane16.Applies(8, 8), Is.False, "8x8");
        Assert.That(CpuDwConvPlane16.Applies(2, 2), Is.False, "2x2");
        Assert.That(CpuDwConvPlane16.Applies(3, 5), Is.False, "3x5");
        bool was = CpuDwConvPlane16.Enabled;
        try
        {
            CpuDwConvPlane16.Enabled = false;
            Assert.That(CpuDwConvPlane16.Applies(4, 4), Is.False, "4x4 with the path switched off");
        }
        finally
        {
            CpuDwConvPlane16.Enabled = was;
        }
    }

    [TestCase(62, 9)]
    [TestCase(124, 7)]
    public void RepeatsAreBitIdenticalAtOneTwoAndThreeThreads(int c, int m)
    {
        RequirePath();
        var rnd = TestRandom.ForCurrentTest();
        // Batch 128, as in training: enough work that 2 and 3 threads fork.
        var p = new DwMapProblem(new Random(rnd.Seed), 128, c, 4, 4, [(m, 3), (3, m), (3, 3)], 0.6);
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

    [TestCase(62, 9)]
    [TestCase(31, 9)]
    [TestCase(124, 7)]
    public void Plane16PathAgreesWithSmallMapPath(int c, int m)
    {
        RequirePath();
        var rnd = TestRandom.ForCurrentTest();
        var p = new DwMapProblem(new Random(rnd.Seed), 9, c, 4, 4, [(m, 3), (3, m), (3, 3)], 0.6);
        bool was = CpuDwConvPlane16.Enabled;
        try
        {
            CpuDwConvPlane16.Enabled = false;
            var small = p.Run();
            CpuDwConvPlane16.Enabled = true;
            var plane = p.Run();
            for (int b = 0; b < plane.Ys.Length; b++)
            {
                Close(plane.Ys[b], small.Ys[b], $"forward branch {b}", rnd);
                Close(plane.Dws[b], small.Dws[b], $"masked weight gradient branch {b}", rnd);
                Close(plane.DenseDws[b], small.DenseDws[b], $"dense weight gradient branch {b}", rnd);
            }
            Close(plane.Sum, small.Sum, "forward sum", rnd);
            Close(plane.Dx, small.Dx, "input gradient", rnd);
        }
        finally
        {
            CpuDwConvPlane16.Enabled = was;
        }
    }

    private static void RequirePath()
    {
        if (!Avx512F.IsSupported)
            Assert.Ignore("the 16-pixel-map path needs AVX-512; this machine runs the other paths");
    }

    // The two paths sum in different orders: agreement to float rounding of sums of a few dozen terms of size ~1.
    private static void Close(float[] a, float[] b, string what, TestRandom rnd)
    {
        for (int i = 0; i < a.Length; i++)
        {
            double tol = 2e-5 + 2e-5 * Math.Abs(b[i]);
            if (!(Math.Abs(a[i] - b[i]) <= tol))
                Assert.Fail(rnd.Ctx($"{what}: element {i} is {a[i]} on the 16-pixel-map path, {b[i]} on the " +
                    $"small-map path (tolerance {tol:g3})"));
        }
    }
}
