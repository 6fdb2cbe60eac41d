// The small-map path of the decomposed depthwise convolution (CpuDwConvSmallMap: channels as the vector axis, maps of
// up to MaxPixels pixels) against the float64 references of DwRef at every map size the path takes (1x1 to 8x8 and
// non-square maps; 16x16 with the bound raised): forward per branch, their sum with and without branch outputs, the summed input gradient, and the
// weight gradient dense and masked (masked taps exactly 0); the kernels of both nano presets and odd ones (13x5,
// 5x13, 5x5, 3x3 alone, 51x5 on a 2x2 map, a 1-wide kernel), densities 1 / 0.6 / 0, channel counts that are not a
// multiple of 8 and batches that are not a multiple of the image-group count; every output poisoned (NaN) first.
// Plus: bit-for-bit repeats at 1 and 2 threads and equal bits between them, and agreement with the plane engine (the path switched off).
using System.Runtime.Intrinsics;
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[NonParallelizable] // switches CpuDwConvSmallMap.Enabled and CpuParallel.Threads for the duration of a test
public sealed class CpuDwConvSmallMapTests
{
    private static readonly (int, int)[] NanoS1 = [(15, 3), (3, 15), (3, 3)];
    private static readonly (int, int)[] Nano64S1 = [(31, 3), (3, 31), (3, 3)];

    private static IEnumerable<TestCaseData> Cases()
    {
        // N, C, H, W, branch kernel sizes (Kh, Kw), density
        yield return Case("slak_nano stage 1: 8x8, 15x3+3x15+3x3", 5, 31, 8, 8, NanoS1, 0.6);
        yield return Case("slak_nano stage 2: 4x4, 9x3+3x9+3x3", 3, 62, 4, 4, [(9, 3), (3, 9), (3, 3)], 0.6);
        yield return Case("slak_nano stage 3: 2x2, 5x3+3x5+3x3, dense", 5, 17, 2, 2, [(5, 3), (3, 5), (3, 3)], 1.0);
        yield return Case("slak_nano stage 4: 1x1, density 0.6", 3, 9, 1, 1, [(5, 3), (3, 5), (3, 3)], 0.6);
        yield return Case("slak_nano64 stage 1: 16x16, 31x3+3x31+3x3", 3, 13, 16, 16, Nano64S1, 0.6);
        yield return Case("slak_nano64 stage 2: 8x8, 15x3+3x15+3x3, dense", 3, 20, 8, 8, NanoS1, 1.0);
        yield return Case("slak_nano64 stage 3: 4x4, 7x3+3x7+3x3, density 0", 3, 12, 4, 4, [(7, 3), (3, 7), (3, 3)], 0.0);
        yield return Case("7x7, 13x5+5x13+5x5 (SLaK-T stage 4)", 3, 11, 7, 7, [(13, 5), (5, 13), (5, 5)], 0.6);
        yield return Case("4x4, 3x3 alone", 5, 8, 4, 4, [(3, 3)], 1.0);
        yield return Case("2x2, 51x5+5x51+5x5", 3, 9, 2, 2, [(51, 5), (5, 51), (5, 5)], 0.6);
        yield return Case("3x5 map, 7x3+3x7", 5, 10, 3, 5, [(7, 3), (3, 7)], 0.6);
        yield return Case("1x9 map, 1x5+9x3", 3, 7, 1, 9, [(1, 5), (9, 3)], 1.0);
        yield return Case("16x16, 5x5, density 0", 1, 3, 16, 16, [(5, 5)], 0.0);
    }

    private static TestCaseData Case(string name, int n, int c, int h, int w, (int, int)[] sizes, double density) =>
        new TestCaseData(n, c, h, w, sizes, density).SetName(name);

