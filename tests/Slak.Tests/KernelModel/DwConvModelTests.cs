// The computed columns of kernel-model (bench/Slak.Bench/KernelModel/DwConvModel.cs): shared-memory bank conflicts of
// an access pattern (32-bit loads: one request of 32 lanes; 128-bit loads: four requests of 8 lanes) and sm_90
// occupancy, on cases worked out by hand; and the weight gradient's strides at SLaK-T's stages are conflict-free.
using NUnit.Framework;
using Slak.Bench.KernelModel;

namespace Slak.Tests.KernelModel;

[TestFixture]
public sealed class DwConvModelTests
{
    [Test]
    public void BankConflictsOfSimpleStrides()
    {
        Assert.That(DwConvModel.Conflict(l => l), Is.EqualTo(1), "consecutive words");
        Assert.That(DwConvModel.Conflict(l => 33L * l), Is.EqualTo(1), "odd stride");
        Assert.That(DwConvModel.Conflict(l => 2L * l), Is.EqualTo(2), "stride 2: two lanes per bank");
        Assert.That(DwConvModel.Conflict(l => 32L * l), Is.EqualTo(32), "stride 32: one bank");
        Assert.That(DwConvModel.Conflict(_ => 7), Is.EqualTo(1), "one address: a broadcast");
        Assert.That(DwConvModel.Conflict(l => 4L * l, words: 4), Is.EqualTo(1), "consecutive float4");
        Assert.That(DwConvModel.Conflict(l => 12L * l, words: 4), Is.EqualTo(1), "float4 lines 4 mod 8 floats apart");
        Assert.That(DwConvModel.Conflict(l => 8L * l, words: 4), Is.EqualTo(2), "float4 lines 8 floats apart");
        Assert.That(DwConvModel.Conflict(l => 106L * (l / 5) + l % 5), Is.EqualTo(2),
                    "the live-tap weight gradient's 51x5 taps in a 106-float row stride");
    }

    [Test]
    public void OccupancyFromRegistersThreadsAndSharedMemory()
    {
        Assert.That(DwConvModel.Occupancy(32, 256, 0), Is.EqualTo(1.0), "8 blocks of 8 warps");
        Assert.That(DwConvModel.Occupancy(119, 256, 40_000), Is.EqualTo(0.25), "120 registers: 2 blocks of 256 threads");
        Assert.That(DwConvModel.Occupancy(40, 128, 38_320), Is.EqualTo(5 * 4 / 64.0), "shared memory: 5 blocks of 4 warps");
    }

    /// <summary>The sliding forward's strips (StripWork, mirroring dw_branch_sliding): with the image-edge steps a
    /// strip issues, per short-axis tap, exactly the products of its steps whose input lies in the image (counted here
    /// by brute force over the steps' inputs; a step whose first and last inputs both lie outside, on maps shorter than
    /// the 15-input window, runs whole), which include every in-bounds (output, tap) pair of the strip; without them,
    /// 64 per step.</summary>
    [Test]
    public void SlidingStripsIssueTheInImageProductsOfTheirSteps()
    {
        foreach (int extent in new[] { 1, 3, 7, 14, 15, 28, 40, 56 })
            foreach (int kl in new[] { 5, 13, 31, 49, 51 })
                for (int a0 = 0; a0 < extent; a0 += 8)
                {
                    int pl = kl / 2, a1 = Math.Min(extent, a0 + 8) - 1;
                    int lo = Math.Max(0, pl - a1), hi = Math.Min(kl - 1, extent - 1 + pl - a0);
                    int steps = hi / 8 - lo / 8 + 1, inImage = 0, valid = 0;
                    for (int c = lo / 8; c <= hi / 8; c++)
                    {
                        int first = a0 + c * 8 - pl, last = first + 14;
                        if (first < 0 && last >= extent) { inImage += 64; continue; }
                        for (int u = 0; u < 8; u++)
                            for (int k = 0; k < 8; k++)
                            {
                                int pos = a0 + c * 8 + u + k - pl;
                                if (pos < 0 || pos >= extent) continue;
                                inImage++;
                            }
                    }
                    for (int k = 0; k < 8 && a0 + k < extent; k++)
                        for (int l = 0; l < kl; l++)
                            if (a0 + k + l - pl >= 0 && a0 + k + l - pl < extent) valid++;
                    string what = $"extent {extent}, {kl} taps, strip at {a0}";
                    var edge = DwConvModel.StripWork(extent, kl, a0);
                    var plain = DwConvModel.StripWork(extent, kl, a0, edgeSteps: false);
                    Assert.That(plain.Ffma, Is.EqualTo(64.0 * steps), what);
                    Assert.That(edge.FullSteps + edge.ClippedSteps, Is.EqualTo(steps), what);
                    Assert.That(edge.Ffma, Is.GreaterThanOrEqualTo(valid), what);
                    Assert.That(edge.Ffma, Is.EqualTo(inImage), what);
                }
    }

