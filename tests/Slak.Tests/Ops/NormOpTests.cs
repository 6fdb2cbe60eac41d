// Normalizations: LayerNorm over the last dim, LayerNorm over the channels of NCHW, and BatchNorm2d in training
// (output, saved statistics, running mean/var update with momentum and UNBIASED running variance) and evaluation,
// with gradients in both modes.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class NormOpTests(string device) : DeviceTest(device)
{
    private static float[] F32(RefTensor r) => r.Data.Select(v => (float)v).ToArray();

    private static readonly int[][] LastDimShapes = [[1, 1], [3, 1], [5, 7], [2, 3, 4, 13], [300, 124], [1, 998]];

    [TestCaseSource(nameof(LastDimShapes))]
    public void LayerNormForwardAndKernels(int[] shape)
    {
        int c = shape[^1];
        var (x, rx) = RandN(shape, 2, 0.5);
        var (w, rw) = RandN([c]);
        var (b, rb) = RandN([c]);
        const float eps = 1e-6f;
        var expected = Reference.LayerNorm(rx, rw, rb, eps);
        Expect.AllClose(F.LayerNorm(x, w, b, eps), expected, 2e-5, 1e-4, Ctx($"LayerNorm {Slak.Shapes.Format(shape)}"));
        int rows = rx.Length / c;
        var y = Poisoned(shape);
        var mean = Poisoned(rows);
        var rstd = Poisoned(rows);
        x.Backend.LayerNormLastDim(x, w, b, eps, y, mean, rstd);
        Expect.AllClose(y, expected, 2e-5, 1e-4, Ctx("IBackend.LayerNormLastDim"));
        var em = new double[rows];
        var er = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double mu = 0, v = 0;
            for (int j = 0; j < c; j++) mu += rx[r * c + j];
            mu /= c;
            for (int j = 0; j < c; j++) v += (rx[r * c + j] - mu) * (rx[r * c + j] - mu);
            em[r] = mu;
            er[r] = 1 / Math.Sqrt(v / c + eps);
        }
        Expect.AllClose(mean.ToArray(), em, 1e-6, 1e-5, Ctx("saved mean"));
        Expect.AllClose(rstd.ToArray(), er, 1e-6, 1e-4, Ctx("saved 1/std (biased variance + eps)"));
    }

    [TestCase(new[] { 3, 4 })]
    [TestCase(new[] { 2, 1, 3, 5 })]
    [TestCase(new[] { 2, 1 })]
    public void LayerNormGradient(int[] shape)
    {
        int c = shape[^1];
        GradCheck.Check(Dev, Rng, $"LayerNorm {Slak.Shapes.Format(shape)}",
            [new("x", Rng.NormalArray(RefTensor.Numel(shape), 1.5), shape), new("weight", Rng.NormalArray(c), [c]), new("bias", Rng.NormalArray(c), [c])],
            t => F.LayerNorm(t[0], t[1], t[2], 1e-5f), r => Reference.LayerNorm(r[0], r[1], r[2], 1e-5));
    }

    [TestCase(1, 1, 1, 1)]
    [TestCase(2, 3, 4, 5)]
    [TestCase(1, 1, 3, 3)]
    [TestCase(3, 96, 7, 9)]
    public void LayerNormChannelsFirstForwardKernelsAndGradient(int n, int c, int h, int w)
    {
        var (x, rx) = RandN([n, c, h, w], 2, -0.3);
        var (wt, rw) = RandN([c]);
        var (b, rb) = RandN([c]);
        const float eps = 1e-6f;
        var expected = Reference.LayerNormChannelsFirst(rx, rw, rb, eps);
        Expect.AllClose(F.LayerNormChannelsFirst(x, wt, b, eps), expected, 2e-5, 1e-4, Ctx($"LayerNormChannelsFirst {n}x{c}x{h}x{w}"));
        var y = Poisoned(n, c, h, w);
        x.Backend.LayerNormChannelsFirst(x, wt, b, eps, y, Poisoned(n, h, w), Poisoned(n, h, w));
        Expect.AllClose(y, expected, 2e-5, 1e-4, Ctx("IBackend.LayerNormChannelsFirst"));
        // Same math as LayerNorm on the NHWC permutation.
        var viaLast = Reference.Permute(Reference.LayerNorm(Reference.Permute(rx, 0, 2, 3, 1), rw, rb, eps), 0, 3, 1, 2);
        Expect.AllClose(F.LayerNormChannelsFirst(x, wt, b, eps), viaLast, 2e-5, 1e-4, Ctx("channels-first == permute + last-dim LayerNorm"));
        if (rx.Length > 150) return;
        GradCheck.Check(Dev, Rng, $"LayerNormChannelsFirst {n}x{c}x{h}x{w}",
            [new("x", F32(rx), [n, c, h, w]), new("weight", F32(rw), [c]), new("bias", F32(rb), [c])],
            t => F.LayerNormChannelsFirst(t[0], t[1], t[2], 1e-5f), r => Reference.LayerNormChannelsFirst(r[0], r[1], r[2], 1e-5));
    }

    [TestCase(2, 3, 4, 5)]
    [TestCase(1, 1, 1, 2)]
    [TestCase(4, 2, 1, 1)]
    [TestCase(8, 16, 7, 7)]
    public void BatchNormTrainingOutputSavedStatsAndRunningUpdate(int n, int c, int h, int w)
    {
        var (x, rx) = RandN([n, c, h, w], 1.7, 0.4);
        var (wt, rw) = RandN([c]);
        var (b, rb) = RandN([c]);
        var rm0 = Rng.NormalArray(c);
        var rv0 = Rng.UniformArray(c, 0.5, 2);
        var runMean = T((float[])rm0.Clone(), c);
        var runVar = T((float[])rv0.Clone(), c);
        const float momentum = 0.1f, eps = 1e-5f;
        var y = F.BatchNorm2d(x, wt, b, runMean, runVar, training: true, momentum, eps);
        string what = $"BatchNorm2d train {n}x{c}x{h}x{w}";
        Expect.AllClose(y, Reference.BatchNormTrain(rx, rw, rb, eps), 2e-5, 1e-4, Ctx(what));
        var (em, ev) = Reference.RunningUpdate(rx, rm0.Select(v => (double)v).ToArray(), rv0.Select(v => (double)v).ToArray(), momentum);
        Expect.AllClose(runMean.ToArray(), em, 1e-6, 1e-5, Ctx(what + ": running mean"));
        Expect.AllClose(runVar.ToArray(), ev, 1e-6, 1e-5, Ctx(what + ": running var (unbiased, momentum 0.1)"));

        var (mean, variance) = Reference.ChannelStats(rx);
        var yk = Poisoned(n, c, h, w);
        var saveMean = Poisoned(c);
        var saveInv = Poisoned(c);
        var rmK = T((float[])rm0.Clone(), c);
        var rvK = T((float[])rv0.Clone(), c);
        x.Backend.BatchNormTrain(x, wt, b, rmK, rvK, momentum, eps, yk, saveMean, saveInv);
        Expect.AllClose(yk, Reference.BatchNormTrain(rx, rw, rb, eps), 2e-5, 1e-4, Ctx("IBackend.BatchNormTrain"));
        Expect.AllClose(saveMean.ToArray(), mean, 1e-6, 1e-5, Ctx("saved batch mean"));
        Expect.AllClose(saveInv.ToArray(), variance.Select(v => 1 / Math.Sqrt(v + eps)).ToArray(), 1e-6, 1e-4, Ctx("saved 1/std (biased)"));
    }

    [Test]
    public void BatchNormEvalUsesRunningStatisticsAndLeavesThemAlone()
    {
        int n = Rng.Int(1, 3), c = Rng.Int(1, 5), h = Rng.Int(1, 4), w = Rng.Int(1, 4);
        var (x, rx) = RandN([n, c, h, w]);
        var (wt, rw) = RandN([c]);
        var (b, rb) = RandN([c]);
        var rm = Rng.NormalArray(c);
        var rv = Rng.UniformArray(c, 0.5, 2);
        var runMean = T(rm, c);
        var runVar = T(rv, c);
        var expected = Reference.BatchNormWith(rx, rm.Select(v => (double)v).ToArray(), rv.Select(v => (double)v).ToArray(), rw, rb, 1e-5);
        Expect.AllClose(F.BatchNorm2d(x, wt, b, runMean, runVar, training: false), expected, 1e-5, 1e-4, Ctx("BatchNorm2d eval"));
        Expect.Exactly(runMean.ToArray(), rm, Ctx("eval must not touch running mean"));
        Expect.Exactly(runVar.ToArray(), rv, Ctx("eval must not touch running var"));
        var y = Poisoned(n, c, h, w);
        x.Backend.BatchNormEval(x, wt, b, runMean, runVar, 1e-5f, y);
        Expect.AllClose(y, expected, 1e-5, 1e-4, Ctx("IBackend.BatchNormEval"));
    }

    [TestCase(2, 3, 3, 2)]
    [TestCase(3, 1, 1, 1)]
    [TestCase(1, 2, 2, 3)]
    public void BatchNormTrainingGradient(int n, int c, int h, int w)
    {
        GradCheck.Check(Dev, Rng, $"BatchNorm2d train {n}x{c}x{h}x{w}",
            [new("x", Rng.NormalArray(n * c * h * w, 1.3, 0.2), [n, c, h, w]), new("weight", Rng.NormalArray(c), [c]), new("bias", Rng.NormalArray(c), [c])],
            t => F.BatchNorm2d(t[0], t[1], t[2], Tensor.Zeros([c], Dev), Tensor.Ones([c], Dev), training: true),
            r => Reference.BatchNormTrain(r[0], r[1], r[2], 1e-5));
    }

    [TestCase(2, 3, 3, 2)]
    [TestCase(1, 1, 1, 1)]
    [KernelParity("batchnorm_eval_coef_kernel", "batchnorm_affine_kernel")]
    public void BatchNormEvalGradient(int n, int c, int h, int w)
    {
        var rm = Rng.NormalArray(c);
        var rv = Rng.UniformArray(c, 0.5, 2);
        GradCheck.Check(Dev, Rng, $"BatchNorm2d eval {n}x{c}x{h}x{w}",
            [new("x", Rng.NormalArray(n * c * h * w), [n, c, h, w]), new("weight", Rng.NormalArray(c), [c]), new("bias", Rng.NormalArray(c), [c])],
            t => F.BatchNorm2d(t[0], t[1], t[2], T(rm, c), T(rv, c), training: false),
            r => Reference.BatchNormWith(r[0], rm.Select(v => (double)v).ToArray(), rv.Select(v => (double)v).ToArray(), r[1], r[2], 1e-5));
    }

    [Test]
    [KernelParity("batchnorm_affine_kernel", "batchnorm_bwd_partial_kernel", "batchnorm_bwd_finalize_kernel", "batchnorm_bwd_dx_kernel", "batchnorm_stats_partial_kernel", "batchnorm_stats_finalize_kernel")]
    public void BatchNormBackwardKernelWritesEverything()
    {
        int n = 2, c = 3, h = 2, w = 3;
        var (x, rx) = RandN([n, c, h, w]);
        var (wt, rw) = RandN([c]);
        var (b, rb) = RandN([c]);
        var saveMean = Poisoned(c);
        var saveInv = Poisoned(c);
        x.Backend.BatchNormTrain(x, wt, b, Tensor.Zeros([c], Dev), Tensor.Ones([c], Dev), 0.1f, 1e-5f, Poisoned(n, c, h, w), saveMean, saveInv);
        var (dy, rdy) = RandN([n, c, h, w]);
        var dx = Poisoned(n, c, h, w);
        var dw = Poisoned(c);
        var db = Poisoned(c);
        x.Backend.BatchNormBackward(x, wt, saveMean, saveInv, dy, dx, dw, db);
        Func<RefTensor[], RefTensor> f = r => Reference.BatchNormTrain(r[0], r[1], r[2], 1e-5);
        RefTensor[] refs = [rx, rw, rb];
        Expect.AllClose(dx.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 0), 1e-4, 1e-3, Ctx("IBackend.BatchNormBackward dx"));
        Expect.AllClose(dw.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 1), 1e-4, 1e-3, Ctx("IBackend.BatchNormBackward dweight"));
        Expect.AllClose(db.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 2), 1e-4, 1e-3, Ctx("IBackend.BatchNormBackward dbias"));
    }

    [Test]
    [KernelParity("layernorm_rows128_bwd_kernel", "layernorm_param_finalize_kernel", "layernorm_cf_bwd_data_kernel", "layernorm_cf_bwd_param_partial_kernel", "layernorm_cf_fwd_kernel", "layernorm_rows128_fwd_kernel")]
    public void LayerNormBackwardKernelsWriteEverything()
    {
        int rows = 4, c = 5;
        var (x, rx) = RandN([rows, c]);
        var (w, rw) = RandN([c]);
        var (b, rb) = RandN([c]);
        var mean = Poisoned(rows);
        var rstd = Poisoned(rows);
        x.Backend.LayerNormLastDim(x, w, b, 1e-5f, Poisoned(rows, c), mean, rstd);
        var (dy, rdy) = RandN([rows, c]);
        var dx = Poisoned(rows, c);
        var dw = Poisoned(c);
        var db = Poisoned(c);
        x.Backend.LayerNormLastDimBackward(x, w, mean, rstd, dy, dx, dw, db);
        Func<RefTensor[], RefTensor> f = r => Reference.LayerNorm(r[0], r[1], r[2], 1e-5);
        RefTensor[] refs = [rx, rw, rb];
        Expect.AllClose(dx.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 0), 1e-4, 1e-3, Ctx("IBackend.LayerNormLastDimBackward dx"));
        Expect.AllClose(dw.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 1), 1e-4, 1e-3, Ctx("IBackend.LayerNormLastDimBackward dweight"));
        Expect.AllClose(db.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 2), 1e-4, 1e-3, Ctx("IBackend.LayerNormLastDimBackward dbias"));

        var (x4, rx4) = RandN([2, c, 2, 3]);
        var m4 = Poisoned(2, 2, 3);
        var r4 = Poisoned(2, 2, 3);
        x4.Backend.LayerNormChannelsFirst(x4, w, b, 1e-5f, Poisoned(2, c, 2, 3), m4, r4);
        var (dy4, rdy4) = RandN([2, c, 2, 3]);
        var dx4 = Poisoned(2, c, 2, 3);
        dw = Poisoned(c);
        db = Poisoned(c);
        x4.Backend.LayerNormChannelsFirstBackward(x4, w, m4, r4, dy4, dx4, dw, db);
        Func<RefTensor[], RefTensor> f4 = r => Reference.LayerNormChannelsFirst(r[0], r[1], r[2], 1e-5);
        RefTensor[] refs4 = [rx4, rw, rb];
        Expect.AllClose(dx4.ToArray(), GradCheck.NumericVjp(f4, refs4, rdy4.Data, 0), 1e-4, 1e-3, Ctx("IBackend.LayerNormChannelsFirstBackward dx"));
        Expect.AllClose(dw.ToArray(), GradCheck.NumericVjp(f4, refs4, rdy4.Data, 1), 1e-4, 1e-3, Ctx("IBackend.LayerNormChannelsFirstBackward dweight"));
        Expect.AllClose(db.ToArray(), GradCheck.NumericVjp(f4, refs4, rdy4.Data, 2), 1e-4, 1e-3, Ctx("IBackend.LayerNormChannelsFirstBackward dbias"));
    }
}
