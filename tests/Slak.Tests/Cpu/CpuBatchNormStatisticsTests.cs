// The CPU training BatchNorm's one-pass statistics (sum and sum of squares from one read of x) against float64
// references, on data whose mean is far from zero relative to its spread (where E[x^2] - mean^2 cancels), through the
// serial and the image-group parallel paths; against the two-pass statistics it replaced; and bit-for-bit repeatable
// for a thread count. Outputs are NaN-poisoned before each kernel runs.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;
using static Slak.Tests.Support.CpuTensors;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.BatchNormSerialBelow, BatchNormOnePassStatistics and CpuParallel.Threads
public class CpuBatchNormStatisticsTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    // (mean, std) of the input: centred, and |mean| / std = 100 (the output's own float mean rounding limits the ratio
    // the float64 reference can check at these tolerances).
    [TestCase(130, 37, 1, 1, 0.0, 1.5)]
    [TestCase(66, 19, 2, 2, 50.0, 0.5)]
    [TestCase(40, 31, 8, 8, -8.0, 0.08)]
    public void OnePassStatisticsMatchFloat64(int n, int c, int h, int w, double mean, double std)
    {
        int saved = CpuBackend.BatchNormSerialBelow;
        try
        {
            foreach (bool serial in new[] { true, false })
            {
                CpuBackend.BatchNormSerialBelow = serial ? int.MaxValue : 1;
                string what = $"BatchNorm {n}x{c}x{h}x{w}, x ~ N({mean}, {std}) ({(serial ? "serial" : "parallel")})";
                var x = CpuCopy(_rng.NormalArray(n * c * h * w, std, mean), n, c, h, w);
                var rx = RefTensor.From(x.ToArray(), n, c, h, w);
                var wt = CpuCopy(_rng.NormalArray(c), c);
                var bs = CpuCopy(_rng.NormalArray(c), c);
                var rw = RefTensor.From(wt.ToArray(), c);
                var rb = RefTensor.From(bs.ToArray(), c);
                const float eps = 1e-5f;
                var (y, saveMean, saveInv, runMean, runVar) = Train(x, wt, bs, eps);
                Expect.AllClose(y, Reference.BatchNormTrain(rx, rw, rb, eps), 2e-5, 1e-4, _rng.Ctx(what + ": y"));
                var (em, ev) = Reference.ChannelStats(rx);
                Expect.AllClose(saveMean.ToArray(), em, 1e-6, 1e-5, _rng.Ctx(what + ": saved mean"));
                Expect.AllClose(saveInv.ToArray(), ev.Select(v => 1 / Math.Sqrt(v + eps)).ToArray(), 1e-6, 1e-4, _rng.Ctx(what + ": saved 1/std"));
                var (rm, rv) = Reference.RunningUpdate(rx, new double[c], Enumerable.Repeat(1.0, c).ToArray(), 0.1);
                Expect.AllClose(runMean.ToArray(), rm, 1e-6, 1e-5, _rng.Ctx(what + ": running mean"));
                Expect.AllClose(runVar.ToArray(), rv, 1e-6, 1e-5, _rng.Ctx(what + ": running var"));
            }
        }
        finally
        {
            CpuBackend.BatchNormSerialBelow = saved;
        }
    }

    [Test]
    public void OnePassAgreesWithTwoPass()
    {
        const int n = 64, c = 31, h = 8, w = 8;
        var x = CpuCopy(_rng.NormalArray(n * c * h * w, 2, 0.7), n, c, h, w);
        var wt = CpuCopy(_rng.NormalArray(c), c);
        var bs = CpuCopy(_rng.NormalArray(c), c);
        try
        {
            CpuBackend.BatchNormOnePassStatistics = false;
            var two = Train(x, wt, bs, 1e-5f);
            CpuBackend.BatchNormOnePassStatistics = true;
            var one = Train(x, wt, bs, 1e-5f);
            Expect.AllClose(one.Y.ToArray(), two.Y.ToArray().Select(v => (double)v).ToArray(), 1e-5, 1e-5, _rng.Ctx("y"));
            Expect.AllClose(one.SaveInv.ToArray(), two.SaveInv.ToArray().Select(v => (double)v).ToArray(), 1e-6, 1e-5, _rng.Ctx("saved 1/std"));
            Expect.Exactly(one.SaveMean.ToArray(), two.SaveMean.ToArray(), _rng.Ctx("saved mean (the same sums)"));
        }
        finally
        {
            CpuBackend.BatchNormOnePassStatistics = true;
        }
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void RepeatsBitForBitForAThreadCount(int threads)
    {
        const int n = 64, c = 31, h = 8, w = 8;
        var x = CpuCopy(_rng.NormalArray(n * c * h * w, 1, 0.2), n, c, h, w);
        var wt = CpuCopy(_rng.NormalArray(c), c);
        var bs = CpuCopy(_rng.NormalArray(c), c);
        int keep = CpuParallel.Threads;
        try
        {
            CpuParallel.Threads = threads;
            var a = Train(x, wt, bs, 1e-5f);
            var b = Train(x, wt, bs, 1e-5f);
            Expect.Exactly(b.Y.ToArray(), a.Y.ToArray(), _rng.Ctx($"y, {threads} threads"));
            Expect.Exactly(b.SaveInv.ToArray(), a.SaveInv.ToArray(), _rng.Ctx($"saved 1/std, {threads} threads"));
            Expect.Exactly(b.RunVar.ToArray(), a.RunVar.ToArray(), _rng.Ctx($"running var, {threads} threads"));
        }
        finally
        {
            CpuParallel.Threads = keep;
        }
    }

    private static (Tensor Y, Tensor SaveMean, Tensor SaveInv, Tensor RunMean, Tensor RunVar) Train(Tensor x, Tensor wt, Tensor bs, float eps)
    {
        int c = x.Size(1);
        var y = Nan(x.ShapeArray);
        var saveMean = Nan(c);
        var saveInv = Nan(c);
        var runMean = Tensor.Zeros([c], Device.Cpu);
        var runVar = Tensor.Ones([c], Device.Cpu);
        CpuBackend.Instance.BatchNormTrain(x, wt, bs, runMean, runVar, 0.1f, eps, y, saveMean, saveInv);
        return (y, saveMean, saveInv, runMean, runVar);
    }
}
