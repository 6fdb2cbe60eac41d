// The CPU LayerNorm backwards with pixels in the SIMD lanes (CpuBackend.LayerNormBackwardPixelLanes; the default on some
// maps, forced here onto every map of at least one vector of pixels; CpuBackend.Norm.LayoutPlanesBackward.cs), fused
// with the permute (dy NHWC) and channels-first (dy NCHW): dx, dweight and dbias against the float64 gradient and
// against the paths they replace (row path; flat / plane paths), on every stage shape of slak_nano and slak_nano64
// scaled down in batch (the 2 x 2 and 1 x 1 stages take the old paths either way), maps whose pixel count is not a
// multiple of the chunk (an overlapping last chunk), one channel, and batches that are not a whole number of 8-image
// parts, with two-vector chunks (the default from 8 x 8) and one-vector chunks; the same bits at 1 and 2 threads and on
// a repeated run. Outputs are NaN-poisoned before each run (CpuLayerNormBackwardCase).
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.LayerNormBackwardPixelLanes (and its map thresholds) and CpuParallel.Threads
public class CpuLayerNormBackwardPixelLanesTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    [TestCase(9, 31, 8, 8)]    // slak_nano stage 1 (the stem's and the blocks' LayerNorm)
    [TestCase(9, 62, 4, 4)]    // slak_nano stage 2
    [TestCase(9, 124, 2, 2)]   // slak_nano stage 3: below one vector, the old paths
    [TestCase(9, 249, 1, 1)]   // slak_nano stage 4
    [TestCase(3, 31, 16, 16)]  // slak_nano64 stage 1
    [TestCase(9, 62, 8, 8)]    // slak_nano64 stage 2
    [TestCase(17, 124, 4, 4)]  // slak_nano64 stage 3, three parts
    [TestCase(9, 249, 2, 2)]   // slak_nano64 stage 4
    [TestCase(3, 13, 7, 9)]    // 63 pixels: the last chunk overlaps
    [TestCase(2, 13, 9, 9)]    // 81 pixels: the last two-vector chunk overlaps by more than a vector
    [TestCase(4, 5, 3, 3)]     // 9 pixels: one lane past a vector
    [TestCase(2, 1, 4, 4)]     // one channel
    [TestCase(1, 37, 2, 5)]    // batch 1, 10 pixels
    public void MatchesFloat64TheOldPathsAndItself(int n, int c, int h, int w)
    {
        foreach (var layout in new[] { LayerNormOverChannels.NchwToNhwc, LayerNormOverChannels.ChannelsFirst })
        {
            int hw = h * w;
            var ln = CpuLayerNormBackwardCase.Draw(_rng, layout, n, c, h, w, 1.1, 0.2);
            var dyNchw = ln.Dy;
            if (layout == LayerNormOverChannels.NchwToNhwc)
            {
                dyNchw = new float[ln.Dy.Length];
                for (int img = 0; img < n; img++)
                    for (int p = 0; p < hw; p++)
                        for (int ch = 0; ch < c; ch++) dyNchw[(img * c + ch) * hw + p] = ln.Dy[(img * hw + p) * c + ch];
            }
            var (edx, edw, edb) = CpuLayerNormChannelsFirstBackwardTests.Float64Gradients(ln.X, ln.Weight, dyNchw, n, c, hw,
                CpuLayerNormBackwardCase.Eps);
            string what = $"LayerNorm {layout} backward {n}x{c}x{h}x{w}";
            bool keepLanes = CpuBackend.LayerNormBackwardPixelLanes;
            int keepThreads = CpuParallel.Threads, keepFrom = CpuBackend.LayerNormBackwardLanesFusedFrom;
            int keepBelow = CpuBackend.LayerNormBackwardLanesChannelsFirstBelow;
            try
            {
                CpuBackend.LayerNormBackwardPixelLanes = false;
                var old = ln.Backward();
                // The kernel on every map of at least one vector of pixels, not only where it is the default.
                CpuBackend.LayerNormBackwardPixelLanes = true;
                CpuBackend.LayerNormBackwardLanesFusedFrom = 0;
                CpuBackend.LayerNormBackwardLanesChannelsFirstBelow = int.MaxValue;
                CpuParallel.Threads = 1;
                var one = ln.Backward();
                CpuParallel.Threads = 2;
                var two = ln.Backward();
                var again = ln.Backward();
                CpuBackend.LayerNormBackwardLanesWide = false;
                var narrow = ln.Backward();
                string[] names = ["dx", "dweight", "dbias"];
                float[][] got = [one.Dx, one.Dw, one.Db], before = [old.Dx, old.Dw, old.Db];
                double[][] expected = [edx, edw, edb];
                // dx: the tolerance of the paths it replaces (the kernel reads the forward's float statistics, the
                // reference recomputes them in float64: CpuLayerNormChannelsFirstFlatTests). dweight and dbias: float
                // sums of at most 16 chunks' lanes, then float64.
                (double Atol, double Rtol)[] tol = [(1e-5, 1e-4), (1e-5, 1e-5), (1e-5, 1e-5)];
                float[][] oneVector = [narrow.Dx, narrow.Dw, narrow.Db];
                for (int k = 0; k < 3; k++)
                {
                    Expect.AllClose(got[k], expected[k], tol[k].Atol, tol[k].Rtol, _rng.Ctx($"{what}: {names[k]} vs float64"));
                    Expect.AllClose(oneVector[k], expected[k], tol[k].Atol, tol[k].Rtol,
                        _rng.Ctx($"{what}: {names[k]} vs float64, one-vector chunks"));
                    Expect.AllClose(got[k], before[k].Select(v => (double)v).ToArray(), tol[k].Atol, tol[k].Rtol,
                        _rng.Ctx($"{what}: {names[k]} vs the old path"));
                }
                Expect.Exactly(two.Dx, one.Dx, _rng.Ctx($"{what}: dx, 2 threads vs 1"));
                Expect.Exactly(two.Dw, one.Dw, _rng.Ctx($"{what}: dweight, 2 threads vs 1"));
                Expect.Exactly(two.Db, one.Db, _rng.Ctx($"{what}: dbias, 2 threads vs 1"));
                Expect.Exactly(again.Dx, two.Dx, _rng.Ctx($"{what}: dx repeated"));
                Expect.Exactly(again.Dw, two.Dw, _rng.Ctx($"{what}: dweight repeated"));
                Expect.Exactly(again.Db, two.Db, _rng.Ctx($"{what}: dbias repeated"));
            }
            finally
            {
                CpuBackend.LayerNormBackwardPixelLanes = keepLanes;
                CpuBackend.LayerNormBackwardLanesWide = true;
                CpuBackend.LayerNormBackwardLanesFusedFrom = keepFrom;
                CpuBackend.LayerNormBackwardLanesChannelsFirstBelow = keepBelow;
                CpuParallel.Threads = keepThreads;
            }
        }
    }
}
