// The CPU backward of LayerNorm fused with the NCHW -> NHWC permute (IBackend.LayerNormNchwToNhwcBackward) with its
// per-pixel work in one pass over the rows (CpuBackend.LayerNormLayoutOneRowPass, the default) against the four passes
// it replaced: the same operations lane for lane, so the same bits; on channel counts with vector tails, 1x1 maps,
// batch 1 and maps whose pixel count is not a multiple of the tile. Outputs are NaN-poisoned before each kernel runs
// (set-up shared with the channels-first test: CpuLayerNormBackwardCase).
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.LayerNormLayoutOneRowPass, LayerNormLayoutTileSums and LayerNormLayoutVectorTails
public class CpuLayerNormLayoutBackwardTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    [TestCase(1, 7, 1, 1)]
    [TestCase(1, 37, 3, 5)]
    [TestCase(9, 31, 8, 8)]
    [TestCase(5, 249, 1, 1)]
    [TestCase(3, 124, 2, 2)]
    [TestCase(4, 62, 5, 7)] // tiles of 16 pixels crossing images, a 6-channel tail
    public void OneRowPassGivesTheBitsOfFourPasses(int n, int c, int h, int w)
    {
        var ln = CpuLayerNormBackwardCase.Draw(_rng, LayerNormOverChannels.NchwToNhwc, n, c, h, w, 1.1, 0.2);
        var results = new List<float[][]>();
        try
        {
            CpuBackend.LayerNormBackwardPixelLanes = false; // the paths before it (CpuLayerNormBackwardPixelLanesTests)
            // Scalar tails: four passes, one row pass, one row pass over whole tiles; then vector tails: one row
            // pass and tiles.
            foreach (var (one, tiles, tails) in new[] { (false, false, false), (true, false, false), (true, true, false),
                                                         (true, false, true), (true, true, true) })
            {
                CpuBackend.LayerNormLayoutVectorTails = tails; // the four passes have scalar tails (CpuLayerNormLayoutTailTests)
                CpuBackend.LayerNormLayoutOneRowPass = one;
                CpuBackend.LayerNormLayoutTileSums = tiles;
                var (dx, dw, db) = ln.Backward();
                results.Add([dx, dw, db]);
            }
        }
        finally
        {
            CpuBackend.LayerNormBackwardPixelLanes = true;
            CpuBackend.LayerNormLayoutOneRowPass = true;
            CpuBackend.LayerNormLayoutTileSums = true;
            CpuBackend.LayerNormLayoutVectorTails = true;
        }
        string[] names = ["dx", "dweight", "dbias"];
        for (int k = 0; k < 3; k++)
        {
            Assert.That(results[1][k].All(float.IsFinite), Is.True, _rng.Ctx($"{names[k]} written and finite"));
            Expect.Exactly(results[1][k], results[0][k], _rng.Ctx($"{names[k]}: one row pass vs four, {n}x{c}x{h}x{w}"));
            Expect.Exactly(results[2][k], results[0][k], _rng.Ctx($"{names[k]}: tiles vs four passes, {n}x{c}x{h}x{w}"));
            Expect.Exactly(results[4][k], results[3][k], _rng.Ctx($"{names[k]}: tiles vs rows, vector tails, {n}x{c}x{h}x{w}"));
        }
    }
}
