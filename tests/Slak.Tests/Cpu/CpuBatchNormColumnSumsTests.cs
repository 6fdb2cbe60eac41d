// The CPU BatchNorm2d reductions summed down position columns in registers (CpuBackend.Norm.Columns.cs) against the
// image-group row sums they replaced and against float64 references, on the shapes where the column blocks have
// tails: channel counts and maps whose C*H*W is not a multiple of the block (2 vectors), 1x1 maps, batch 1, and rows
// shorter than one block. The column sums run every position over the images in one order, so training outputs and
// gradients are the same bits at 1, 2 and 3 threads. Outputs are NaN-poisoned before each kernel runs.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;
using static Slak.Tests.Support.CpuTensors;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.BatchNormColumnSums, BatchNormSerialBelow and CpuParallel.Threads
public class CpuBatchNormColumnSumsTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    private sealed record Outputs(float[] Y, float[] SaveMean, float[] SaveInv, float[] RunVar, float[] Dx, float[] Dw, float[] Db);

    private static Outputs Run(Tensor x, Tensor wt, Tensor bs, Tensor dy)
    {
        int c = x.Size(1);
        var be = CpuBackend.Instance;
        var y = Nan(x.ShapeArray);
        var saveMean = Nan(c);
        var saveInv = Nan(c);
        var runMean = Tensor.Zeros([c], Device.Cpu);
        var runVar = Tensor.Ones([c], Device.Cpu);
        be.BatchNormTrain(x, wt, bs, runMean, runVar, 0.1f, 1e-5f, y, saveMean, saveInv);
        var dx = Nan(x.ShapeArray);
        var dw = Nan(c);
        var db = Nan(c);
        be.BatchNormBackward(x, wt, saveMean, saveInv, dy, dx, dw, db);
        return new Outputs(y.ToArray(), saveMean.ToArray(), saveInv.ToArray(), runVar.ToArray(), dx.ToArray(), dw.ToArray(), db.ToArray());
    }

    private (Tensor X, Tensor W, Tensor B, Tensor Dy) Inputs(int n, int c, int h, int w)
    {
        var x = CpuCopy(_rng.NormalArray(n * c * h * w, 1.3, 0.4), n, c, h, w);
        var wt = CpuCopy(_rng.NormalArray(c), c);
        var bs = CpuCopy(_rng.NormalArray(c), c);
        var dy = CpuCopy(_rng.NormalArray(n * c * h * w), n, c, h, w);
        return (x, wt, bs, dy);
    }

    private static double[] D(float[] v) => v.Select(f => (double)f).ToArray();

    [TestCase(1, 7, 1, 1)]
    [TestCase(1, 3, 5, 5)]
    [TestCase(37, 37, 1, 1)]
    [TestCase(130, 249, 1, 1)]
    [TestCase(17, 19, 2, 2)]
    [TestCase(9, 31, 8, 8)]
    [TestCase(5, 13, 3, 7)]
    public void ColumnSumsAgreeWithGroupSumsAndFloat64(int n, int c, int h, int w)
    {
        var (x, wt, bs, dy) = Inputs(n, c, h, w);
        int saved = CpuBackend.BatchNormSerialBelow;
        try
        {
            foreach (bool serial in new[] { true, false })
            {
                CpuBackend.BatchNormSerialBelow = serial ? int.MaxValue : 1;
                string what = $"BatchNorm {n}x{c}x{h}x{w} ({(serial ? "serial" : "parallel")})";
                CpuBackend.BatchNormColumnSums = false;
                var rows = Run(x, wt, bs, dy);
                CpuBackend.BatchNormColumnSums = true;
                var cols = Run(x, wt, bs, dy);
                Expect.AllClose(cols.Y, D(rows.Y), 1e-5, 1e-5, _rng.Ctx(what + ": y"));
                Expect.AllClose(cols.SaveMean, D(rows.SaveMean), 1e-6, 1e-6, _rng.Ctx(what + ": saved mean"));
                Expect.AllClose(cols.SaveInv, D(rows.SaveInv), 1e-6, 1e-5, _rng.Ctx(what + ": saved 1/std"));
                Expect.AllClose(cols.RunVar, D(rows.RunVar), 1e-6, 1e-5, _rng.Ctx(what + ": running var"));
                Expect.AllClose(cols.Dx, D(rows.Dx), 1e-5, 1e-4, _rng.Ctx(what + ": dx"));
                Expect.AllClose(cols.Dw, D(rows.Dw), 1e-5, 1e-5, _rng.Ctx(what + ": dweight"));
                Expect.AllClose(cols.Db, D(rows.Db), 1e-5, 1e-5, _rng.Ctx(what + ": dbias"));
                // Against float64: the parameter gradients' sums (the column sums' direct outputs).
                var (edw, edb) = ParameterGradients(x.ToArray(), dy.ToArray(), n, c, h * w);
                Expect.AllClose(cols.Dw, edw, 1e-4, 1e-4, _rng.Ctx(what + ": dweight vs float64"));
                Expect.AllClose(cols.Db, edb, 1e-4, 1e-4, _rng.Ctx(what + ": dbias vs float64"));
            }
        }
        finally
        {
            CpuBackend.BatchNormSerialBelow = saved;
            CpuBackend.BatchNormColumnSums = true;
        }
    }

    [Test]
    public void SameBitsAtOneTwoAndThreeThreads()
    {
        var (x, wt, bs, dy) = Inputs(40, 31, 8, 8);
        int keep = CpuParallel.Threads, saved = CpuBackend.BatchNormSerialBelow;
        try
        {
            CpuBackend.BatchNormSerialBelow = 1;
            CpuParallel.Threads = 1;
            var one = Run(x, wt, bs, dy);
            foreach (int threads in new[] { 2, 3 })
            {
                CpuParallel.Threads = threads;
                var o = Run(x, wt, bs, dy);
                Expect.Exactly(o.Y, one.Y, _rng.Ctx($"y, {threads} vs 1 threads"));
                Expect.Exactly(o.SaveInv, one.SaveInv, _rng.Ctx($"saved 1/std, {threads} vs 1 threads"));
                Expect.Exactly(o.Dx, one.Dx, _rng.Ctx($"dx, {threads} vs 1 threads"));
                Expect.Exactly(o.Dw, one.Dw, _rng.Ctx($"dweight, {threads} vs 1 threads"));
                Expect.Exactly(o.Db, one.Db, _rng.Ctx($"dbias, {threads} vs 1 threads"));
            }
        }
        finally
        {
            CpuParallel.Threads = keep;
            CpuBackend.BatchNormSerialBelow = saved;
        }
    }

    /// <summary>dweight = sum(dy * xhat), dbias = sum(dy) per channel in float64, with the float64 batch statistics.</summary>
    private static (double[] Dw, double[] Db) ParameterGradients(float[] x, float[] dy, int n, int c, int hw)
    {
        var dw = new double[c];
        var db = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            double s = 0, sq = 0, m = (double)n * hw;
            for (int img = 0; img < n; img++)
                for (int p = 0; p < hw; p++) s += x[(img * c + ch) * hw + p];
            double mean = s / m;
            for (int img = 0; img < n; img++)
                for (int p = 0; p < hw; p++) { double d = x[(img * c + ch) * hw + p] - mean; sq += d * d; }
            double inv = 1 / Math.Sqrt(sq / m + 1e-5);
            for (int img = 0; img < n; img++)
                for (int p = 0; p < hw; p++)
                {
                    int i = (img * c + ch) * hw + p;
                    dw[ch] += dy[i] * (x[i] - mean) * inv;
                    db[ch] += dy[i];
                }
        }
        return (dw, db);
    }
}
