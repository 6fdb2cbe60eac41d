// BatchNorm2d training forward, evaluation and backward through the backend against float64 references at the shapes
// that break the CUDA kernels' chunked plan (norm.cu: float64 partials per (channel, chunk of 8192), plane segments
// with 128-bit accesses, a per-element path below 512-element planes): 1x1 planes, 7x7, odd planes that are not a
// multiple of 4 (misaligned segments), channels spanning several chunks, a plane longer than a chunk, and a mean 100
// times the spread (where sum x^2 - n mean^2 cancels). Outputs are NaN-poisoned; repeated runs agree bit for bit.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class BatchNormChunkedTests(string device) : DeviceTest(device)
{
    private static readonly object[] Shapes =
    [
        new object[] { 1, 3, 1, 1, 0.0, 1.0 },
        new object[] { 3, 5, 7, 7, 0.5, 2.0 },
        new object[] { 2, 4, 23, 29, -1.0, 0.7 },
        new object[] { 3, 2, 64, 48, 100.0, 1.0 },
        new object[] { 2, 2, 1, 9001, 3.0, 1.5 },
        new object[] { 200, 2, 7, 7, -100.0, 1.0 },
    ];

    private (Tensor Y, Tensor Mean, Tensor Inv, Tensor RunMean, Tensor RunVar) Train(Tensor x, Tensor w, Tensor b, float eps)
    {
        int c = x.Size(1);
        var y = Poisoned(x.ShapeArray);
        var mean = Poisoned(c);
        var inv = Poisoned(c);
        var runMean = Tensor.Zeros([c], Dev);
        var runVar = Tensor.Ones([c], Dev);
        x.Backend.BatchNormTrain(x, w, b, runMean, runVar, 0.1f, eps, y, mean, inv);
        return (y, mean, inv, runMean, runVar);
    }

    private (Tensor Dx, Tensor Dw, Tensor Db) Backward(Tensor x, Tensor w, Tensor mean, Tensor inv, Tensor dy)
    {
        int c = x.Size(1);
        var dx = Poisoned(x.ShapeArray);
        var dw = Poisoned(c);
        var db = Poisoned(c);
        x.Backend.BatchNormBackward(x, w, mean, inv, dy, dx, dw, db);
        return (dx, dw, db);
    }

    [TestCaseSource(nameof(Shapes))]
    [KernelParity("batchnorm_stats_partial_kernel", "batchnorm_stats_finalize_kernel", "batchnorm_affine_kernel",
                  "batchnorm_eval_coef_kernel", "batchnorm_bwd_partial_kernel", "batchnorm_bwd_finalize_kernel",
                  "batchnorm_bwd_dx_kernel")]
    public void TrainEvalAndBackwardMatchFloat64(int n, int c, int h, int w, double mu, double std)
    {
        string shape = $"{n}x{c}x{h}x{w}, x ~ N({mu}, {std})";
        var (x, rx) = RandN([n, c, h, w], std, mu);
        var (wt, rw) = RandN([c]);
        var (b, rb) = RandN([c]);
        var (dy, rdy) = RandN([n, c, h, w]);
        const float eps = 1e-5f;
        int count = n * h * w;

        var (y, mean, inv, runMean, runVar) = Train(x, wt, b, eps);
        Expect.AllClose(y, Reference.BatchNormTrain(rx, rw, rb, eps), 2e-5, 1e-4, Ctx($"train y {shape}"));
        var (em, ev) = Reference.ChannelStats(rx);
        Expect.AllClose(mean.ToArray(), em, 1e-6, 1e-6, Ctx($"saved mean {shape}"));
        Expect.AllClose(inv.ToArray(), ev.Select(v => 1 / Math.Sqrt(v + eps)).ToArray(), 1e-6, 1e-4, Ctx($"saved 1/std {shape}"));
        var (rm, rv) = Reference.RunningUpdate(rx, new double[c], Enumerable.Repeat(1.0, c).ToArray(), 0.1);
        Expect.AllClose(runMean.ToArray(), rm, 1e-6, 1e-5, Ctx($"running mean {shape}"));
        if (count > 1) Expect.AllClose(runVar.ToArray(), rv, 1e-6, 1e-5, Ctx($"running var {shape}"));

        var ye = Poisoned(n, c, h, w);
        x.Backend.BatchNormEval(x, wt, b, runMean, runVar, eps, ye);
        var rmF = runMean.ToArray().Select(v => (double)v).ToArray();
        var rvF = runVar.ToArray().Select(v => (double)v).ToArray();
        Expect.AllClose(ye, Reference.BatchNormWith(rx, rmF, rvF, rw, rb, eps), 2e-5, 1e-4, Ctx($"eval y {shape}"));

        var (dx, dw, db) = Backward(x, wt, mean, inv, dy);
        var (edx, edw, edb) = BackwardReference(rx, rw, rdy, em, ev, eps);
        Expect.AllClose(db.ToArray(), edb, 1e-4, 1e-5, Ctx($"dbias {shape}"));
        Expect.AllClose(dw.ToArray(), edw, 1e-3, 1e-4, Ctx($"dweight {shape}"));
        Expect.AllClose(dx, edx, 1e-4, 1e-3, Ctx($"dx {shape}"));
    }

    [Test]
    public void RepeatsBitForBit()
    {
        const int n = 3, c = 3, h = 61, w = 47;
        var (x, _) = RandN([n, c, h, w], 1, 5);
        var (wt, _) = RandN([c]);
        var (b, _) = RandN([c]);
        var (dy, _) = RandN([n, c, h, w]);
        var first = Train(x, wt, b, 1e-5f);
        var second = Train(x, wt, b, 1e-5f);
        Expect.Exactly(second.Y.ToArray(), first.Y.ToArray(), Ctx("y"));
        Expect.Exactly(second.Inv.ToArray(), first.Inv.ToArray(), Ctx("saved 1/std"));
        Expect.Exactly(second.RunVar.ToArray(), first.RunVar.ToArray(), Ctx("running var"));
        var g1 = Backward(x, wt, first.Mean, first.Inv, dy);
        var g2 = Backward(x, wt, first.Mean, first.Inv, dy);
        Expect.Exactly(g2.Dx.ToArray(), g1.Dx.ToArray(), Ctx("dx"));
        Expect.Exactly(g2.Dw.ToArray(), g1.Dw.ToArray(), Ctx("dweight"));
    }

    // dbias = sum dy, dweight = sum dy * xhat, dx = w / std * (dy - dbias / count - xhat * dweight / count).
    private static (RefTensor Dx, double[] Dw, double[] Db) BackwardReference(RefTensor x, RefTensor w, RefTensor dy,
                                                                              double[] mean, double[] variance, double eps)
    {
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), wd = x.Size(3), count = n * h * wd;
        var dw = new double[c];
        var db = new double[c];
        var dx = new RefTensor(x.Shape);
        for (int ch = 0; ch < c; ch++)
        {
            double inv = 1 / Math.Sqrt(variance[ch] + eps);
            for (int b = 0; b < n; b++) for (int r = 0; r < h; r++) for (int q = 0; q < wd; q++)
            {
                db[ch] += dy[b, ch, r, q];
                dw[ch] += dy[b, ch, r, q] * (x[b, ch, r, q] - mean[ch]) * inv;
            }
            for (int b = 0; b < n; b++) for (int r = 0; r < h; r++) for (int q = 0; q < wd; q++)
            {
                double xhat = (x[b, ch, r, q] - mean[ch]) * inv;
                dx[b, ch, r, q] = w[ch] * inv * (dy[b, ch, r, q] - db[ch] / count - xhat * dw[ch] / count);
            }
        }
        return (dx, dw, db);
    }
}
