// LayerNorm over the channels of an NCHW map written channels-last (F.LayerNormToChannelsLast, the SLaK block's
// permute + norm as one operator): output and saved statistics against the float64 reference of permute + LayerNorm,
// the backend kernels with NaN-poisoned outputs, gradients against finite differences, agreement with the unfused
// F.ToChannelsLast + F.LayerNorm path, and bit-for-bit repeatability.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class NormLayoutOpTests(string device) : DeviceTest(device)
{
    private static float[] F32(RefTensor r) => r.Data.Select(v => (float)v).ToArray();

    private static RefTensor Reference(RefTensor x, RefTensor w, RefTensor b, double eps) =>
        Support.Reference.LayerNorm(Support.Reference.Permute(x, 0, 2, 3, 1), w, b, eps);

    // Tiles of 16 pixels: maps smaller and larger than a tile, tiles that cross images, one channel, 1x1 maps.
    [TestCase(1, 1, 1, 1)]
    [TestCase(2, 3, 4, 5)]
    [TestCase(3, 96, 7, 9)]
    [TestCase(5, 33, 1, 1)]
    [TestCase(2, 20, 3, 11)]
    [TestCase(8, 64, 8, 8)]
    public void ForwardAndKernelMatchFloat64(int n, int c, int h, int w)
    {
        var (x, rx) = RandN([n, c, h, w], 2, -0.3);
        var (wt, rw) = RandN([c]);
        var (b, rb) = RandN([c]);
        const float eps = 1e-6f;
        var expected = Reference(rx, rw, rb, eps);
        string shape = $"{n}x{c}x{h}x{w}";
        Expect.AllClose(F.LayerNormToChannelsLast(x, wt, b, eps), expected, 2e-5, 1e-4, Ctx($"LayerNormToChannelsLast {shape}"));
        int pixels = n * h * w;
        var y = Poisoned(n, h, w, c);
        var mean = Poisoned(pixels);
        var rstd = Poisoned(pixels);
        x.Backend.LayerNormNchwToNhwc(x, wt, b, eps, y, mean, rstd);
        Expect.AllClose(y, expected, 2e-5, 1e-4, Ctx($"IBackend.LayerNormNchwToNhwc {shape}"));
        var nhwc = Support.Reference.Permute(rx, 0, 2, 3, 1);
        var em = new double[pixels];
        var er = new double[pixels];
        for (int q = 0; q < pixels; q++)
        {
            double mu = 0, v = 0;
            for (int j = 0; j < c; j++) mu += nhwc.Data[q * c + j];
            mu /= c;
            for (int j = 0; j < c; j++) v += (nhwc.Data[q * c + j] - mu) * (nhwc.Data[q * c + j] - mu);
            em[q] = mu;
            er[q] = 1 / Math.Sqrt(v / c + eps);
        }
        Expect.AllClose(mean.ToArray(), em, 1e-6, 1e-5, Ctx("saved mean (NHWC pixel order)"));
        Expect.AllClose(rstd.ToArray(), er, 1e-6, 1e-4, Ctx("saved 1/std (biased variance + eps)"));
    }

    [TestCase(2, 3, 2, 3)]
    [TestCase(1, 5, 1, 1)]
    [TestCase(2, 2, 3, 7)]
    public void GradientMatchesFiniteDifferences(int n, int c, int h, int w)
    {
        var rx = RefTensor.From(Rng.NormalArray(n * c * h * w, 1.5), [n, c, h, w]);
        GradCheck.Check(Dev, Rng, $"LayerNormToChannelsLast {n}x{c}x{h}x{w}",
            [new("x", F32(rx), [n, c, h, w]), new("weight", Rng.NormalArray(c), [c]), new("bias", Rng.NormalArray(c), [c])],
            t => F.LayerNormToChannelsLast(t[0], t[1], t[2], 1e-5f), r => Reference(r[0], r[1], r[2], 1e-5));
    }

    [Test]
    public void BackwardKernelWritesEverything()
    {
        const int n = 2, c = 5, h = 3, w = 7;
        var (x, rx) = RandN([n, c, h, w]);
        var (wt, rw) = RandN([c]);
        var (b, rb) = RandN([c]);
        var mean = Poisoned(n * h * w);
        var rstd = Poisoned(n * h * w);
        x.Backend.LayerNormNchwToNhwc(x, wt, b, 1e-5f, Poisoned(n, h, w, c), mean, rstd);
        var (dy, rdy) = RandN([n, h, w, c]);
        var dx = Poisoned(n, c, h, w);
        var dw = Poisoned(c);
        var db = Poisoned(c);
        x.Backend.LayerNormNchwToNhwcBackward(x, wt, mean, rstd, dy, dx, dw, db);
        Func<RefTensor[], RefTensor> f = r => Reference(r[0], r[1], r[2], 1e-5);
        RefTensor[] refs = [rx, rw, rb];
        Expect.AllClose(dx.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 0), 1e-4, 1e-3, Ctx("dx (NCHW)"));
        Expect.AllClose(dw.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 1), 1e-4, 1e-3, Ctx("dweight"));
        Expect.AllClose(db.ToArray(), GradCheck.NumericVjp(f, refs, rdy.Data, 2), 1e-4, 1e-3, Ctx("dbias"));
    }

    // The fused operator against the permute + last-dimension LayerNorm it replaces in the block, forward and all
    // three gradients (float32 both; they differ only in summation order).
    [TestCase(4, 64, 8, 8)]
    [TestCase(16, 40, 2, 2)]
    public void MatchesUnfusedPermuteAndLayerNorm(int n, int c, int h, int w)
    {
        var (fused, fusedGrads) = RunWithGradients(n, c, h, w, (x, wt, b) => F.LayerNormToChannelsLast(x, wt, b, 1e-6f), 7);
        var (plain, plainGrads) = RunWithGradients(n, c, h, w, (x, wt, b) => F.LayerNorm(F.ToChannelsLast(x), wt, b, 1e-6f), 7);
        Expect.AllClose(fused, plain.Select(v => (double)v).ToArray(), 1e-5, 1e-4, Ctx("forward: fused vs permute + LayerNorm"));
        string[] names = ["dx", "dweight", "dbias"];
        for (int k = 0; k < 3; k++)
            Expect.AllClose(fusedGrads[k], plainGrads[k].Select(v => (double)v).ToArray(), 1e-4, 1e-3,
                Ctx($"{names[k]}: fused vs permute + LayerNorm"));
    }

    [Test]
    public void RepeatsBitForBit()
    {
        // 8 x 64 x 8 x 8 is large enough to split into several row blocks on more than one thread.
        var (y1, g1) = RunWithGradients(8, 64, 8, 8, (x, wt, b) => F.LayerNormToChannelsLast(x, wt, b, 1e-6f), 11);
        var (y2, g2) = RunWithGradients(8, 64, 8, 8, (x, wt, b) => F.LayerNormToChannelsLast(x, wt, b, 1e-6f), 11);
        Expect.Exactly(y2, y1, Ctx("forward repeat"));
        for (int k = 0; k < 3; k++) Expect.Exactly(g2[k], g1[k], Ctx($"gradient {k} repeat"));
    }

    /// <summary>Forward output and (dx, dweight, dbias) of sum(op(x, w, b) * r) on inputs drawn from a generator seeded
    /// with <paramref name="seed"/> (the same inputs for every op with the same seed and shape).</summary>
    private (float[] Y, float[][] Grads) RunWithGradients(int n, int c, int h, int w, Func<Tensor, Tensor, Tensor, Tensor> op, int seed)
    {
        var rng = new Random(seed);
        float[] Draw(int count) => [.. Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 4 - 2))];
        using var scope = TensorScope.Begin();
        var x = T(Draw(n * c * h * w), n, c, h, w);
        var wt = T(Draw(c), c);
        var b = T(Draw(c), c);
        var r = T(Draw(n * h * w * c), n, h, w, c);
        x.RequiresGrad = wt.RequiresGrad = b.RequiresGrad = true;
        var y = op(x, wt, b);
        F.Sum(F.Mul(y, r)).Backward();
        return (y.ToArray(), [x.Grad!.ToArray(), wt.Grad!.ToArray(), b.Grad!.ToArray()]);
    }
}
