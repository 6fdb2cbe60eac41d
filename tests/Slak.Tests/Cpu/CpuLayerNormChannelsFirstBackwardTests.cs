// The CPU channels-first LayerNorm backward (per-pixel normalisation over C of an NCHW tensor) through its three
// paths: the per-plane vector kernels dividing by C in every plane (the old dx pass), the same with the per-position
// means over C taken once per image (CpuBackend.LayerNormChannelsFirstMeansOnce), and the scalar small-map path
// (CpuBackend.LayerNormChannelsFirstSmallMapBelow), each against the float64 gradient (dx, dweight, dbias) and
// against each other, on odd channel counts, maps whose H*W is not a multiple of the vector width, 1x1 maps and batch
// 1. Outputs are NaN-poisoned before each kernel runs (set-up shared with the layout test: CpuLayerNormBackwardCase).
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.LayerNormChannelsFirstMeansOnce, LayerNormChannelsFirstSmallMapBelow, ...FlatBelow
public class CpuLayerNormChannelsFirstBackwardTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    [TestCase(1, 7, 1, 1)]
    [TestCase(5, 124, 2, 2)]
    [TestCase(1, 31, 3, 5)]
    [TestCase(4, 31, 8, 8)]
    [TestCase(3, 62, 4, 4)]
    [TestCase(2, 13, 16, 16)]
    public void EveryPathMatchesFloat64AndTheOthers(int n, int c, int h, int w)
    {
        var ln = CpuLayerNormBackwardCase.Draw(_rng, LayerNormOverChannels.ChannelsFirst, n, c, h, w, 1.2, 0.3);
        var (expected, edw, edb) = Float64Gradients(ln.X, ln.Weight, ln.Dy, n, c, h * w, 1e-6);
        float[]? previous = null;
        int keepSmall = CpuBackend.LayerNormChannelsFirstSmallMapBelow, keepFlat = CpuBackend.LayerNormChannelsFirstFlatBelow;
        try
        {
            CpuBackend.LayerNormBackwardPixelLanes = false; // the paths before it (CpuLayerNormBackwardPixelLanesTests)
            CpuBackend.LayerNormChannelsFirstFlatBelow = 0; // the flat path has its own tests (CpuLayerNormChannelsFirstFlatTests)
            foreach (var (once, small, name) in new[] { (false, 0, "planes, dividing"), (true, 0, "planes, means once"), (true, int.MaxValue, "small-map path") })
            {
                CpuBackend.LayerNormChannelsFirstMeansOnce = once;
                CpuBackend.LayerNormChannelsFirstSmallMapBelow = small;
                string what = $"LayerNorm channels-first backward {n}x{c}x{h}x{w} ({name})";
                var (got, dw, db) = ln.Backward();
                Expect.AllClose(got, expected, 1e-5, 1e-4, _rng.Ctx(what + ": dx vs float64"));
                Expect.AllClose(dw, edw, 1e-4, 1e-4, _rng.Ctx(what + ": dweight vs float64"));
                Expect.AllClose(db, edb, 1e-4, 1e-4, _rng.Ctx(what + ": dbias vs float64"));
                if (previous != null)
                    Expect.AllClose(got, previous.Select(v => (double)v).ToArray(), 1e-6, 1e-5, _rng.Ctx(what + ": dx vs the previous path"));
                previous = got;
            }
        }
        finally
        {
            CpuBackend.LayerNormBackwardPixelLanes = true;
            CpuBackend.LayerNormChannelsFirstMeansOnce = true;
            CpuBackend.LayerNormChannelsFirstSmallMapBelow = keepSmall;
            CpuBackend.LayerNormChannelsFirstFlatBelow = keepFlat;
        }
    }

    /// <summary>Gradients of y = (x - mu) * rs * w + b over C per pixel, in float64 (float64 statistics):
    /// dx = rs * (g*w - mean(g*w) - xhat * mean(g*w*xhat)), dweight = sum(g * xhat), dbias = sum(g).</summary>
    internal static (double[] Dx, double[] Dw, double[] Db) Float64Gradients(float[] x, float[] w, float[] dy, int n, int c, int hw, double eps)
    {
        var dx = new double[x.Length];
        var dw = new double[c];
        var db = new double[c];
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
                    dw[ch] += dy[i] * (x[i] - mu) * rs;
                    db[ch] += dy[i];
                }
                ma /= c;
                mb /= c;
                for (int ch = 0; ch < c; ch++)
                {
                    int i = (img * c + ch) * hw + p;
                    dx[i] = rs * (dy[i] * (double)w[ch] - ma - (x[i] - mu) * rs * mb);
                }
            }
        return (dx, dw, db);
    }
}
