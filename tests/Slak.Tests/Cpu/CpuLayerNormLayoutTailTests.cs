// The CPU LayerNorm fused with the NCHW -> NHWC permute, forward and backward, with its row kernels finishing a row
// whose channel count is not a multiple of the vector width with the last whole vector (CpuBackend
// .LayerNormLayoutVectorTails, the default) against float64 (y, mean, 1/std; dx, dweight, dbias) and against the scalar
// tails, on slak_nano's and slak_nano64's block shapes scaled down in batch (31 / 62 / 124 / 249 channels: tails of
// 7 / 6 / 4 / 1), a one-lane tail, rows shorter than a vector, odd maps and 1x1 maps; a repeated run gives the same
// bits. Outputs are NaN-poisoned before each run.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;
using static Slak.Tests.Support.CpuTensors;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.LayerNormLayoutVectorTails and LayerNormLayoutPixelLanes
public class CpuLayerNormLayoutTailTests
{
    private const float Eps = CpuLayerNormBackwardCase.Eps;

    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    private static double[] D(float[] v) => v.Select(f => (double)f).ToArray();

    [TestCase(9, 31, 8, 8)]
    [TestCase(12, 62, 4, 4)]
    [TestCase(12, 124, 2, 2)]
    [TestCase(12, 249, 1, 1)]
    [TestCase(2, 31, 16, 16)]
    [TestCase(5, 13, 3, 5)]
    [TestCase(4, 9, 2, 2)]
    [TestCase(2, 7, 2, 2)]
    [TestCase(1, 15, 1, 1)]
    public void VectorTailsMatchFloat64AndScalarTails(int n, int c, int h, int w)
    {
        int hw = h * w;
        var x = _rng.NormalArray(n * c * hw, 1.1, 0.2);
        var wt = _rng.NormalArray(c);
        var bs = _rng.NormalArray(c);
        var ln = CpuLayerNormBackwardCase.Draw(_rng, LayerNormOverChannels.NchwToNhwc, n, c, h, w, 1.1, 0.2);
        string what = $"LayerNorm NCHW -> NHWC {n}x{c}x{h}x{w}";
        try
        {
            CpuBackend.LayerNormBackwardPixelLanes = false; // the paths before it (CpuLayerNormBackwardPixelLanesTests)
            // The row path's forward (the pixel-lane forward takes larger maps by default: CpuLayerNormLayoutPixelLanesTests).
            CpuBackend.LayerNormLayoutPixelLanes = false;
            var outputs = new List<float[][]>();
            foreach (bool tails in new[] { false, true, true })
            {
                CpuBackend.LayerNormLayoutVectorTails = tails;
                var y = Nan(n, h, w, c);
                var mean = Nan(n * hw);
                var rstd = Nan(n * hw);
                CpuBackend.Instance.LayerNormNchwToNhwc(CpuCopy(x, n, c, h, w), CpuCopy(wt, c), CpuCopy(bs, c), Eps, y, mean, rstd);
                var (dx, dw, db) = ln.Backward();
                outputs.Add([y.ToArray(), mean.ToArray(), rstd.ToArray(), dx, dw, db]);
            }
            var (ey, em, er) = Forward64(x, wt, bs, n, c, hw);
            var dyNchw = new float[ln.Dy.Length];
            for (int img = 0; img < n; img++)
                for (int p = 0; p < hw; p++)
                    for (int ch = 0; ch < c; ch++) dyNchw[(img * c + ch) * hw + p] = ln.Dy[(img * hw + p) * c + ch];
            var (edx, edw, edb) = CpuLayerNormChannelsFirstBackwardTests.Float64Gradients(ln.X, ln.Weight, dyNchw, n, c, hw, Eps);
            var got = outputs[1];
            Expect.AllClose(got[0], ey, 2e-5, 1e-5, _rng.Ctx(what + ": y vs float64"));
            Expect.AllClose(got[1], em, 1e-6, 1e-6, _rng.Ctx(what + ": mean vs float64"));
            Expect.AllClose(got[2], er, 1e-6, 1e-6, _rng.Ctx(what + ": 1/std vs float64"));
            Expect.AllClose(got[3], edx, 1e-5, 1e-4, _rng.Ctx(what + ": dx vs float64"));
            Expect.AllClose(got[4], edw, 1e-4, 1e-4, _rng.Ctx(what + ": dweight vs float64"));
            Expect.AllClose(got[5], edb, 1e-4, 1e-4, _rng.Ctx(what + ": dbias vs float64"));
            string[] names = ["y", "mean", "1/std", "dx", "dweight", "dbias"];
            for (int k = 0; k < names.Length; k++)
            {
                Expect.AllClose(got[k], D(outputs[0][k]), 1e-6, 1e-5, _rng.Ctx($"{what}: {names[k]}, vector vs scalar tails"));
                Expect.Exactly(outputs[2][k], got[k], _rng.Ctx($"{what}: {names[k]}, repeated"));
            }
        }
        finally
        {
            CpuBackend.LayerNormBackwardPixelLanes = true;
            CpuBackend.LayerNormLayoutVectorTails = true;
            CpuBackend.LayerNormLayoutPixelLanes = true;
        }
    }

    /// <summary>y = (x - mu) * rs * w + b per pixel over C (NHWC out), mu and rs = 1/sqrt(var + eps), in float64.</summary>
    internal static (double[] Y, double[] Mean, double[] Rstd) Forward64(float[] x, float[] wt, float[] bs, int n, int c, int hw)
    {
        var y = new double[x.Length];
        var mean = new double[n * hw];
        var rstd = new double[n * hw];
        for (int img = 0; img < n; img++)
            for (int p = 0; p < hw; p++)
            {
                double s = 0, sq = 0;
                for (int ch = 0; ch < c; ch++) s += x[(img * c + ch) * hw + p];
                double mu = s / c;
                for (int ch = 0; ch < c; ch++) { double d = x[(img * c + ch) * hw + p] - mu; sq += d * d; }
                double rs = 1 / Math.Sqrt(sq / c + Eps);
                int q = img * hw + p;
                mean[q] = mu;
                rstd[q] = rs;
                for (int ch = 0; ch < c; ch++) y[q * c + ch] = (x[(img * c + ch) * hw + p] - mu) * rs * wt[ch] + bs[ch];
            }
        return (y, mean, rstd);
    }
}
