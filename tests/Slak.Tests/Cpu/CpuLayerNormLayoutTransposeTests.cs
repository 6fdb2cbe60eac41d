// The CPU LayerNorm fused with the NCHW -> NHWC permute gathers its input tiles and scatters its input gradient with 8
// x 8 in-register transposes where a plane run has 8 pixels (CpuBackend.LayerNormLayoutSimdTranspose, the default), and
// with whole runs in overlapping 8 x 8 or 4 x 4 transposes (CpuBackend.LayerNormLayoutTailTransposes, the default: no
// element-by-element channel tails, 2 x 2 maps' runs of 4 in SSE registers). They are pure copies, so forward (y, mean,
// rstd) and backward (dx, dweight, dbias) of both must equal the element-by-element copies bit for bit: on channel
// counts with and without a remainder of 8, maps whose runs are 8, 16, longer than a tile or shorter than 8, and an
// image boundary inside a tile. Outputs are NaN-poisoned before each kernel runs, and the forward is also held against
// a float64 LayerNorm of the permuted input (tolerance 2e-6 relative to the row scale).
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.LayerNormLayoutSimdTranspose and LayerNormLayoutTailTransposes
public class CpuLayerNormLayoutTransposeTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    [TestCase(3, 31, 8, 8)]   // slak_nano stage 1: runs of 16, 3 x 8 channels + 7
    [TestCase(2, 62, 4, 4)]   // stage 2: runs of 16 that end at the image boundary
    [TestCase(2, 16, 5, 7)]   // 35 pixels: runs of 16, 16, 3 across image boundaries
    [TestCase(1, 40, 16, 16)] // a multiple of 8 channels, long planes
    [TestCase(4, 124, 2, 2)]  // runs of 4: the element path (old), 4 x 4 transposes (tail transposes)
    [TestCase(2, 9, 3, 3)]    // 9 pixels per image: runs of 9 and 7
    [TestCase(1, 31, 2, 2)]   // batch 1, 2 x 2: 4 x 4 transposes, the last 4 channels overlapping
    [TestCase(1, 31, 1, 1)]   // batch 1, 1 x 1: a plain copy
    [TestCase(3, 249, 2, 2)]  // slak_nano64 stage 4: one channel past the 4 x 4 blocks
    [TestCase(2, 5, 3, 3)]    // fewer than 8 channels: 4 x 4 transposes on runs of 9 and 7
    [TestCase(2, 3, 4, 4)]    // fewer than 4 channels: element by element
    [TestCase(2, 31, 1, 3)]   // runs of 3: element by element
    public void TransposedCopiesGiveTheElementCopiesBits(int n, int c, int h, int w)
    {
        var x = _rng.NormalArray(n * c * h * w, 1.3, 0.4);
        var weight = _rng.NormalArray(c);
        var bias = _rng.NormalArray(c);
        var dy = _rng.NormalArray(n * c * h * w);
        var runs = new List<float[][]>();
        try
        {
            foreach (var (simd, tails) in new[] { (false, false), (true, false), (true, true) })
            {
                CpuBackend.LayerNormLayoutSimdTranspose = simd;
                CpuBackend.LayerNormLayoutTailTransposes = tails;
                runs.Add(Run(n, c, h, w, x, weight, bias, dy));
            }
        }
        finally
        {
            CpuBackend.LayerNormLayoutSimdTranspose = true;
            CpuBackend.LayerNormLayoutTailTransposes = true;
        }
        string[] names = ["y", "mean", "rstd", "dx", "dweight", "dbias"];
        for (int k = 0; k < names.Length; k++)
        {
            Assert.That(runs[2][k].All(float.IsFinite), Is.True, _rng.Ctx($"{names[k]} written and finite"));
            Expect.Exactly(runs[1][k], runs[0][k], _rng.Ctx($"{names[k]}: transposed vs element copies, {n}x{c}x{h}x{w}"));
            Expect.Exactly(runs[2][k], runs[0][k], _rng.Ctx($"{names[k]}: tail transposes vs element copies, {n}x{c}x{h}x{w}"));
        }

        // The forward against float64: y[img, p, ch] = LayerNorm over ch of x[img, ch, p].
        int hw = h * w;
        double worst = 0;
        for (int img = 0; img < n; img++)
        {
            for (int p = 0; p < hw; p++)
            {
                double mean = 0, sq = 0;
                for (int ch = 0; ch < c; ch++) mean += x[(img * c + ch) * hw + p];
                mean /= c;
                for (int ch = 0; ch < c; ch++) { double d = x[(img * c + ch) * hw + p] - mean; sq += d * d; }
                double rstd = 1 / Math.Sqrt(sq / c + 1e-6);
                for (int ch = 0; ch < c; ch++)
                {
                    double want = (x[(img * c + ch) * hw + p] - mean) * rstd * weight[ch] + bias[ch];
                    double scale = Math.Abs(weight[ch]) + Math.Abs(bias[ch]) + 1;
                    worst = Math.Max(worst, Math.Abs(runs[2][0][(img * hw + p) * c + ch] - want) / scale);
                }
            }
        }
        Assert.That(worst, Is.LessThan(2e-6), _rng.Ctx("forward vs float64"));
    }

    private static float[][] Run(int n, int c, int h, int w, float[] x, float[] weight, float[] bias, float[] dy)
    {
        var be = CpuBackend.Instance;
        var xt = Tensor.FromArray((float[])x.Clone(), [n, c, h, w], Device.Cpu);
        var wt = Tensor.FromArray((float[])weight.Clone(), [c], Device.Cpu);
        var bt = Tensor.FromArray((float[])bias.Clone(), [c], Device.Cpu);
        var dyt = Tensor.FromArray((float[])dy.Clone(), [n, h, w, c], Device.Cpu);
        var y = Tensor.Full([n, h, w, c], float.NaN, Device.Cpu);
        var mean = Tensor.Full([n * h * w], float.NaN, Device.Cpu);
        var rstd = Tensor.Full([n * h * w], float.NaN, Device.Cpu);
        be.LayerNormNchwToNhwc(xt, wt, bt, 1e-6f, y, mean, rstd);
        var dx = Tensor.Full([n, c, h, w], float.NaN, Device.Cpu);
        var dw = Tensor.Full([c], float.NaN, Device.Cpu);
        var db = Tensor.Full([c], float.NaN, Device.Cpu);
        be.LayerNormNchwToNhwcBackward(xt, wt, mean, rstd, dyt, dx, dw, db);
        return [y.ToArray(), mean.ToArray(), rstd.ToArray(), dx.ToArray(), dw.ToArray(), db.ToArray()];
    }
}
