// The tiny-map path of the decomposed depthwise convolution (CpuDwConvTinyMap: NCHW planes of 1, 2 or 4 pixels,
// 16/(H*W) planes per Vector512, a plane times an (H*W) x (H*W) matrix through XOR permutes) against the float64
// references of DwRef: forward per branch and their sum (with and without branch outputs), the summed input
// gradient, the weight gradient dense and masked (masked taps exactly 0). Maps 1x1, 1x2, 2x1, 2x2, 1x4, 4x1; 3x3 and 4x4 must
// stay on the other paths and still be right. Odd channel counts
// (C*H*W not a multiple of 16: partial last vectors), densities 1 / 0.6 / 0.1 / 0, a branch through its tap list and
// the others through their masks, every output poisoned (NaN) first. Plus: masks edited in place between calls (the
// cached plans hold taps only, never weights or masks), bit-identical repeats at 1 and 2 threads and equal bits
// between them, and agreement with the small-map path (the tiny path switched off).
using System.Runtime.Intrinsics.X86;
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[NonParallelizable] // switches CpuDwConvTinyMap.Enabled and CpuParallel.Threads during a test
public sealed class CpuDwConvTinyMapTests
{
    private static readonly (int, int)[] Nano = [(5, 3), (3, 5), (3, 3)];

    private static IEnumerable<TestCaseData> Cases()
    {
        // N, C, H, W, branch kernel sizes (Kh, Kw), density
        yield return Case("1x1, slak_nano stage 4 kernels, C 249, density 0.6", 5, 249, 1, 1, Nano, 0.6);
        yield return Case("1x1, C 7, dense", 3, 7, 1, 1, Nano, 1.0);
        yield return Case("1x1, C 17, density 0.1", 4, 17, 1, 1, Nano, 0.1);
        yield return Case("1x1, density 0", 3, 9, 1, 1, Nano, 0.0);
        yield return Case("2x2, slak_nano stage 3 kernels, C 31, density 0.6", 5, 31, 2, 2, Nano, 0.6);
        yield return Case("2x2, C 5, dense", 3, 5, 2, 2, Nano, 1.0);
        yield return Case("2x2, 51x5+5x51+5x5, density 0.1", 3, 9, 2, 2, [(51, 5), (5, 51), (5, 5)], 0.1);
        yield return Case("2x2, density 0", 2, 6, 2, 2, Nano, 0.0);
        yield return Case("1x2 map, 1x3+3x1", 3, 11, 1, 2, [(1, 3), (3, 1)], 0.6);
        yield return Case("2x1 map, 1x1 kernel", 3, 13, 2, 1, [(1, 1), (3, 3)], 1.0);
        yield return Case("1x4 map, 1x5+3x3, C 13", 3, 13, 1, 4, [(1, 5), (3, 3)], 0.6);
        yield return Case("4x1 map, 7x3 alone, dense", 2, 3, 4, 1, [(7, 3)], 1.0);
        yield return Case("4x4 (other paths), 7x3+3x7+3x3", 2, 13, 4, 4, [(7, 3), (3, 7), (3, 3)], 0.6);
        yield return Case("3x3 (other paths), slak kernels", 3, 11, 3, 3, Nano, 0.6);
    }

    private static TestCaseData Case(string name, int n, int c, int h, int w, (int, int)[] sizes, double density) =>
        new TestCaseData(n, c, h, w, sizes, density).SetName(name);

    [TestCaseSource(nameof(Cases))]
    public void TinyMapPathMatchesReference(int n, int c, int h, int w, (int, int)[] sizes, double density)
    {
        RequirePath();
        int hw = h * w;
        Assert.That(CpuDwConvTinyMap.Applies(h, w), Is.EqualTo(hw is 1 or 2 or 4), $"{h}x{w}");
        int seed = TestRandom.NewSeed();
        var p = new DwMapProblem(new Random(seed), n, c, h, w, sizes, density);
        p.CheckAgainstReference(new TestRandom(seed), "first masks");
    }