    [TestCaseSource(nameof(Cases))]
    public void SmallMapPathMatchesReference(int n, int c, int h, int w, (int, int)[] sizes, double density)
    {
        RequirePath();
        // Maps past MaxPixels (16x16) run with the bound raised: the kernels are general, the bound is a speed choice.
        int limit = CpuDwConvSmallMap.PixelLimit;
        try
        {
            CpuDwConvSmallMap.PixelLimit = Math.Max(limit, h * w);
            Assert.That(CpuDwConvSmallMap.Applies(h, w), Is.True, $"{h}x{w} should take the small-map path");
            CheckAgainstReference(n, c, h, w, sizes, density);
        }
        finally
        {
            CpuDwConvSmallMap.PixelLimit = limit;
        }
    }

    [Test]
    public void BoundsFollowTheMeasurements()
    {
        RequirePath();
        Assert.That(CpuDwConvSmallMap.Applies(8, 8), Is.True, "8x8 (slak_nano stage 1, slak_nano64 stage 2)");
        Assert.That(CpuDwConvSmallMap.Applies(1, 1), Is.True, "1x1");
        Assert.That(CpuDwConvSmallMap.Applies(16, 16), Is.False, "16x16 stays on the plane engine");
        Assert.That(CpuDwConvSmallMap.Applies(14, 14), Is.False, "14x14 stays on the plane engine");
        Assert.That(CpuDwConvSmallMap.Applies(2, 2, mergedSum: true), Is.True, "the sum alone on 2x2");
        Assert.That(CpuDwConvSmallMap.Applies(4, 4, mergedSum: true), Is.False, "the sum alone on 4x4: merged plane pass");
    }

    [TestCaseSource(nameof(Cases))]
    public void PlaneEngineOnSmallMapsMatchesReference(int n, int c, int h, int w, (int, int)[] sizes, double density)
    {
        bool was = CpuDwConvSmallMap.Enabled;
        try
        {
            CpuDwConvSmallMap.Enabled = false;
            CheckAgainstReference(n, c, h, w, sizes, density);
        }
        finally
        {
            CpuDwConvSmallMap.Enabled = was;
        }
    }

    [Test]
    public void RepeatsAreBitIdenticalAtOneAndTwoThreads()
    {
        RequirePath();
        int seed = TestRandom.NewSeed();
        var p = new Problem(new Random(seed), 7, 31, 8, 8, NanoS1, 0.6);
        int keep = CpuParallel.Threads;
        try
        {
            var runs = new Dictionary<int, Outputs>();
            foreach (int threads in new[] { 1, 2 })
            {
                CpuParallel.Threads = threads;
                var first = p.Run();
                var again = p.Run();
                first.AssertIdentical(again, $"{threads} thread(s), repeat (seed {seed})");
                runs[threads] = first;
            }
            // Forward and input gradient are split by image, the weight gradient by channel: the same bits at any
            // thread count.
            runs[1].AssertIdentical(runs[2], $"1 vs 2 threads (seed {seed})");
        }
        finally
        {
            CpuParallel.Threads = keep;
        }
    }

    [TestCase(8, 8, 15, 31, 0.6)]
    [TestCase(4, 4, 9, 62, 0.6)]
    [TestCase(2, 2, 5, 124, 0.6)]
    [TestCase(1, 1, 5, 249, 0.6)]
    [TestCase(16, 16, 31, 31, 1.0)]
    public void SmallMapPathAgreesWithPlaneEngine(int h, int w, int m, int c, double density)
    {
        RequirePath();
        int seed = TestRandom.NewSeed();
        var p = new Problem(new Random(seed), 9, c, h, w, [(m, 3), (3, m), (3, 3)], density);
        bool was = CpuDwConvSmallMap.Enabled;
        int limit = CpuDwConvSmallMap.PixelLimit;
        try
        {
            CpuDwConvSmallMap.PixelLimit = Math.Max(limit, h * w);
            CpuDwConvSmallMap.Enabled = false;
            var plane = p.Run();
            CpuDwConvSmallMap.Enabled = true;
            var small = p.Run();
            var refs = p.References();
            for (int b = 0; b < p.Branches.Count; b++)
            {
                Close(small.Ys[b], plane.Ys[b], refs.YAbs[b], $"forward branch {b}", seed);
                Close(small.Dws[b], plane.Dws[b], refs.DwAbs[b], $"weight gradient branch {b}", seed);
            }
            Close(small.Dx, plane.Dx, refs.DxAbs, "input gradient", seed);
        }
        finally
        {
            CpuDwConvSmallMap.Enabled = was;
            CpuDwConvSmallMap.PixelLimit = limit;
        }
    }

