// The 16 x 16 transposing layout moves of the small-map depthwise path (CpuDwConvMoves16): each move against a
// scalar reference (every channel count 1..16, the maps it takes with and without a zero border, destination
// poisoned first and its border checked untouched), and the whole passes on the nano presets' stages 1-2 (forward
// with branch outputs and sum, input gradient, weight gradients dense and masked) against the float64 references of
// DwRef, bit for bit equal to the previous moves (SLAK_DWCONV_MOVES16=0) and to themselves on repeat at 1, 2 and 3
// threads, with the odd channel counts of the presets (31, 62, 124, 249: a last column of 15, 14, 12 or 9
// channels).
using System.Runtime.Intrinsics;
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[NonParallelizable] // switches CpuDwConvMoves16.Enabled, CpuDwConvSmallMap.PixelLimit and CpuParallel.Threads
public sealed unsafe class CpuDwConvMoves16Tests
{
    [TestCase(4, 4, 0)]
    [TestCase(4, 4, 1)]
    [TestCase(8, 8, 0)]
    [TestCase(8, 8, 1)]
    [TestCase(8, 8, 2)]
    [TestCase(16, 16, 0)]
    [TestCase(16, 16, 1)]
    [TestCase(16, 8, 1)]
    [TestCase(2, 8, 1)]
    public void ToColumnMatchesScalarMove(int h, int w, int border)
    {
        RequirePath();
        Assert.That(CpuDwConvMoves16.Applies(h, w), Is.True, $"{h}x{w} takes the moves");
        var rng = TestRandom.ForCurrentTest();
        int hw = h * w, rowStride = (w + 2 * border) * 16, colLen = (h + 2 * border) * rowStride;
        for (int channels = 1; channels <= 16; channels++)
        {
            var planes = new float[channels * hw];
            for (int i = 0; i < planes.Length; i++) planes[i] = (float)rng.Uniform(-1, 1);
            var dst = new float[colLen];
            Array.Fill(dst, float.NaN);
            int origin = border * rowStride + border * 16;
            fixed (float* ps = planes)
            fixed (float* pd = dst)
                CpuDwConvMoves16.ToColumn(ps, channels, h, w, pd + origin, rowStride);
            for (int r = 0; r < h + 2 * border; r++)
                for (int q = 0; q < w + 2 * border; q++)
                    for (int k = 0; k < 16; k++)
                    {
                        float got = dst[r * rowStride + q * 16 + k];
                        int mr = r - border, mq = q - border;
                        bool inside = mr >= 0 && mr < h && mq >= 0 && mq < w;
                        if (!inside)
                        {
                            Assert.That(float.IsNaN(got), rng.Ctx($"{h}x{w}, border {border}, {channels} channels: " +
                                $"border cell ({r}, {q}, {k}) was written"));
                            continue;
                        }
                        float want = k < channels ? planes[k * hw + mr * w + mq] : 0f;
                        Assert.That(got, Is.EqualTo(want), rng.Ctx($"{h}x{w}, border {border}, {channels} " +
                            $"channels: pixel ({mr}, {mq}) channel {k}"));
                    }
        }
    }

    [TestCase(16)]
    [TestCase(64)]
    [TestCase(256)]
    public void FromColumnMatchesScalarMove(int hw)
    {
        RequirePath();
        var rng = TestRandom.ForCurrentTest();
        for (int channels = 1; channels <= 16; channels++)
        {
            var src = new float[hw * 16];
            for (int i = 0; i < src.Length; i++) src[i] = (float)rng.Uniform(-1, 1);
            // One plane more than the channels: it must stay poisoned.
            var planes = new float[(channels + 1) * hw];
            Array.Fill(planes, float.NaN);
            fixed (float* ps = src)
            fixed (float* pp = planes)
                CpuDwConvMoves16.FromColumn(ps, channels, hw, pp);
            for (int k = 0; k <= channels; k++)
                for (int p = 0; p < hw; p++)
                {
                    float got = planes[k * hw + p];
                    if (k == channels)
                        Assert.That(float.IsNaN(got), rng.Ctx($"{hw} pixels, {channels} channels: plane {k} written"));
                    else
                        Assert.That(got, Is.EqualTo(src[p * 16 + k]),
                            rng.Ctx($"{hw} pixels, {channels} channels: channel {k}, pixel {p}"));
                }
        }
    }

