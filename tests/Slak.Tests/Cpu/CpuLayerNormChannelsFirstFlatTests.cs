// The CPU channels-first LayerNorm backward's flat path (CpuBackend.Norm.ChannelsFirstFlat.cs: each image's C*H*W
// values as one row, per-position rows of period max(vector width, H*W), float64 throughout) against the float64
// gradient (dx, dweight, dbias) and against the per-plane path, on slak_nano's and slak_nano64's stem / downsampling
// shapes scaled down in batch (8x8, 4x4, 2x2 and 16x16 with the path forced on), 1x1 and 2x1 maps, odd channel counts,
// rows shorter than one vector, batch 1 and a batch that is not a whole number of parts; bit-identical on a repeated
// run and at 1, 2 and 3 threads (the parts are fixed image ranges). Outputs are NaN-poisoned before each run
// (CpuLayerNormBackwardCase).
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.LayerNormChannelsFirstFlatBelow and CpuParallel.Threads
public class CpuLayerNormChannelsFirstFlatTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    [TestCase(12, 31, 8, 8)]
    [TestCase(12, 62, 4, 4)]
    [TestCase(12, 124, 2, 2)]
    [TestCase(12, 249, 1, 1)]
    [TestCase(3, 31, 16, 16)]
    [TestCase(11, 31, 4, 4)]
    [TestCase(17, 3, 2, 2)]
    [TestCase(9, 13, 2, 1)]
    [TestCase(3, 5, 1, 1)]
    [TestCase(1, 7, 1, 1)]
    public void MatchesFloat64ThePlanePathAndItself(int n, int c, int h, int w)
    {
        var ln = CpuLayerNormBackwardCase.Draw(_rng, LayerNormOverChannels.ChannelsFirst, n, c, h, w, 1.2, 0.3);
        var (expected, edw, edb) = CpuLayerNormChannelsFirstBackwardTests.Float64Gradients(ln.X, ln.Weight, ln.Dy, n, c, h * w, 1e-6);
        int keepFlat = CpuBackend.LayerNormChannelsFirstFlatBelow, keepThreads = CpuParallel.Threads;
        string what = $"LayerNorm channels-first backward {n}x{c}x{h}x{w}";
        try
        {
            CpuBackend.LayerNormBackwardPixelLanes = false; // the paths before it (CpuLayerNormBackwardPixelLanesTests)
            CpuBackend.LayerNormChannelsFirstFlatBelow = 0;
            var (planeDx, planeDw, planeDb) = ln.Backward();
            CpuBackend.LayerNormChannelsFirstFlatBelow = int.MaxValue;
            var (dx, dw, db) = ln.Backward();
            // The kernel reads the forward's float mean and 1/std, the reference recomputes them in float64: with few
            // channels their rounding is amplified (C = 3, seed 438344123: 1.4e-5 relative, the plane path's dx has
            // the same bits), so dx gets the plane path's tolerance (CpuLayerNormChannelsFirstBackwardTests).
            Expect.AllClose(dx, expected, 1e-5, 1e-4, _rng.Ctx(what + " (flat): dx vs float64"));
            Expect.AllClose(dw, edw, 1e-5, 1e-5, _rng.Ctx(what + " (flat): dweight vs float64"));
            Expect.AllClose(db, edb, 1e-5, 1e-5, _rng.Ctx(what + " (flat): dbias vs float64"));
            Expect.AllClose(dx, planeDx.Select(v => (double)v).ToArray(), 1e-5, 1e-4, _rng.Ctx(what + ": flat vs plane path, dx"));
            Expect.AllClose(dw, planeDw.Select(v => (double)v).ToArray(), 1e-5, 1e-5, _rng.Ctx(what + ": flat vs plane path, dweight"));
            Expect.AllClose(db, planeDb.Select(v => (double)v).ToArray(), 1e-5, 1e-5, _rng.Ctx(what + ": flat vs plane path, dbias"));
            foreach (int threads in new[] { keepThreads, 1, 2, 3 })
            {
                CpuParallel.Threads = threads;
                var (rdx, rdw, rdb) = ln.Backward();
                Expect.Exactly(rdx, dx, _rng.Ctx($"{what} (flat, {threads} threads): dx repeated"));
                Expect.Exactly(rdw, dw, _rng.Ctx($"{what} (flat, {threads} threads): dweight repeated"));
                Expect.Exactly(rdb, db, _rng.Ctx($"{what} (flat, {threads} threads): dbias repeated"));
            }
        }
        finally
        {
            CpuBackend.LayerNormBackwardPixelLanes = true;
            CpuBackend.LayerNormChannelsFirstFlatBelow = keepFlat;
            CpuParallel.Threads = keepThreads;
        }
    }
}