    [Test]
    public void BoundsAreTheDefaults()
    {
        RequirePath();
        Assert.That(CpuDwConvTinyMap.Applies(1, 1), Is.True, "1x1");
        Assert.That(CpuDwConvTinyMap.Applies(2, 2), Is.True, "2x2");
        Assert.That(CpuDwConvTinyMap.Applies(1, 2), Is.True, "1x2");
        Assert.That(CpuDwConvTinyMap.Applies(3, 1), Is.False, "3 pixels: not a power of two");
        Assert.That(CpuDwConvTinyMap.Applies(4, 4), Is.False, "4x4 stays on the small-map path");
    }

    [TestCase(1, 1, 0.6)]
    [TestCase(2, 2, 0.6)]
    [TestCase(2, 2, 0.1)]
    [TestCase(1, 2, 1.0)]
    public void MasksEditedBetweenCallsAreSeen(int h, int w, double density)
    {
        RequirePath();
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        var p = new DwMapProblem(rng, 3, 19, h, w, Nano, density);
        p.CheckAgainstReference(new TestRandom(seed), "first masks");
        // Prune / regrow in place (the same arrays, as Masking edits its mask tensors), then a new tap list for
        // branch 0 (as CpuDwConvTapCache rebuilds it).
        foreach (var mask in p.Masks)
            for (int i = 0; i < mask.Length; i++)
                if (rng.NextDouble() < 0.4) mask[i] = 1f - mask[i];
        p.RebuildTapList();
        p.CheckAgainstReference(new TestRandom(seed), "masks changed in place");
    }

    [TestCase(1, 1, 249)]
    [TestCase(2, 2, 124)]
    public void RepeatsAreBitIdenticalAtOneAndTwoThreads(int h, int w, int c)
    {
        RequirePath();
        int seed = TestRandom.NewSeed();
        // Batch 128: enough work that two threads fork.
        var p = new DwMapProblem(new Random(seed), 128, c, h, w, Nano, 0.6);
        int keep = CpuParallel.Threads;
        try
        {
            var runs = new Dictionary<int, DwMapOutputs>();
            foreach (int threads in new[] { 1, 2 })
            {
                CpuParallel.Threads = threads;
                var first = p.Run();
                var again = p.Run();
                first.AssertIdentical(again, $"{threads} thread(s), repeat (seed {seed})");
                runs[threads] = first;
            }
            runs[1].AssertIdentical(runs[2], $"1 vs 2 threads (seed {seed})");
        }
        finally
        {
            CpuParallel.Threads = keep;
        }
    }

    [TestCase(1, 1, 249)]
    [TestCase(2, 2, 124)]
    public void TinyMapPathAgreesWithSmallMapPath(int h, int w, int c)
    {
        RequirePath();
        int seed = TestRandom.NewSeed();
        var p = new DwMapProblem(new Random(seed), 9, c, h, w, Nano, 0.6);
        bool was = CpuDwConvTinyMap.Enabled;
        try
        {
            CpuDwConvTinyMap.Enabled = false;
            var small = p.Run();
            CpuDwConvTinyMap.Enabled = true;
            var tiny = p.Run();
            for (int b = 0; b < tiny.Ys.Length; b++)
            {
                Close(tiny.Ys[b], small.Ys[b], $"forward branch {b}", seed);
                Close(tiny.Dws[b], small.Dws[b], $"weight gradient branch {b}", seed);
            }
            Close(tiny.Dx, small.Dx, "input gradient", seed);
        }
        finally
        {
            CpuDwConvTinyMap.Enabled = was;
        }
    }

    private static void RequirePath()
    {
        if (!Avx512F.IsSupported)
            Assert.Ignore("the tiny-map path needs AVX-512; this machine runs the other paths");
    }

    private static void Close(float[] a, float[] b, string what, int seed)
    {
        for (int i = 0; i < a.Length; i++)
        {
            double tol = 1e-5 + 1e-5 * Math.Abs(b[i]);
            if (!(Math.Abs(a[i] - b[i]) <= tol))
                Assert.Fail($"{what}: element {i} is {a[i]} on the tiny-map path, {b[i]} on the small-map path " +
                    $"(tolerance {tol:g3}), seed {seed}");
        }
    }
}
