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
[NonParallelizable] // changes CpuBackend.LayerNormLayoutOneRowPass and LayerNormLayoutVectorTails
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
    public void OneRowPassGivesTheBitsOfFourPasses(int n, int c, int h, int w)
    {
        var ln = CpuLayerNormBackwardCase.Draw(_rng, LayerNormOverChannels.NchwToNhwc, n, c, h, w, 1.1, 0.2);
        var results = new List<float[][]>();
        try
        {
            CpuBackend.LayerNormLayoutVectorTails = false; // the four passes have scalar tails (CpuLayerNormLayoutTailTests)
            foreach (bool one in new[] { false, true })
            {
                CpuBackend.LayerNormLayoutOneRowPass = one;
                var (dx, dw, db) = ln.Backward();
                results.Add([dx, dw, db]);
            }
        }
        finally
        {
            CpuBackend.LayerNormLayoutOneRowPass = true;
            CpuBackend.LayerNormLayoutVectorTails = true;
        }
        string[] names = ["dx", "dweight", "dbias"];
        for (int k = 0; k < 3; k++)
        {
            Assert.That(results[1][k].All(float.IsFinite), Is.True, _rng.Ctx($"{names[k]} written and finite"));
            Expect.Exactly(results[1][k], results[0][k], _rng.Ctx($"{names[k]}: one row pass vs four, {n}x{c}x{h}x{w}"));
        }
    }
}
