// The CPU BatchNorm2d kernels on SLaK's map sizes (8x8 down to 1x1, batch past the serial threshold) through both
// the serial path and the image-group parallel path, against float64 references: training output, saved
// statistics, running-stat update, evaluation output, and the backward kernel against the analytic float64
// gradient. Outputs are NaN-poisoned before each kernel runs.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;
using static Slak.Tests.Support.CpuTensors;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.BatchNormSerialBelow for the duration of a test
public class CpuBatchNormTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    [TestCase(130, 37, 1, 1)]
    [TestCase(66, 19, 2, 2)]
    [TestCase(40, 31, 8, 8)]
    [TestCase(3, 5, 3, 3)]
    public void SerialAndParallelPathsMatchFloat64(int n, int c, int h, int w)
    {
        int saved = CpuBackend.BatchNormSerialBelow;
        try
        {
            foreach (bool serial in new[] { true, false })
            {
                CpuBackend.BatchNormSerialBelow = serial ? int.MaxValue : 1;
                Check(n, c, h, w, serial ? "serial" : "parallel");
            }
        }
        finally
        {
            CpuBackend.BatchNormSerialBelow = saved;
        }
    }

    private void Check(int n, int c, int h, int w, string path)
    {
        string what = $"BatchNorm {n}x{c}x{h}x{w} ({path})";
        var be = CpuBackend.Instance;
        var xd = _rng.NormalArray(n * c * h * w, 1.5, 0.3);
        var wd = _rng.NormalArray(c);
        var bd = _rng.NormalArray(c);
        var dyd = _rng.NormalArray(n * c * h * w);
        var rm0 = _rng.NormalArray(c);
        var rv0 = _rng.UniformArray(c, 0.5, 2);
        var x = CpuCopy(xd, n, c, h, w);
        var rx = RefTensor.From(x.ToArray(), n, c, h, w);
        var wt = CpuCopy(wd, c); var rw = RefTensor.From(wt.ToArray(), c);
        var bs = CpuCopy(bd, c); var rb = RefTensor.From(bs.ToArray(), c);
        var dy = CpuCopy(dyd, n, c, h, w);
        var dyF = dy.ToArray();
        const float eps = 1e-5f, momentum = 0.1f;

        var y = Nan(n, c, h, w);
        var saveMean = Nan(c);
        var saveInv = Nan(c);
        var runMean = CpuCopy(rm0, c);
        var runVar = CpuCopy(rv0, c);
        var rmF = rm0.Select(v => (double)v).ToArray();
        var rvF = rv0.Select(v => (double)v).ToArray();
        be.BatchNormTrain(x, wt, bs, runMean, runVar, momentum, eps, y, saveMean, saveInv);
        Expect.AllClose(y, Reference.BatchNormTrain(rx, rw, rb, eps), 2e-5, 1e-4, _rng.Ctx(what + ": y"));
        var (mean, variance) = Reference.ChannelStats(rx);
        Expect.AllClose(saveMean.ToArray(), mean, 1e-6, 1e-5, _rng.Ctx(what + ": saved mean"));
        Expect.AllClose(saveInv.ToArray(), variance.Select(v => 1 / Math.Sqrt(v + eps)).ToArray(), 1e-6, 1e-4, _rng.Ctx(what + ": saved 1/std"));
        var (em, ev) = Reference.RunningUpdate(rx, rmF, rvF, momentum);
        Expect.AllClose(runMean.ToArray(), em, 1e-6, 1e-5, _rng.Ctx(what + ": running mean"));
        Expect.AllClose(runVar.ToArray(), ev, 1e-6, 1e-5, _rng.Ctx(what + ": running var"));

        var ye = Nan(n, c, h, w);
        be.BatchNormEval(x, wt, bs, runMean, runVar, eps, ye);
        var em2 = runMean.ToArray().Select(v => (double)v).ToArray();
        var ev2 = runVar.ToArray().Select(v => (double)v).ToArray();
        Expect.AllClose(ye, Reference.BatchNormWith(rx, em2, ev2, rw, rb, eps), 1e-5, 1e-4, _rng.Ctx(what + ": eval y"));

        var dx = Nan(n, c, h, w);
        var dw = Nan(c);
        var db = Nan(c);
        be.BatchNormBackward(x, wt, saveMean, saveInv, dy, dx, dw, db);
        var (edx, edw, edb) = BackwardReference(rx, rw, dyF, mean, variance, eps);
        Expect.AllClose(dx.ToArray(), edx, 1e-5, 1e-4, _rng.Ctx(what + ": dx"));
        Expect.AllClose(dw.ToArray(), edw, 1e-4, 1e-4, _rng.Ctx(what + ": dweight"));
        Expect.AllClose(db.ToArray(), edb, 1e-4, 1e-4, _rng.Ctx(what + ": dbias"));
    }

    /// <summary>Training-mode BatchNorm gradients in float64: with xhat = (x - mean) * inv and M = N*H*W,
    /// dbias = sum(dy), dweight = sum(dy * xhat), dx = w * inv / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)).</summary>
    private static (double[] Dx, double[] Dw, double[] Db) BackwardReference(RefTensor x, RefTensor w, float[] dy,
        double[] mean, double[] variance, double eps)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3);
        double m = (double)n * hw;
        var dx = new double[x.Length];
        var dw = new double[c];
        var db = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            double inv = 1 / Math.Sqrt(variance[ch] + eps), sdy = 0, sdyx = 0;
            for (int img = 0; img < n; img++)
                for (int p = 0; p < hw; p++)
                {
                    int i = (img * c + ch) * hw + p;
                    sdy += dy[i];
                    sdyx += dy[i] * (x.Data[i] - mean[ch]) * inv;
                }
            dw[ch] = sdyx;
            db[ch] = sdy;
            for (int img = 0; img < n; img++)
                for (int p = 0; p < hw; p++)
                {
                    int i = (img * c + ch) * hw + p;
                    double xhat = (x.Data[i] - mean[ch]) * inv;
                    dx[i] = w[ch] * inv / m * (m * dy[i] - sdy - xhat * sdyx);
                }
        }
        return (dx, dw, db);
    }
}
