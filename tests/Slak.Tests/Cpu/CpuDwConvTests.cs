// Parity of the CPU depthwise engine with one branch (CpuDwConvDecomposed's one-branch case, what a single depthwise
// convolution runs: dense with mask and sparse-aware with a tap list, all three passes) with the float64 reference on
// SLaK stage shapes (reduced channels) and on breakers, plus argument validation and the tap list's staleness check.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

public sealed class CpuDwConvTests
{
    // ---- the engine's one-branch calls ----

    private static void Forward(CpuDwConvShape s, float[] x, float[] w, float[]? mask, CpuDwConvTapList? taps,
        float[] y) =>
        CpuDwConvDecomposed.Forward(s.N, s.C, s.H, s.W, [new CpuDwConvBranch(s.Kh, s.Kw, w, mask, taps)], x, [y],
            Span<float>.Empty);

    private static void BackwardData(CpuDwConvShape s, float[] dy, float[] w, float[]? mask, CpuDwConvTapList? taps,
        float[] dx) =>
        CpuDwConvDecomposed.BackwardData(s.N, s.C, s.H, s.W, [new CpuDwConvBranch(s.Kh, s.Kw, w, mask, taps)], [dy], dx);

    // The weight gradient reads no weight: dw stands in for it (as in the CPU backend). With skipMasked, the taps
    // outside the mask (or the tap list) are written as 0.
    private static void BackwardFilter(CpuDwConvShape s, float[] x, float[] dy, float[] dw, float[]? mask,
        CpuDwConvTapList? taps, bool skipMasked) =>
        CpuDwConvDecomposed.BackwardFilter(s.N, s.C, s.H, s.W, [new CpuDwConvBranch(s.Kh, s.Kw, dw, mask, taps)], x,
            [dy], [dw], skipMasked);

