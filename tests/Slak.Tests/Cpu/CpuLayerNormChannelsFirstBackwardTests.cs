// The CPU channels-first LayerNorm backward (per-pixel normalisation over C of an NCHW tensor) with its per-position
// means over C taken once per image (CpuBackend.LayerNormChannelsFirstMeansOnce, the default) against the dx pass that
// divided in every channel plane, and both against the float64 gradient, on odd channel counts, maps whose H*W is not
// a multiple of the vector width, 1x1 maps and batch 1. Outputs are NaN-poisoned before each kernel runs.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.LayerNormChannelsFirstMeansOnce
public class CpuLayerNormChannelsFirstBackwardTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    private static Tensor Cpu(float[] data, params int[] shape) => Tensor.FromArray((float[])data.Clone(), shape, Device.Cpu);

    private static Tensor Nan(params int[] shape) => Tensor.Full(shape, float.NaN, Device.Cpu);

    [TestCase(1, 7, 1, 1)]
    [TestCase(1, 31, 3, 5)]
    [TestCase(4, 31, 8, 8)]
    [TestCase(3, 62, 4, 4)]
    [TestCase(2, 13, 16, 16)]
    public void MeansOnceAgreesWithDividingAndFloat64(int n, int c, int h, int w)
    {
        int hw = h * w;
        var be = CpuBackend.Instance;
        var xd = _rng.NormalArray(n * c * hw, 1.2, 0.3);
        var x = Cpu(xd, n, c, h, w);
        var wt = Cpu(_rng.NormalArray(c), c);
        var bs = Cpu(_rng.NormalArray(c), c);
        var dyd = _rng.NormalArray(n * c * hw);
        var dy = Cpu(dyd, n, c, h, w);
        var y = Nan(n, c, h, w);
        var mean = Nan(n, h, w);
        var rstd = Nan(n, h, w);
        be.LayerNormChannelsFirst(x, wt, bs, 1e-6f, y, mean, rstd);
        var expected = Float64Dx(xd, wt.ToArray(), dyd, n, c, hw, 1e-6);
        float[]? previous = null;
        try
        {
            foreach (bool once in new[] { false, true })
            {
                CpuBackend.LayerNormChannelsFirstMeansOnce = once;
                string what = $"LayerNorm channels-first backward {n}x{c}x{h}x{w} ({(once ? "means once" : "dividing")})";
                var dx = Nan(n, c, h, w);
                var dw = Nan(c);
                var db = Nan(c);
                be.LayerNormChannelsFirstBackward(x, wt, mean, rstd, dy, dx, dw, db);
                var got = dx.ToArray();
                Expect.AllClose(got, expected, 1e-5, 1e-4, _rng.Ctx(what + ": dx vs float64"));
                if (previous != null)
                    Expect.AllClose(got, previous.Select(v => (double)v).ToArray(), 1e-6, 1e-5, _rng.Ctx(what + ": dx vs dividing"));
                previous = got;
            }
        }
        finally
        {
            CpuBackend.LayerNormChannelsFirstMeansOnce = true;
        }
    }

    /// <summary>dx of y = (x - mu) * rs * w + b over C per pixel, in float64: rs * (g*w - mean(g*w) - xhat * mean(g*w*xhat)).</summary>
    private static double[] Float64Dx(float[] x, float[] w, float[] dy, int n, int c, int hw, double eps)
    {
        var dx = new double[x.Length];
        for (int img = 0; img < n; img++)
            for (int p = 0; p < hw; p++)
            {
                double s = 0, sq = 0;
                for (int ch = 0; ch < c; ch++) s += x[(img * c + ch) * hw + p];
                double mu = s / c;
                for (int ch = 0; ch < c; ch++) { double d = x[(img * c + ch) * hw + p] - mu; sq += d * d; }
                double rs = 1 / Math.Sqrt(sq / c + eps), ma = 0, mb = 0;
                for (int ch = 0; ch < c; ch++)
                {
                    int i = (img * c + ch) * hw + p;
                    double gh = dy[i] * (double)w[ch];
                    ma += gh;
                    mb += gh * (x[i] - mu) * rs;
                }
                ma /= c;
                mb /= c;
                for (int ch = 0; ch < c; ch++)
                {
                    int i = (img * c + ch) * hw + p;
                    dx[i] = rs * (dy[i] * (double)w[ch] - ma - (x[i] - mu) * rs * mb);
                }
            }
        return dx;
    }
}
