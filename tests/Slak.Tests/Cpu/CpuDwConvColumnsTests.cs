// The whole-line kernels of the small-map depthwise path (CpuDwConvColumns: a window 2L-1 taps long on a map L = 4,
// 8 or 16 pixels long) against the float64 references of DwRef, through CpuDwConvSmallMapTests' checks (forward per
// branch, their sum with and without branch outputs, the summed input gradient, the weight gradient dense and masked,
// every output poisoned first; maps past the path's pixel bound with it raised, so that a line branch beside one the
// kernels do not take runs on them too): the stages of both nano presets, lines along either axis, windows 2L-1 and 3 taps
// along the lines, odd line counts (a phantom second line), a 1-tap short side, a kernel longer than the window,
// channel counts that are not a multiple of 16,
// densities 1 / 0.6 / 0.1 / 0; maps the kernels do not take (3x5, 7x7) still right with them switched on. Plus:
// agreement with the general small-map kernels or, on 16 x 16 maps, the plane engine (the switch off), bit-for-bit
// equality at 1 and 2 threads, and which maps and branch sets the 16-long lines admit. The
// switch also changes the layout moves (CpuDwConvPixelMajor: 128-bit halves, fixed padded store pattern), which every
// case goes through, full and partial 8-channel blocks both (C = 31, 62, 17, ...).
using System.Runtime.Intrinsics;
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[NonParallelizable] // switches CpuDwConvColumns.Enabled and CpuParallel.Threads for the duration of a test
public sealed class CpuDwConvColumnsTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        // N, C, H, W, branch kernel sizes (Kh, Kw), density, how many branches take the line kernels
        foreach (double d in new[] { 1.0, 0.6, 0.1, 0.0 })
        {
            yield return Case($"slak_nano s1: 8x8, 15x3+3x15+3x3, density {d}", 5, 31, 8, 8, [(15, 3), (3, 15), (3, 3)], d, 3);
            yield return Case($"slak_nano s2: 4x4, 9x3+3x9+3x3, density {d}", 3, 62, 4, 4, [(9, 3), (3, 9), (3, 3)], d, 3);
            yield return Case($"slak_nano64 s1: 16x16, 31x3+3x31+3x3, density {d}", 3, 31, 16, 16, [(31, 3), (3, 31), (3, 3)], d, 3);
        }
        yield return Case("16x16, 51x5+5x51 (windows clipped to 31)", 2, 17, 16, 16, [(51, 5), (5, 51)], 0.6, 2);
        yield return Case("16x8 map, 31x3+3x15+3x3", 3, 9, 16, 8, [(31, 3), (3, 15), (3, 3)], 0.6, 3);
        yield return Case("8x16 map, 7x3+3x31 (3-tap window along 16-long rows)", 3, 20, 8, 16, [(7, 3), (3, 31)], 0.6, 2);
        yield return Case("16x5 map (odd line count), 31x5+5x3", 3, 7, 16, 5, [(31, 5), (5, 3)], 0.6, 1);
        yield return Case("16x16, 7x3+3x3+3x5 (3-tap windows along 16-long lines)", 2, 18, 16, 16, [(7, 3), (3, 3), (3, 5)], 0.6, 3);
        yield return Case("16x3 map, 3x3 (3-tap window along 16-long columns)", 3, 21, 16, 3, [(3, 3)], 0.1, 1);
        yield return Case("16x16, 31x3+5x5 (5x5 not taken)", 2, 16, 16, 16, [(31, 3), (5, 5)], 0.6, 1);
        yield return Case("slak_nano64 s3: 4x4, 7x3+3x7+3x3", 3, 20, 4, 4, [(7, 3), (3, 7), (3, 3)], 0.6, 3);
        yield return Case("8x8, 31x3+3x31 (window clipped to 15)", 3, 17, 8, 8, [(31, 3), (3, 31)], 0.6, 2);
        yield return Case("8x8, 15x15 alone", 2, 16, 8, 8, [(15, 15)], 1.0, 1);
        yield return Case("8x4 map, 15x3+3x7+7x7", 3, 9, 8, 4, [(15, 3), (3, 7), (7, 7)], 0.6, 3);
        yield return Case("4x8 map, 7x5+5x15", 3, 33, 4, 8, [(7, 5), (5, 15)], 0.6, 2);
        yield return Case("8x5 map (odd line count), 15x5+5x3", 4, 7, 8, 5, [(15, 5), (5, 3)], 0.6, 1);
        yield return Case("3x4 map (phantom line), 3x7+7x1", 5, 18, 3, 4, [(3, 7), (7, 1)], 0.6, 1);
        yield return Case("4x3 map (phantom line), 7x3", 5, 18, 4, 3, [(7, 3)], 1.0, 1);
        yield return Case("4x1 map, 7x1 (one tap across)", 3, 5, 4, 1, [(7, 1)], 1.0, 1);
        yield return Case("8x8, 7x3+3x3 (3-tap windows along the lines, 7 across)", 3, 19, 8, 8, [(7, 3), (3, 3)], 0.6, 2);
        yield return Case("8x3 map, 3x3 (3-tap window along the columns)", 4, 21, 8, 3, [(3, 3)], 0.6, 1);
        yield return Case("4x5 map (phantom line), 3x3+5x3", 5, 17, 4, 5, [(3, 3), (5, 3)], 0.6, 1);
        yield return Case("3x5 map, 7x3+3x7 (not taken)", 5, 10, 3, 5, [(7, 3), (3, 7)], 0.6, 0);
        yield return Case("7x7 map, 13x5+5x13+5x5 (not taken)", 3, 11, 7, 7, [(13, 5), (5, 13), (5, 5)], 0.6, 0);
    }

    private static TestCaseData Case(string name, int n, int c, int h, int w, (int, int)[] sizes, double density,
        int taken) => new TestCaseData(n, c, h, w, sizes, density, taken).SetName(name);

    [TestCaseSource(nameof(Cases))]
    public void LineKernelsMatchReference(int n, int c, int h, int w, (int, int)[] sizes, double density, int taken)
    {
        RequirePath();
        bool was = CpuDwConvColumns.Enabled, was16 = CpuDwConvColumns.Lines16;
        int limit = CpuDwConvSmallMap.PixelLimit;
        try
        {
            CpuDwConvColumns.Enabled = true;
            CpuDwConvColumns.Lines16 = true;
            CpuDwConvSmallMap.PixelLimit = Math.Max(limit, h * w);
            Assert.That(sizes.Count(s => TakesLines(h, w, s.Item1, s.Item2)), Is.EqualTo(taken),
                "branches that take the line kernels");
            CpuDwConvSmallMapTests.CheckAgainstReference(n, c, h, w, sizes, density);
        }
        finally
        {
            CpuDwConvColumns.Enabled = was;
            CpuDwConvColumns.Lines16 = was16;
            CpuDwConvSmallMap.PixelLimit = limit;
        }
    }

    [Test]
    public void NanoStagesTakeTheLineKernels()
    {
        RequirePath();
        Assert.That(CpuDwConvSmallMap.Applies(8, 8) && CpuDwConvSmallMap.Applies(4, 4), Is.True);
        Assert.That(TakesLines(8, 8, 15, 3) && TakesLines(8, 8, 3, 15), Is.True, "8x8, 15x3 and 3x15");
        Assert.That(TakesLines(4, 4, 9, 3) && TakesLines(4, 4, 3, 9), Is.True, "4x4, 9x3 and 3x9");
        Assert.That(TakesLines(4, 4, 7, 3) && TakesLines(4, 4, 3, 7), Is.True, "4x4, 7x3 and 3x7");
        Assert.That(TakesLines(8, 8, 3, 3) && TakesLines(4, 4, 3, 3), Is.True, "3x3 on 8x8 and 4x4");
        Assert.That(TakesLines(8, 8, 5, 5) || TakesLines(7, 7, 13, 3), Is.False, "5x5 on 8x8, 13x3 on 7x7");
    }

    [TestCase(8, 8, 15, 31, 0.6)]
    [TestCase(4, 4, 9, 62, 0.6)]
    [TestCase(4, 4, 7, 21, 1.0)]
    [TestCase(16, 16, 31, 31, 0.6)]
    public void LineKernelsAgreeWithGeneralKernels(int h, int w, int m, int c, double density)
    {
        RequirePath();
        int seed = TestRandom.NewSeed();
        var p = new CpuDwConvSmallMapTests.Problem(new Random(seed), 9, c, h, w, [(m, 3), (3, m), (3, 3)], density);
        bool was = CpuDwConvColumns.Enabled;
        try
        {
            CpuDwConvColumns.Enabled = false;
            var general = p.Run();
            CpuDwConvColumns.Enabled = true;
            var lines = p.Run();
            var refs = p.References();
            for (int b = 0; b < p.Branches.Count; b++)
            {
                Close(lines.Ys[b], general.Ys[b], refs.YAbs[b], $"forward branch {b}", seed);
                Close(lines.Dws[b], general.Dws[b], refs.DwAbs[b], $"masked weight gradient branch {b}", seed);
                Close(lines.DenseDws[b], general.DenseDws[b], refs.DwAbs[b], $"dense weight gradient branch {b}", seed);
            }
            Close(lines.Dx, general.Dx, refs.DxAbs, "input gradient", seed);
        }
        finally
        {
            CpuDwConvColumns.Enabled = was;
        }
    }

    [TestCase(8, 8, 15, 31)]
    [TestCase(4, 4, 9, 62)]
    [TestCase(16, 16, 31, 31)]
    public void RepeatsAreBitIdenticalAtOneAndTwoThreads(int h, int w, int m, int c)
    {
        RequirePath();
        int seed = TestRandom.NewSeed();
        var p = new CpuDwConvSmallMapTests.Problem(new Random(seed), 37, c, h, w, [(m, 3), (3, m), (3, 3)], 0.6);
        int keep = CpuParallel.Threads;
        bool was = CpuDwConvColumns.Enabled;
        try
        {
            CpuDwConvColumns.Enabled = true;
            var runs = new CpuDwConvSmallMapTests.Outputs[2];
            for (int threads = 1; threads <= 2; threads++)
            {
                CpuParallel.Threads = threads;
                runs[threads - 1] = p.Run();
                p.Run().AssertIdentical(runs[threads - 1], $"{threads} thread(s), repeat (seed {seed})");
            }
            runs[0].AssertIdentical(runs[1], $"1 vs 2 threads (seed {seed})");
        }
        finally
        {
            CpuParallel.Threads = keep;
            CpuDwConvColumns.Enabled = was;
        }
    }

    [Test]
    public void SixteenLongLinesAdmitOnlyWholeLineBranchSets()
    {
        RequirePath();
        static CpuDwConvBranch[] Set(params (int Kh, int Kw)[] sizes) =>
            sizes.Select(s => new CpuDwConvBranch(s.Kh, s.Kw, new float[31 * s.Kh * s.Kw])).ToArray();
        var nano64 = Set((31, 3), (3, 31), (3, 3));
        bool was = CpuDwConvColumns.Enabled, was16 = CpuDwConvColumns.Lines16;
        try
        {
            CpuDwConvColumns.Enabled = true;
            CpuDwConvColumns.Lines16 = true;
            Assert.That(CpuDwConvSmallMap.Applies(16, 16), Is.False, "16x16 by the pixel bound alone");
            Assert.That(CpuDwConvSmallMap.Applies(16, 16, nano64), Is.True, "slak_nano64 s1: 31x3+3x31+3x3 on 16x16");
            Assert.That(CpuDwConvSmallMap.Applies(16, 16, nano64, mergedSum: true), Is.False, "the sum alone");
            Assert.That(CpuDwConvSmallMap.Applies(16, 16, Set((31, 3), (5, 5))), Is.False, "a 5x5 branch");
            Assert.That(CpuDwConvSmallMap.Applies(14, 14, Set((27, 3), (3, 27))), Is.False, "14-long lines");
            Assert.That(CpuDwConvSmallMap.Applies(32, 32, Set((63, 3))), Is.False, "32x32");
            CpuDwConvColumns.Lines16 = false;
            Assert.That(CpuDwConvSmallMap.Applies(16, 16, nano64), Is.False, "SLAK_DWCONV_LINES16=0");
            Assert.That(TakesLines(8, 8, 15, 3), Is.True, "8-long lines stay on with SLAK_DWCONV_LINES16=0");
            CpuDwConvColumns.Lines16 = true;
            CpuDwConvColumns.Enabled = false;
            Assert.That(CpuDwConvSmallMap.Applies(16, 16, nano64), Is.False, "SLAK_DWCONV_COLUMNS=0");
        }
        finally
        {
            CpuDwConvColumns.Enabled = was;
            CpuDwConvColumns.Lines16 = was16;
        }
    }

    // Whether a Kh x Kw branch on an H x W map takes the line kernels (its window clipped as the small-map path
    // clips it).
    private static bool TakesLines(int h, int w, int kh, int kw) =>
        CpuDwConvColumns.Applies(h, w, Math.Min(kh, 2 * h - 1), Math.Min(kw, 2 * w - 1), out _);

    private static void RequirePath()
    {
        if (!Vector512.IsHardwareAccelerated)
            Assert.Ignore("the small-map path and its line kernels need Vector512 (AVX-512)");
    }

    private static void Close(float[] a, float[] b, double[] abs, string what, int seed)
    {
        for (int i = 0; i < a.Length; i++)
        {
            double tol = 1e-6 + 4e-5 * abs[i];
            if (!(Math.Abs(a[i] - b[i]) <= tol))
                Assert.Fail($"{what}: element {i} is {a[i]} with the line kernels, {b[i]} with the general " +
                    $"small-map kernels (tolerance {tol:g3}), seed {seed}");
        }
    }
}