    private static IEnumerable<TestCaseData> Stages()
    {
        // N, C, H = W, kernel M (branches M x 3, 3 x M, 3 x 3)
        yield return new TestCaseData(5, 31, 8, 15).SetName("slak_nano s1: 8x8, C 31, 15x3+3x15+3x3");
        yield return new TestCaseData(5, 62, 4, 9).SetName("slak_nano s2: 4x4, C 62, 9x3+3x9+3x3");
        yield return new TestCaseData(3, 31, 16, 31).SetName("slak_nano64 s1: 16x16, C 31, 31x3+3x31+3x3");
        yield return new TestCaseData(3, 62, 8, 15).SetName("slak_nano64 s2: 8x8, C 62, 15x3+3x15+3x3");
        yield return new TestCaseData(3, 124, 4, 7).SetName("slak_nano64 s3: 4x4, C 124, 7x3+3x7+3x3");
        yield return new TestCaseData(2, 249, 4, 7).SetName("4x4, C 249, 7x3+3x7+3x3");
    }

    [TestCaseSource(nameof(Stages))]
    public void PassesMatchReferenceAndPreviousMovesBitForBit(int n, int c, int hw, int m)
    {
        RequirePath();
        var rng = TestRandom.ForCurrentTest();
        (int, int)[] sizes = [(m, 3), (3, m), (3, 3)];
        var p = new CpuDwConvSmallMapTests.Problem(new Random(rng.Seed), n, c, hw, hw, sizes, 0.6);
        bool was = CpuDwConvMoves16.Enabled;
        int keep = CpuParallel.Threads;
        try
        {
            CpuDwConvMoves16.Enabled = true;
            CheckReference(p, n, c, hw, sizes, rng);
            for (int threads = 1; threads <= 3; threads++)
            {
                CpuParallel.Threads = threads;
                CpuDwConvMoves16.Enabled = false;
                var before = p.Run();
                CpuDwConvMoves16.Enabled = true;
                var after = p.Run();
                before.AssertIdentical(after, rng.Ctx($"16 x 16 moves vs previous moves, {threads} thread(s)"));
                after.AssertIdentical(p.Run(), rng.Ctx($"repeat, {threads} thread(s)"));
            }
        }
        finally
        {
            CpuDwConvMoves16.Enabled = was;
            CpuParallel.Threads = keep;
        }
    }

    // The path's outputs with the moves on against the float64 references (forward per branch, input gradient,
    // weight gradients dense and masked).
    private static void CheckReference(CpuDwConvSmallMapTests.Problem p, int n, int c, int hw, (int, int)[] sizes,
        TestRandom rng)
    {
        Assert.That(CpuDwConvSmallMap.Applies(hw, hw, p.Branches), Is.True, $"{hw}x{hw} takes the small-map path");
        var got = p.Run();
        var refs = p.References();
        for (int b = 0; b < sizes.Length; b++)
        {
            DwRef.AssertClose(got.Ys[b], refs.Y[b], refs.YAbs[b], rng.Ctx($"forward branch {b}"), rng.Seed);
            DwRef.AssertClose(got.DenseDws[b], refs.Dw[b], refs.DwAbs[b], rng.Ctx($"dense weight gradient {b}"),
                rng.Seed);
        }
        DwRef.AssertClose(got.Dx, refs.Dx, refs.DxAbs, rng.Ctx("input gradient"), rng.Seed);
    }

    private static void RequirePath()
    {
        if (!Vector512.IsHardwareAccelerated || !System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            Assert.Ignore("the 16 x 16 moves need AVX-512");
    }
}
