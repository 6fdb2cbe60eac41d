// The CPU BatchNorm2d training forward and backward in one fork/join over channel ranges
// (CpuBackend.Norm.BatchChannels.cs), against float64 references (y, saved mean and 1/std, running mean and variance,
// dx, dweight, dbias) on slak_nano's and slak_nano64's stage shapes scaled down in batch, odd channel counts, 1x1 maps
// and batch 1; the same bits as the two-fork path it replaced (CpuBackend.BatchNormChannelParts = false, with the
// column sums' edge positions one by one: BatchNormColumnEdgeBlocks = false), from run to run, and at 1, 2 and 3
// threads (several channel ranges per thread). Outputs are NaN-poisoned before every call.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;
using static Slak.Tests.Support.CpuTensors;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.BatchNormChannelParts, BatchNormColumnEdgeBlocks, BatchNormSerialBelow and CpuParallel.Threads
public class CpuBatchNormChannelPartsTests
{
    private const float Momentum = 0.1f, Eps = 1e-5f;

    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    private sealed record Inputs(float[] X, float[] W, float[] B, float[] Dy, float[] RunMean, float[] RunVar, int N, int C, int Hw);

    private sealed record Outputs(float[] Y, float[] SaveMean, float[] SaveInv, float[] RunMean, float[] RunVar,
                                  float[] Dx, float[] Dw, float[] Db);

    private Inputs Make(int n, int c, int h, int w)
    {
        int numel = n * c * h * w;
        return new Inputs(_rng.NormalArray(numel, 1.3, 0.4), _rng.NormalArray(c), _rng.NormalArray(c, 0.2),
            _rng.NormalArray(numel), _rng.NormalArray(c, 0.1), _rng.NormalArray(c, 0.1, 1), n, c, h * w);
    }

    private static Outputs Run(Inputs a, int h, int w)
    {
        int[] shape = [a.N, a.C, h, w];
        var be = CpuBackend.Instance;
        var x = CpuCopy(a.X, shape);
        var wt = CpuCopy(a.W, a.C);
        var y = Nan(shape);
        var saveMean = Nan(a.C);
        var saveInv = Nan(a.C);
        var runMean = CpuCopy(a.RunMean, a.C);
        var runVar = CpuCopy(a.RunVar, a.C);
        be.BatchNormTrain(x, wt, CpuCopy(a.B, a.C), runMean, runVar, Momentum, Eps, y, saveMean, saveInv);
        var dx = Nan(shape);
        var dw = Nan(a.C);
        var db = Nan(a.C);
        be.BatchNormBackward(x, wt, saveMean, saveInv, CpuCopy(a.Dy, shape), dx, dw, db);
        return new Outputs(y.ToArray(), saveMean.ToArray(), saveInv.ToArray(), runMean.ToArray(), runVar.ToArray(),
            dx.ToArray(), dw.ToArray(), db.ToArray());
    }