    // The path runs on Vector512 only; elsewhere the plane engine takes these maps (tested above).
    private static void RequirePath()
    {
        if (!Vector512.IsHardwareAccelerated)
            Assert.Ignore("the small-map path needs Vector512 (AVX-512); this machine runs the plane engine");
    }

    private static void Close(float[] a, float[] b, double[] abs, string what, int seed)
    {
        for (int i = 0; i < a.Length; i++)
        {
            double tol = 1e-6 + 4e-5 * abs[i];
            if (!(Math.Abs(a[i] - b[i]) <= tol))
                Assert.Fail($"{what}: element {i} is {a[i]} on the small-map path, {b[i]} on the plane engine " +
                    $"(tolerance {tol:g3}), seed {seed}");
        }
    }

    internal static void CheckAgainstReference(int n, int c, int h, int w, (int, int)[] sizes, double density)
    {
        int seed = TestRandom.NewSeed();
        var p = new Problem(new Random(seed), n, c, h, w, sizes, density);
        var got = p.Run();
        var refs = p.References();
        var x = p.X;
        var sumRef = new double[x.Length];
        var sumAbs = new double[x.Length];
        for (int b = 0; b < p.Branches.Count; b++)
        {
            DwRef.AssertClose(got.Ys[b], refs.Y[b], refs.YAbs[b], $"forward branch {b} ({sizes[b]})", seed);
            for (int i = 0; i < x.Length; i++) { sumRef[i] += refs.Y[b][i]; sumAbs[i] += refs.YAbs[b][i]; }
        }
        DwRef.AssertClose(got.Sum, sumRef, sumAbs, "forward sum beside the branch outputs", seed);
        var sumOnly = DwRef.Poisoned(x.Length);
        CpuDwConvDecomposed.Forward(n, c, h, w, p.Branches, x, [], sumOnly);
        DwRef.AssertClose(sumOnly, sumRef, sumAbs, "forward sum only", seed);
        DwRef.AssertClose(got.Dx, refs.Dx, refs.DxAbs, "input gradient (sum of branches)", seed);
        for (int b = 0; b < p.Branches.Count; b++)
        {
            DwRef.AssertClose(got.DenseDws[b], refs.Dw[b], refs.DwAbs[b], $"dense weight gradient branch {b}", seed);
            var masked = (double[])refs.Dw[b].Clone();
            for (int i = 0; i < masked.Length; i++)
            {
                if (p.Masks[b][i] != 0) continue;
                masked[i] = 0;
                if (got.Dws[b][i] != 0f)
                    Assert.Fail($"masked weight gradient branch {b}: tap {i} is {got.Dws[b][i]}, not 0 (seed {seed})");
            }
            DwRef.AssertClose(got.Dws[b], masked, refs.DwAbs[b], $"masked weight gradient branch {b}", seed);
        }
    }

    internal sealed record Outputs(float[][] Ys, float[] Sum, float[] Dx, float[][] Dws, float[][] DenseDws)
    {
        public void AssertIdentical(Outputs other, string what)
        {
            for (int b = 0; b < Ys.Length; b++)
            {
                Assert.That(other.Ys[b], Is.EqualTo(Ys[b]), $"forward branch {b}: {what}");
                Assert.That(other.Dws[b], Is.EqualTo(Dws[b]), $"masked weight gradient branch {b}: {what}");
                Assert.That(other.DenseDws[b], Is.EqualTo(DenseDws[b]), $"dense weight gradient branch {b}: {what}");
            }
            Assert.That(other.Sum, Is.EqualTo(Sum), $"forward sum: {what}");
            Assert.That(other.Dx, Is.EqualTo(Dx), $"input gradient: {what}");
        }
    }