    /// <summary>The weight gradient's steps (WgradTaskWork, mirroring dw_wg_task): a step issues every product whose x
    /// input lies in the image and whose output lies in the tile, and, where only one edge cuts it (the image's start,
    /// the image's end, or the tile's end), exactly those (counted here by brute force); 64 without the edge
    /// steps.</summary>
    [Test]
    public void WeightGradientStepsIssueTheirInImageProducts()
    {
        foreach (int ext in new[] { 1, 7, 28, 56 })
            foreach (int kl in new[] { 5, 13, 49, 51 })
                for (int l0 = 0; l0 < ext; l0 += 32)
                {
                    int pl = kl / 2, tlen = Math.Min(32, ext - l0);
                    for (int i0 = -3; i0 < kl; i0 += 8)
                        for (int a = 0; a < tlen; a += 4)
                        {
                            int valid = 0;
                            for (int m = 0; m < 8; m++)
                                for (int k = 0; k < 8; k++)
                                {
                                    int pos = l0 + a + m + k + i0 - pl;
                                    if (pos >= 0 && pos < ext && a + m < tlen) valid++;
                                }
                            int lead = pl - l0 - i0 - a, nhi = ext - 1 - l0 - i0 + pl - a, mhi = tlen - 1 - a;
                            if (nhi < 0 || lead > 14) continue; // no input in the image: outside a task's outputs
                            int cuts = (lead > 0 ? 1 : 0) + (nhi < 14 ? 1 : 0) + (mhi < 7 ? 1 : 0);
                            var edge = DwConvModel.WgradTaskWork(ext, l0, tlen, pl, i0, a, a + 1);
                            var plain = DwConvModel.WgradTaskWork(ext, l0, tlen, pl, i0, a, a + 1, edgeSteps: false);
                            string what = $"extent {ext}, {kl} taps, tile at {l0}, strip at tap {i0}, step at {a}";
                            Assert.That(plain.Ffma, Is.EqualTo(64), what);
                            Assert.That(edge.Ffma, Is.InRange(valid, 64), what);
                            if (cuts <= 1) Assert.That(edge.Ffma, Is.EqualTo(valid), what);
                        }
                }
    }