    /// <summary>Every output in float64: batch statistics (two passes), the running update with the unbiased variance,
    /// y, and dx = w * inv / N * (N * dy - sum(dy) - xhat * sum(dy * xhat)), dweight = sum(dy * xhat), dbias = sum(dy).</summary>
    private static (double[] Y, double[] Mean, double[] Inv, double[] RunMean, double[] RunVar, double[] Dx, double[] Dw,
        double[] Db) Reference(Inputs a)
    {
        int n = a.N, c = a.C, hw = a.Hw;
        double count = (double)n * hw;
        var y = new double[a.X.Length];
        var dx = new double[a.X.Length];
        double[] mean = new double[c], inv = new double[c], rm = new double[c], rv = new double[c];
        double[] dw = new double[c], db = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            IEnumerable<int> Idx() => Enumerable.Range(0, n).SelectMany(img => Enumerable.Range((img * c + ch) * hw, hw));
            double m = Idx().Sum(i => (double)a.X[i]) / count;
            double v = Idx().Sum(i => (a.X[i] - m) * (a.X[i] - m)) / count;
            double iv = 1 / Math.Sqrt(v + Eps);
            mean[ch] = m;
            inv[ch] = iv;
            rm[ch] = (1 - (double)Momentum) * a.RunMean[ch] + Momentum * m;
            rv[ch] = (1 - (double)Momentum) * a.RunVar[ch] + Momentum * (count > 1 ? v * count / (count - 1) : v);
            double sdy = Idx().Sum(i => (double)a.Dy[i]);
            double sdyx = Idx().Sum(i => a.Dy[i] * (a.X[i] - m) * iv);
            db[ch] = sdy;
            dw[ch] = sdyx;
            foreach (int i in Idx())
            {
                double xhat = (a.X[i] - m) * iv;
                y[i] = xhat * a.W[ch] + a.B[ch];
                dx[i] = a.W[ch] * iv / count * (count * a.Dy[i] - sdy - xhat * sdyx);
            }
        }
        return (y, mean, inv, rm, rv, dx, dw, db);
    }

    private static void Check(Outputs o, Inputs a, string what, TestRandom rng)
    {
        var r = Reference(a);
        // y is O(1): float rounding of x - mean, the scale and the shift, about 1e-6; inv to 1 ulp.
        Expect.AllClose(o.Y, r.Y, 2e-5, 1e-5, rng.Ctx(what + ": y"));
        Expect.AllClose(o.SaveMean, r.Mean, 1e-6, 1e-6, rng.Ctx(what + ": saved mean"));
        Expect.AllClose(o.SaveInv, r.Inv, 1e-6, 1e-5, rng.Ctx(what + ": saved 1/std"));
        Expect.AllClose(o.RunMean, r.RunMean, 1e-6, 1e-6, rng.Ctx(what + ": running mean"));
        Expect.AllClose(o.RunVar, r.RunVar, 1e-6, 1e-5, rng.Ctx(what + ": running var"));
        // dx cancels three terms of O(|w| inv |dy|); sums over N*H*W values (up to ~3000 here) of O(1).
        Expect.AllClose(o.Dx, r.Dx, 5e-5, 1e-4, rng.Ctx(what + ": dx"));
        Expect.AllClose(o.Dw, r.Dw, 1e-4, 1e-5, rng.Ctx(what + ": dweight"));
        Expect.AllClose(o.Db, r.Db, 1e-4, 1e-5, rng.Ctx(what + ": dbias"));
    }

    private static void Same(Outputs o, Outputs e, string what, TestRandom rng)
    {
        Expect.Exactly(o.Y, e.Y, rng.Ctx(what + ": y"));
        Expect.Exactly(o.SaveMean, e.SaveMean, rng.Ctx(what + ": saved mean"));
        Expect.Exactly(o.SaveInv, e.SaveInv, rng.Ctx(what + ": saved 1/std"));
        Expect.Exactly(o.RunMean, e.RunMean, rng.Ctx(what + ": running mean"));
        Expect.Exactly(o.RunVar, e.RunVar, rng.Ctx(what + ": running var"));
        Expect.Exactly(o.Dx, e.Dx, rng.Ctx(what + ": dx"));
        Expect.Exactly(o.Dw, e.Dw, rng.Ctx(what + ": dweight"));
        Expect.Exactly(o.Db, e.Db, rng.Ctx(what + ": dbias"));
    }

    // slak_nano stages (8x8 .. 1x1), slak_nano64 stages (16x16 .. 2x2), batch scaled down; odd channels and maps,
    // 1x1 maps with fewer channels than a column block, batch 1.
    [TestCase(12, 31, 8, 8)]
    [TestCase(12, 62, 4, 4)]
    [TestCase(12, 124, 2, 2)]
    [TestCase(12, 249, 1, 1)]
    [TestCase(6, 31, 16, 16)]
    [TestCase(12, 249, 2, 2)]
    [TestCase(7, 13, 3, 5)]
    [TestCase(33, 5, 1, 1)]
    [TestCase(1, 3, 5, 5)]
    [TestCase(1, 37, 1, 1)]
    public void MatchesFloat64AndTheTwoForkPathBitForBit(int n, int c, int h, int w)
    {
        var a = Make(n, c, h, w);
        int keepThreads = CpuParallel.Threads, keepSerial = CpuBackend.BatchNormSerialBelow;
        try
        {
            foreach (bool serial in new[] { true, false })
            {
                CpuBackend.BatchNormSerialBelow = serial ? int.MaxValue : 1;
                string what = $"BatchNorm {n}x{c}x{h}x{w} ({(serial ? "serial" : "parallel")})";
                CpuBackend.BatchNormChannelParts = false;
                CpuBackend.BatchNormColumnEdgeBlocks = false;
                var old = Run(a, h, w);
                CpuBackend.BatchNormChannelParts = true;
                CpuBackend.BatchNormColumnEdgeBlocks = true;
                var fresh = Run(a, h, w);
                Check(fresh, a, what, _rng);
                Same(fresh, old, what + ", channel parts vs two forks", _rng);
                Same(Run(a, h, w), fresh, what + ", repeated", _rng);
                if (serial) continue;
                foreach (int threads in new[] { 1, 3 })
                {
                    CpuParallel.Threads = threads;
                    Same(Run(a, h, w), fresh, $"{what}, {threads} vs {keepThreads} threads", _rng);
                }
                CpuParallel.Threads = keepThreads;
            }
        }
        finally
        {
            CpuParallel.Threads = keepThreads;
            CpuBackend.BatchNormSerialBelow = keepSerial;
            CpuBackend.BatchNormChannelParts = true;
            CpuBackend.BatchNormColumnEdgeBlocks = true;
        }
    }
}
