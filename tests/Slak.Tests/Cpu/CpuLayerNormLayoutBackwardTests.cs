// The CPU backward of LayerNorm fused with the NCHW -> NHWC permute (IBackend.LayerNormNchwToNhwcBackward) with its
// per-pixel work in one pass over the rows (CpuBackend.LayerNormLayoutOneRowPass, the default) against the four passes
// it replaced: the same operations lane for lane, so the same bits; on channel counts with vector tails, 1x1 maps,
// batch 1 and maps whose pixel count is not a multiple of the tile. Outputs are NaN-poisoned before each kernel runs.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.LayerNormLayoutOneRowPass
public class CpuLayerNormLayoutBackwardTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    private static Tensor Cpu(float[] data, params int[] shape) => Tensor.FromArray((float[])data.Clone(), shape, Device.Cpu);

    private static Tensor Nan(params int[] shape) => Tensor.Full(shape, float.NaN, Device.Cpu);

    [TestCase(1, 7, 1, 1)]
    [TestCase(1, 37, 3, 5)]
    [TestCase(9, 31, 8, 8)]
    [TestCase(5, 249, 1, 1)]
    [TestCase(3, 124, 2, 2)]
    public void OneRowPassGivesTheBitsOfFourPasses(int n, int c, int h, int w)
    {
        var be = CpuBackend.Instance;
        var x = Cpu(_rng.NormalArray(n * c * h * w, 1.1, 0.2), n, c, h, w);
        var wt = Cpu(_rng.NormalArray(c), c);
        var bs = Cpu(_rng.NormalArray(c), c);
        var dy = Cpu(_rng.NormalArray(n * h * w * c), n, h, w, c);
        var y = Nan(n, h, w, c);
        var mean = Nan(n * h * w);
        var rstd = Nan(n * h * w);
        be.LayerNormNchwToNhwc(x, wt, bs, 1e-6f, y, mean, rstd);
        var results = new List<float[][]>();
        try
        {
            foreach (bool one in new[] { false, true })
            {
                CpuBackend.LayerNormLayoutOneRowPass = one;
                var dx = Nan(n, c, h, w);
                var dw = Nan(c);
                var db = Nan(c);
                be.LayerNormNchwToNhwcBackward(x, wt, mean, rstd, dy, dx, dw, db);
                results.Add([dx.ToArray(), dw.ToArray(), db.ToArray()]);
            }
        }
        finally
        {
            CpuBackend.LayerNormLayoutOneRowPass = true;
        }
        string[] names = ["dx", "dweight", "dbias"];
        for (int k = 0; k < 3; k++)
        {
            Assert.That(results[1][k].All(float.IsFinite), Is.True, _rng.Ctx($"{names[k]} written and finite"));
            Expect.Exactly(results[1][k], results[0][k], _rng.Ctx($"{names[k]}: one row pass vs four, {n}x{c}x{h}x{w}"));
        }
    }
}