    internal sealed record References(double[][] Y, double[][] YAbs, double[] Dx, double[] DxAbs, double[][] Dw,
        double[][] DwAbs);

    /// <summary>Random input, weights, masks (branch 0 through a tap list, the others dense with the mask) and
    /// output gradients.</summary>
    internal sealed class Problem
    {
        private readonly int _n, _c, _h, _w;

        public Problem(Random rng, int n, int c, int h, int w, (int Kh, int Kw)[] sizes, double density)
        {
            (_n, _c, _h, _w) = (n, c, h, w);
            X = DwRef.Random(rng, n * c * h * w);
            foreach (var (kh, kw) in sizes)
            {
                var wt = DwRef.Random(rng, c * kh * kw);
                var mask = DwRef.Mask(rng, wt.Length, density);
                Masks.Add(mask);
                Branches.Add(new CpuDwConvBranch(kh, kw, wt, mask,
                    Branches.Count == 0 ? CpuDwConvTapList.FromMask(c, kh, kw, mask, 1) : null));
                Dys.Add(DwRef.Random(rng, X.Length));
            }
        }

        public float[] X { get; }
        public List<CpuDwConvBranch> Branches { get; } = [];
        public List<float[]> Masks { get; } = [];
        public List<float[]> Dys { get; } = [];

        public Outputs Run()
        {
            int len = X.Length;
            var ys = Branches.Select(_ => DwRef.Poisoned(len)).ToArray();
            var sum = DwRef.Poisoned(len);
            CpuDwConvDecomposed.Forward(_n, _c, _h, _w, Branches, X, ys.Select(y => new Memory<float>(y)).ToList(), sum);
            var dys = Dys.Select(d => new ReadOnlyMemory<float>(d)).ToList();
            var dx = DwRef.Poisoned(len);
            CpuDwConvDecomposed.BackwardData(_n, _c, _h, _w, Branches, dys, dx);
            var dws = new float[2][][];
            for (int skip = 0; skip < 2; skip++)
            {
                dws[skip] = Branches.Select(br => DwRef.Poisoned(_c * br.Kh * br.Kw)).ToArray();
                CpuDwConvDecomposed.BackwardFilter(_n, _c, _h, _w, Branches, X, dys,
                    dws[skip].Select(d => new Memory<float>(d)).ToList(), skipMasked: skip == 1);
            }
            return new Outputs(ys, sum, dx, dws[1], dws[0]);
        }

        public References References()
        {
            int nb = Branches.Count;
            var y = new double[nb][];
            var yAbs = new double[nb][];
            var dw = new double[nb][];
            var dwAbs = new double[nb][];
            var dx = new double[X.Length];
            var dxAbs = new double[X.Length];
            for (int b = 0; b < nb; b++)
            {
                var br = Branches[b];
                var wt = br.Weight.ToArray();
                (y[b], yAbs[b]) = DwRef.Forward(_n, _c, _h, _w, br.Kh, br.Kw, X, wt, Masks[b]);
                var (r, a) = DwRef.BackwardData(_n, _c, _h, _w, br.Kh, br.Kw, Dys[b], wt, Masks[b]);
                for (int i = 0; i < dx.Length; i++) { dx[i] += r[i]; dxAbs[i] += a[i]; }
                (dw[b], dwAbs[b]) = DwRef.BackwardFilter(_n, _c, _h, _w, br.Kh, br.Kw, X, Dys[b]);
            }
            return new References(y, yAbs, dx, dxAbs, dw, dwAbs);
        }
    }
}
