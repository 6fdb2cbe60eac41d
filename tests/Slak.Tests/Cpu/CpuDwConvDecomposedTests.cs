// Parity of the fused multi-branch depthwise convolution (CpuDwConvDecomposed) with per-branch float64 references:
// separate branch outputs, their sum, the summed input gradient and each branch's weight gradient, with dense
// masks, tap lists and mixed branches.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

public sealed class CpuDwConvDecomposedTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        // N, C, H, W, M, short side, with the N x N branch, density
        yield return new TestCaseData(2, 3, 56, 56, 51, 5, true, 1.0).SetName("stage 1 (C reduced), dense");
        yield return new TestCaseData(2, 3, 28, 28, 49, 5, true, 0.6).SetName("stage 2 (C reduced), density 0.6");
        yield return new TestCaseData(2, 4, 14, 14, 47, 5, true, 0.1).SetName("stage 3 (C reduced), density 0.1");
        yield return new TestCaseData(3, 5, 7, 7, 13, 5, true, 0.6).SetName("stage 4 (C reduced), density 0.6");
        yield return new TestCaseData(9, 5, 7, 7, 13, 5, true, 0.6).SetName("stage 4, batch 9 (interleaved)");
        yield return new TestCaseData(8, 2, 14, 14, 47, 5, true, 1.0).SetName("stage 3, batch 8 (interleaved)");
        // Full groups of 8 images take the 8x8 transpose path of pack/unpack: H*W = 49 leaves a 1-pixel tail,
        // 4x4 = 16 pixels none, 3x5 a 7-pixel tail; batch 17 adds a partial group (scalar path).
        yield return new TestCaseData(8, 6, 7, 7, 13, 5, true, 1.0).SetName("stage 4, batch 8 (transposed pack)");
        yield return new TestCaseData(16, 3, 4, 4, 9, 3, true, 0.6).SetName("4x4 planes, batch 16 (no tail)");
        yield return new TestCaseData(17, 2, 3, 5, 7, 3, false, 1.0).SetName("3x5 planes, batch 17 (tails)");
        yield return new TestCaseData(1, 1, 9, 23, 151, 3, false, 0.6).SetName("C 1, M 151 > H, W, two branches");
        yield return new TestCaseData(2, 2, 1, 1, 31, 7, true, 0.0).SetName("1x1 image, density 0");
        // 64 channels x 485 merged taps: a merged list larger than any other case.
        yield return new TestCaseData(1, 64, 6, 5, 51, 5, true, 1.0).SetName("C 64, M 51 (large merged list)");
    }

    [TestCaseSource(nameof(Cases))]
    public void BranchesMatchReference(int n, int c, int h, int w, int m, int s, bool square, double density)
    {
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        var sizes = square ? new[] { (m, s), (s, m), (s, s) } : new[] { (m, s), (s, m) };
        var x = DwRef.Random(rng, n * c * h * w);
        var branches = new List<CpuDwConvBranch>();
        var masks = new List<float[]>();
        for (int b = 0; b < sizes.Length; b++)
        {
            var (kh, kw) = sizes[b];
            var wt = DwRef.Random(rng, c * kh * kw);
            var mask = DwRef.Mask(rng, wt.Length, density);
            masks.Add(mask);
            // Branch 0 takes the sparse-aware path, the others the dense path with the mask.
            branches.Add(new CpuDwConvBranch(kh, kw, wt, mask, b == 0 ? CpuDwConvTapList.FromMask(c, kh, kw, mask, 1) : null));
        }

        var ys = branches.Select(_ => new Memory<float>(DwRef.Poisoned(x.Length))).ToList();
        var ySum = DwRef.Poisoned(x.Length);
        CpuDwConvDecomposed.Forward(n, c, h, w, branches, x, ys, ySum);
        var sumRef = new double[x.Length];
        var sumAbs = new double[x.Length];
        for (int b = 0; b < branches.Count; b++)
        {
            var br = branches[b];
            var (yRef, yAbs) = DwRef.Forward(n, c, h, w, br.Kh, br.Kw, x, br.Weight.ToArray(), masks[b]);
            DwRef.AssertClose(ys[b].ToArray(), yRef, yAbs, $"forward branch {b} ({br.Kh}x{br.Kw})", seed);
            for (int i = 0; i < x.Length; i++) { sumRef[i] += yRef[i]; sumAbs[i] += yAbs[i]; }
        }
        DwRef.AssertClose(ySum, sumRef, sumAbs, "forward sum", seed);
        var sumOnly = DwRef.Poisoned(x.Length);
        CpuDwConvDecomposed.Forward(n, c, h, w, branches, x, [], sumOnly);
        DwRef.AssertClose(sumOnly, sumRef, sumAbs, "forward sum only", seed);

        var dys = branches.Select(_ => new ReadOnlyMemory<float>(DwRef.Random(rng, x.Length))).ToList();
        var dx = DwRef.Poisoned(x.Length);
        CpuDwConvDecomposed.BackwardData(n, c, h, w, branches, dys, dx);
        var dxRef = new double[x.Length];
        var dxAbs = new double[x.Length];
        for (int b = 0; b < branches.Count; b++)
        {
            var br = branches[b];
            var (r, a) = DwRef.BackwardData(n, c, h, w, br.Kh, br.Kw, dys[b].ToArray(), br.Weight.ToArray(),
                masks[b]);
            for (int i = 0; i < x.Length; i++) { dxRef[i] += r[i]; dxAbs[i] += a[i]; }
        }
        DwRef.AssertClose(dx, dxRef, dxAbs, "backward data (sum of branches)", seed);

        foreach (bool skip in new[] { false, true })
        {
            var dws = branches.Select(br => new Memory<float>(DwRef.Poisoned(c * br.Kh * br.Kw))).ToList();
            CpuDwConvDecomposed.BackwardFilter(n, c, h, w, branches, x, dys, dws, skipMasked: skip);
            for (int b = 0; b < branches.Count; b++)
            {
                var br = branches[b];
                var (r, a) = DwRef.BackwardFilter(n, c, h, w, br.Kh, br.Kw, x, dys[b].ToArray());
                if (skip)
                    for (int i = 0; i < r.Length; i++) r[i] = masks[b][i] != 0 ? r[i] : 0;
                DwRef.AssertClose(dws[b].ToArray(), r, a, $"backward filter branch {b}, skipMasked {skip}", seed);
            }
        }
    }

    [Test]
    public void PartialOutputsMatchFullForward()
    {
        // One branch output without the sum, and the sum with one branch output: each written output must equal
        // the same output of the full forward (same float operations), and unrequested ones stay untouched.
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        const int n = 8, c = 4, h = 7, w = 7;
        var x = DwRef.Random(rng, n * c * h * w);
        var branches = new List<CpuDwConvBranch>
        {
            new(13, 5, DwRef.Random(rng, c * 65)),
            new(5, 13, DwRef.Random(rng, c * 65)),
            new(5, 5, DwRef.Random(rng, c * 25)),
        };
        var full = branches.Select(_ => new Memory<float>(DwRef.Poisoned(x.Length))).ToList();
        var fullSum = DwRef.Poisoned(x.Length);
        CpuDwConvDecomposed.Forward(n, c, h, w, branches, x, full, fullSum);
        for (int only = 0; only < branches.Count; only++)
        {
            var ys = branches.Select((_, b) => b == only ? new Memory<float>(DwRef.Poisoned(x.Length))
                : Memory<float>.Empty).ToList();
            CpuDwConvDecomposed.Forward(n, c, h, w, branches, x, ys, Span<float>.Empty);
            Assert.That(ys[only].ToArray(), Is.EqualTo(full[only].ToArray()),
                $"branch {only} alone differs from the full forward (seed {seed})");
            var sum = DwRef.Poisoned(x.Length);
            CpuDwConvDecomposed.Forward(n, c, h, w, branches, x, ys, sum);
            Assert.That(sum, Is.EqualTo(fullSum), $"sum with branch {only} output differs (seed {seed})");
        }
    }

    [Test]
    public void SumOnlyMergedTapsFollowMaskChanges()
    {
        // The sum alone is one correlation with the union of the branches' taps (CpuDwConvMergedTaps), cached per
        // combination of tap lists: the same lists reuse the merged one, a rebuilt list (mask change) must not.
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        const int n = 2, c = 3, h = 9, w = 6;
        var x = DwRef.Random(rng, n * c * h * w);
        var sizes = new[] { (11, 3), (3, 11), (3, 3) };
        var weights = sizes.Select(s => DwRef.Random(rng, c * s.Item1 * s.Item2)).ToArray();
        foreach (int version in new[] { 1, 2 })
        {
            var masks = sizes.Select(s => DwRef.Mask(rng, c * s.Item1 * s.Item2, 0.5)).ToArray();
            var lists = sizes.Select((s, b) => CpuDwConvTapList.FromMask(c, s.Item1, s.Item2, masks[b], version))
                .ToArray();
            var branches = sizes.Select((s, b) => new CpuDwConvBranch(s.Item1, s.Item2, weights[b], masks[b], lists[b]))
                .ToList();
            var merged = CpuDwConvMergedTaps.For(lists);
            Assert.That(CpuDwConvMergedTaps.For(lists), Is.SameAs(merged), "same tap lists must reuse the merged list");
            Assert.That(merged.Taps.Kh, Is.EqualTo(11));
            Assert.That(merged.Taps.Kw, Is.EqualTo(11));
            var sumRef = new double[x.Length];
            var sumAbs = new double[x.Length];
            for (int b = 0; b < sizes.Length; b++)
            {
                var (r, a) = DwRef.Forward(n, c, h, w, sizes[b].Item1, sizes[b].Item2, x, weights[b], masks[b]);
                for (int i = 0; i < x.Length; i++) { sumRef[i] += r[i]; sumAbs[i] += a[i]; }
            }
            var sum = DwRef.Poisoned(x.Length);
            CpuDwConvDecomposed.Forward(n, c, h, w, branches, x, [], sum);
            DwRef.AssertClose(sum, sumRef, sumAbs, $"merged sum, mask version {version}", seed);
        }
    }

    [Test]
    public void BadBranchArgumentsAreRejected()
    {
        var x = new float[2 * 8 * 8];
        var good = new CpuDwConvBranch(5, 3, new float[2 * 15]);
        var ex = Assert.Throws<ArgumentException>(() => CpuDwConvDecomposed.Forward(1, 2, 8, 8,
            [good, new CpuDwConvBranch(4, 3, new float[24])], x, [], new float[x.Length]));
        Assert.That(ex!.ParamName, Is.EqualTo("branches"));
        Assert.That(ex.Message, Does.Contain("branch 1").And.Contain("Kh=4"));
        ex = Assert.Throws<ArgumentException>(() => CpuDwConvDecomposed.Forward(1, 2, 8, 8, [good], x, [],
            Span<float>.Empty));
        Assert.That(ex!.ParamName, Is.EqualTo("y"));
        ex = Assert.Throws<ArgumentException>(() => CpuDwConvDecomposed.Forward(1, 2, 8, 8, [good], x,
            [new float[3]], Span<float>.Empty));
        Assert.That(ex!.ParamName, Is.EqualTo("y[0]"));
        ex = Assert.Throws<ArgumentException>(() => CpuDwConvDecomposed.BackwardData(1, 2, 8, 8, [good, good],
            [new float[x.Length]], new float[x.Length]));
        Assert.That(ex!.ParamName, Is.EqualTo("dy"));
        ex = Assert.Throws<ArgumentException>(() => CpuDwConvDecomposed.BackwardFilter(1, 2, 8, 8, [good], x,
            [new float[x.Length]], [new float[29]], false));
        Assert.That(ex!.ParamName, Is.EqualTo("dw"));
        ex = Assert.Throws<ArgumentException>(() => CpuDwConvDecomposed.Forward(1, 2, 8, 8,
            [good with { Taps = CpuDwConvTapList.Dense(2, 3, 5) }], x, [], new float[x.Length]));
        Assert.That(ex!.ParamName, Is.EqualTo("branches"));
    }
}