    /// <summary>Trimmed weight-gradient strips (StripCodes, mirroring dw_wg_task_code): over every live pattern of a
    /// strip's taps inside the kernel, counted by brute force, the codes' probabilities and (shift, first, count) are
    /// those of the pattern's first and last live taps; a short strip's full step issues 8 x count FFMAs.</summary>
    [Test]
    public void TrimmedStripsComputeUpToTheirLastLiveTap()
    {
        const double d = 0.6;
        foreach (var (klo, khi) in new[] { (0, 7), (3, 7), (0, 2), (0, 0), (5, 7) })
        {
            var expected = new Dictionary<(int, int, int), double>();
            int n = khi - klo + 1;
            for (int pattern = 1; pattern < 1 << n; pattern++)
            {
                int first = klo + System.Numerics.BitOperations.TrailingZeroCount(pattern);
                int last = klo + 31 - System.Numerics.BitOperations.LeadingZeroCount((uint)pattern);
                int shift = first >= 4 ? 4 : 0;
                double p = Math.Pow(d, System.Numerics.BitOperations.PopCount((uint)pattern)) *
                           Math.Pow(1 - d, n - System.Numerics.BitOperations.PopCount((uint)pattern));
                var key = (shift, first - shift, last - shift + 1);
                expected[key] = expected.GetValueOrDefault(key) + p;
            }
            var got = DwConvModel.StripCodes(klo, khi, d).ToList();
            Assert.That(got.Select(c => (c.Shift, c.First, c.Count)), Is.Unique, $"taps {klo}..{khi}");
            Assert.That(got.Count, Is.EqualTo(expected.Count), $"taps {klo}..{khi}");
            foreach (var c in got)
            {
                Assert.That(c.Count, Is.InRange(1, 8));
                Assert.That(c.P, Is.EqualTo(expected[(c.Shift, c.First, c.Count)]).Within(1e-12), $"taps {klo}..{khi}: {c}");
            }
            var whole = DwConvModel.StripCodes(klo, khi, d, trim: false).Single();
            Assert.That(whole.P, Is.EqualTo(1 - Math.Pow(1 - d, n)).Within(1e-12));
        }
        for (int count = 1; count < 8; count++)
        {
            // 56 outputs, a 51-tap kernel, strip at tap 16, the step at output 16: inputs 7..21, all in the image.
            var w = DwConvModel.WgradTaskWork(56, 0, 56, 25, 16, 16, 17, count: count);
            Assert.That((w.Ffma, w.ShortFfma, w.ClippedSteps), Is.EqualTo((8.0 * count, 8.0 * count, 0)), $"count {count}");
            Assert.That(w.ShortSlots, Is.EqualTo(DwConvModel.ShortStepSlots(count)));
        }
    }

    [Test]
    public void TrimmedStripsRaiseTheStageOneAndTwoWeightGradient()
    {
        foreach (var st in DwConvModel.SlakTiny.Take(2))
        {
            var trimmed = DwConvModel.FusedWeightGrad(st, 128, 0.6, 0.86);
            var whole = DwConvModel.FusedWeightGrad(st, 128, 0.6, 0.86, trim: false);
            Assert.That(trimmed.UsefulFma, Is.EqualTo(whole.UsefulFma), st.Name);
            Assert.That(trimmed.LaneEfficiency, Is.GreaterThan(whole.LaneEfficiency), st.Name);
            Assert.That(trimmed.LaneEfficiency, Is.LessThanOrEqualTo(0.6), st.Name);
            Assert.That(trimmed.ModeledMs, Is.LessThan(whole.ModeledMs), st.Name);
        }
    }

    [Test]
    public void TheImageEdgeStepsRaiseTheStageOneAndTwoLaneEfficiency()
    {
        foreach (var st in DwConvModel.SlakTiny.Take(2))
        {
            var with = DwConvModel.FusedForward("fwd", st, 128, 0.6, 0.78);
            var without = DwConvModel.FusedForward("fwd", st, 128, 0.6, 0.78, edgeSteps: false);
            Assert.That(with.UsefulFma, Is.EqualTo(without.UsefulFma), st.Name);
            Assert.That(with.LaneEfficiency, Is.GreaterThan(without.LaneEfficiency), st.Name);
            Assert.That(with.LaneEfficiency, Is.LessThanOrEqualTo(0.6), st.Name + ": zero weights cap it at the density");
            var wg = DwConvModel.FusedWeightGrad(st, 128, 0.6, 0.9);
            var wgWithout = DwConvModel.FusedWeightGrad(st, 128, 0.6, 0.9, edgeSteps: false);
            Assert.That(wg.LaneEfficiency, Is.GreaterThan(wgWithout.LaneEfficiency), st.Name + " weight gradient");
        }
    }

    [Test]
    public void TheWeightGradientsStridesAreConflictFreeAtSlakTinyStages()
    {
        foreach (var st in DwConvModel.SlakTiny)
            Assert.That(DwConvModel.WgradConflicts(st, 128), Is.EqualTo(1), st.Name);
    }
}
