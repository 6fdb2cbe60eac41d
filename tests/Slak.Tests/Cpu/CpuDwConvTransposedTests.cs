// The orientation choice of the CPU depthwise plane loops (CpuDwConvTransposed): which passes run on the transposed
// plane, and the transposed tap lists they use. The numerical results of transposed passes are checked against the
// float64 reference by CpuDwConvDecomposedTests (batch >= 8 cases with wide kernels on small maps).
using NUnit.Framework;
using Slak.Backends.Cpu;

namespace Slak.Tests.Cpu;

public sealed class CpuDwConvTransposedTests
{
    [Test]
    public void WideKernelsOnSmallInterleavedMapsRunTransposed()
    {
        var stage4 = new CpuDwConvEngine.Geometry(7, 7, interleaved: true);
        var gt = CpuDwConvTransposed.Of(stage4);
        // 5x13 on a 7x7 map: 29 clipped rows x 13 columns x 7 vectors as is, 49 x 5 x 7 transposed.
        Assert.That(CpuDwConvTransposed.Cost(stage4, 5, 13), Is.EqualTo(29L * 13 * 7));
        Assert.That(CpuDwConvTransposed.Cost(gt, 13, 5), Is.EqualTo(49L * 5 * 7));
        var passes = new[]
        {
            new DwPass(13, 5, DwTapList.Dense(2, 13, 5), new float[2 * 65]),
            new DwPass(5, 13, DwTapList.Dense(2, 5, 13), new float[2 * 65]),
            new DwPass(5, 5, DwTapList.Dense(2, 5, 5), new float[2 * 25]),
        };
        var run = CpuDwConvTransposed.Orient(stage4, passes, out var created);
        Assert.That(run.Select(p => p.Transposed), Is.EqualTo(new[] { false, true, false }));
        Assert.That(created, Has.Length.EqualTo(1));
        Assert.That((run[1].Kh, run[1].Kw), Is.EqualTo((13, 5)));
        DwPass.ReleaseAll(created);

        // The column layout (batch < 8) never transposes: its pixels are not whole vectors.
        var columns = new CpuDwConvEngine.Geometry(7, 7, interleaved: false);
        run = CpuDwConvTransposed.Orient(columns, passes, out created);
        Assert.That(run.Any(p => p.Transposed), Is.False);
        Assert.That(created, Is.Empty);
    }

    [Test]
    public void TransposedTapListSwapsRowsAndColumnsAndKeepsWeightIndices()
    {
        int seed = TestContext.CurrentContext.Random.Next();
        var rng = new Random(seed);
        const int c = 3, kh = 5, kw = 9;
        var mask = DwRef.Mask(rng, c * kh * kw, 0.5);
        var list = DwTapList.FromMask(c, kh, kw, mask, 1);
        var t = list.Transposed;
        Assert.That((t.C, t.Kh, t.Kw, t.Count), Is.EqualTo((c, kw, kh, list.Count)));
        Assert.That(list.Transposed, Is.SameAs(t), "cached");
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < kw; j++)
            {
                int prev = -1;
                for (int s = t.RowStart[ch * (kw + 1) + j]; s < t.RowStart[ch * (kw + 1) + j + 1]; s++)
                {
                    int i = t.Cols[s];
                    Assert.That(i, Is.GreaterThan(prev), $"columns ascending (seed {seed})");
                    prev = i;
                    Assert.That(t.Flat[s], Is.EqualTo((ch * kh + i) * kw + j), $"weight index (seed {seed})");
                    Assert.That(list.Flat[t.Source![s]], Is.EqualTo(t.Flat[s]), $"source tap (seed {seed})");
                    Assert.That(mask[t.Flat[s]], Is.EqualTo(1f), $"only live taps (seed {seed})");
                }
            }
    }
}