    private static readonly int[][] Shapes =
    [
        // N, C, H, W, Kh, Kw: SLaK-T stages (channels reduced) ...
        [1, 3, 56, 56, 51, 5], [1, 3, 56, 56, 5, 51], [2, 2, 56, 56, 5, 5],
        [1, 3, 28, 28, 49, 5], [2, 3, 28, 28, 5, 49],
        [2, 3, 14, 14, 47, 5], [2, 3, 14, 14, 5, 47],
        [2, 4, 7, 7, 13, 5], [2, 4, 7, 7, 5, 13],
        // ... and breakers: C = 1 with H != W, H = W = 1, kernels larger than the image, M up to 151,
        // short sides 3 and 7, widths needing several register segments and partial vectors.
        [1, 1, 9, 20, 7, 3], [3, 2, 1, 1, 5, 5], [1, 2, 6, 10, 151, 5], [1, 2, 20, 17, 5, 151],
        [1, 2, 30, 11, 101, 3], [1, 1, 3, 100, 7, 101], [1, 2, 5, 130, 3, 31], [2, 1, 11, 3, 1, 1],
        [1, 3, 10, 71, 7, 61],
        // Batches of 8 and more take the batch-interleaved layout (8 images in the lanes, a partial last group).
        [9, 2, 14, 14, 47, 5], [8, 3, 7, 7, 5, 13], [10, 1, 6, 10, 151, 5], [8, 2, 1, 1, 5, 5],
        [9, 1, 20, 70, 7, 61], [8, 1, 28, 28, 5, 49],
    ];

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var s in Shapes)
            foreach (double d in new[] { 1.0, 0.6, 0.1, 0.0 })
                yield return new TestCaseData(s[0], s[1], s[2], s[3], s[4], s[5], d)
                    .SetName($"N{s[0]} C{s[1]} {s[2]}x{s[3]} k{s[4]}x{s[5]} density {d}");
    }

    [TestCaseSource(nameof(Cases))]
    public void AllPassesMatchReference(int n, int c, int h, int w, int kh, int kw, double density)
    {
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        var shape = new CpuDwConvShape(n, c, h, w, kh, kw);
        var x = DwRef.Random(rng, n * c * h * w);
        var dy = DwRef.Random(rng, x.Length);
        var wt = DwRef.Random(rng, c * kh * kw);
        var mask = DwRef.Mask(rng, wt.Length, density);
        var taps = CpuDwConvTapList.FromMask(c, kh, kw, mask, 7);
        Assert.That(taps.Version, Is.EqualTo(7));

        var (yRef, yAbs) = DwRef.Forward(n, c, h, w, kh, kw, x, wt, mask);
        var y = DwRef.Poisoned(x.Length);
        Forward(shape, x, wt, mask, null, y);
        DwRef.AssertClose(y, yRef, yAbs, "forward (dense, masked)", seed);
        var ySparse = DwRef.Poisoned(x.Length);
        Forward(shape, x, wt, null, taps, ySparse);
        DwRef.AssertClose(ySparse, yRef, yAbs, "forward (sparse)", seed);
        DwRef.AssertClose(ySparse, Array.ConvertAll(y, v => (double)v), yAbs, "forward sparse vs dense", seed);

        var (dxRef, dxAbs) = DwRef.BackwardData(n, c, h, w, kh, kw, dy, wt, mask);
        var dx = DwRef.Poisoned(x.Length);
        BackwardData(shape, dy, wt, mask, null, dx);
        DwRef.AssertClose(dx, dxRef, dxAbs, "backward data (dense, masked)", seed);
        var dxSparse = DwRef.Poisoned(x.Length);
        BackwardData(shape, dy, wt, null, taps, dxSparse);
        DwRef.AssertClose(dxSparse, dxRef, dxAbs, "backward data (sparse)", seed);

        var (dwRef, dwAbs) = DwRef.BackwardFilter(n, c, h, w, kh, kw, x, dy);
        var dw = DwRef.Poisoned(wt.Length);
        BackwardFilter(shape, x, dy, dw, mask, null, skipMasked: false);
        DwRef.AssertClose(dw, dwRef, dwAbs, "backward filter (dense)", seed);

        var dwMaskedRef = new double[dwRef.Length];
        for (int i = 0; i < dwRef.Length; i++) dwMaskedRef[i] = mask[i] != 0 ? dwRef[i] : 0;
        var dwSkip = DwRef.Poisoned(wt.Length);
        BackwardFilter(shape, x, dy, dwSkip, mask, null, skipMasked: true);
        DwRef.AssertClose(dwSkip, dwMaskedRef, dwAbs, "backward filter (skip masked)", seed);
        var dwSparse = DwRef.Poisoned(wt.Length);
        BackwardFilter(shape, x, dy, dwSparse, null, taps, skipMasked: true);
        DwRef.AssertClose(dwSparse, dwMaskedRef, dwAbs, "backward filter (tap list)", seed);
        for (int i = 0; i < mask.Length; i++)
            if (mask[i] == 0)
                Assert.That(dwSparse[i], Is.EqualTo(0f), $"masked tap {i} must be exactly 0, seed {seed}");
    }

    [Test]
    public void DenseForwardWithoutMaskMatchesReference()
    {
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        var shape = new CpuDwConvShape(2, 3, 12, 19, 9, 3);
        var x = DwRef.Random(rng, (int)shape.ActivationLength);
        var wt = DwRef.Random(rng, (int)shape.WeightLength);
        var (yRef, yAbs) = DwRef.Forward(2, 3, 12, 19, 9, 3, x, wt, null);
        var y = DwRef.Poisoned(x.Length);
        Forward(shape, x, wt, null, null, y);
        DwRef.AssertClose(y, yRef, yAbs, "forward (no mask)", seed);
        var dx = DwRef.Poisoned(x.Length);
        BackwardData(shape, x, wt, null, null, dx);
        var (dxRef, dxAbs) = DwRef.BackwardData(2, 3, 12, 19, 9, 3, x, wt, null);
        DwRef.AssertClose(dx, dxRef, dxAbs, "backward data (no mask)", seed);
    }

    [Test]
    public void SingleThreadGivesTheSameResult()
    {
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        var shape = new CpuDwConvShape(2, 5, 16, 16, 15, 5);
        var x = DwRef.Random(rng, (int)shape.ActivationLength);
        var dy = DwRef.Random(rng, x.Length);
        var wt = DwRef.Random(rng, (int)shape.WeightLength);
        var y1 = new float[x.Length];
        var dw1 = new float[wt.Length];
        int keep = CpuParallel.Threads;
        try
        {
            CpuParallel.Threads = 1;
            Forward(shape, x, wt, null, null, y1);
            BackwardFilter(shape, x, dy, dw1, null, null, false);
        }
        finally
        {
            CpuParallel.Threads = keep;
        }
        var y2 = DwRef.Poisoned(x.Length);
        var dw2 = DwRef.Poisoned(wt.Length);
        Forward(shape, x, wt, null, null, y2);
        BackwardFilter(shape, x, dy, dw2, null, null, false);
        Assert.That(y2, Is.EqualTo(y1), $"forward, threads {keep} vs 1, seed {seed}");
        Assert.That(dw2, Is.EqualTo(dw1), $"weight gradient, threads {keep} vs 1, seed {seed}");
    }

    [Test]
    public void BadArgumentsAreRejectedWithTheirNames()
    {
        // Branch errors (sizes, weight, mask, tap list) name the branch list and say which branch and value.
        var good = new CpuDwConvShape(1, 2, 4, 4, 3, 3);
        var x = new float[32];
        var wt = new float[18];
        var y = new float[32];
        void Branch(Action call, params string[] says)
        {
            var e = Assert.Throws<ArgumentException>(() => call());
            Assert.That(e!.ParamName, Is.EqualTo("branches"), e.Message);
            foreach (var text in says) Assert.That(e.Message, Does.Contain(text));
        }
        Branch(() => Forward(good with { Kh = 4 }, x, new float[24], null, null, y), "branch 0", "Kh=4");
        Branch(() => Forward(good with { Kw = 2 }, x, new float[12], null, null, y), "Kw=2");
        Branch(() => Forward(good with { H = 0 }, x, wt, null, null, y), "H=0");
        Branch(() => Forward(good, x, new float[17], null, null, y), "17");
        Branch(() => Forward(good, x, wt, new float[5], null, y), "mask", "5");
        Branch(() => Forward(good, x, wt, null, CpuDwConvTapList.Dense(2, 5, 3), y), "tap list", "Kh=5");
        var ex = Assert.Throws<ArgumentException>(() => Forward(good, new float[31], wt, null, null, y));
        Assert.That(ex!.ParamName, Is.EqualTo("x"));
        Assert.That(ex.Message, Does.Contain("31"));
        ex = Assert.Throws<ArgumentException>(() => Forward(good, x, wt, null, null, new float[33]));
        Assert.That(ex!.ParamName, Is.EqualTo("y[0]"));
        ex = Assert.Throws<ArgumentException>(() => BackwardData(good, x, wt, null, null, new float[3]));
        Assert.That(ex!.ParamName, Is.EqualTo("dx"));
        ex = Assert.Throws<ArgumentException>(() => BackwardFilter(good, x, new float[2], wt, null, null, false));
        Assert.That(ex!.ParamName, Is.EqualTo("dy[0]"));
        ex = Assert.Throws<ArgumentException>(() => CpuDwConvTapList.FromMask(2, 3, 3, new float[17], 0));
        Assert.That(ex!.ParamName, Is.EqualTo("mask"));
        ex = Assert.Throws<ArgumentException>(() => CpuDwConvTapList.FromMask(2, 3, 6, new float[36], 0));
        Assert.That(ex!.ParamName, Is.EqualTo("kw"));
    }

    [Test]
    public void TapListTracksMaskVersionAndCountsLiveTaps()
    {
        var mask = new float[] { 1, 0, 1, 0, 0, 0, 1, 1, 1, /* channel 1 */ 0, 0, 0, 0, 0, 0, 0, 0, 0 };
        var taps = CpuDwConvTapList.FromMask(2, 3, 3, mask, 41);
        Assert.That(taps.Count, Is.EqualTo(5));
        Assert.That(taps.Density, Is.EqualTo(5.0 / 18).Within(1e-12));
        Assert.That(taps.IsStale(41, 2, 3, 3), Is.False);
        Assert.That(taps.IsStale(42, 2, 3, 3), Is.True);
        Assert.That(taps.IsStale(41, 2, 5, 3), Is.True);
        Assert.That(CpuDwConvTapList.Dense(2, 3, 3).Count, Is.EqualTo(18));
    }
}
