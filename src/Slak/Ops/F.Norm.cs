// Normalization operators: LayerNorm channels-last and channels-first (biased variance, eps passed explicitly;
// SLaK uses 1e-6) and BatchNorm2d (PyTorch semantics: batch statistics and running-stat update in training with
// unbiased running variance; running statistics in evaluation).
using Slak.Autograd;

namespace Slak;

public static partial class F
{
    /// <summary>LayerNorm over the last dimension: x (..., C), weight and bias (C).</summary>
    public static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps)
    {
        const string op = nameof(LayerNorm);
        Check.NotNull(x, op, nameof(x));
        if (x.Rank == 0) throw new ArgumentException($"{op}: x must have rank >= 1", nameof(x));
        int c = x.Size(-1);
        Check.Vector(op, weight, nameof(weight), c, x, nameof(x));
        Check.Vector(op, bias, nameof(bias), c, x, nameof(x));
        Check.Positive(eps, op, nameof(eps));
        int rows = checked((int)(x.Numel / Math.Max(c, 1)));
        var y = Like(x);
        var mean = Tensor.Empty([rows], x.Device);
        var rstd = Tensor.Empty([rows], x.Device);
        var be = x.Backend;
        be.LayerNormLastDim(x, weight, bias, eps, y, mean, rstd);
        return AutogradEngine.Record(y, op, [x, weight, bias], g =>
        {
            var gx = Like(x); var gw = Like(weight); var gb = Like(bias);
            be.LayerNormLastDimBackward(x, weight, mean, rstd, g, gx, gw, gb);
            return [gx, gw, gb];
        });
    }

    /// <summary>LayerNorm over the channels of an (N, C, H, W) tensor, independently per pixel (SLaK's
    /// "channels_first" LayerNorm of the stem and downsampling layers).</summary>
    public static Tensor LayerNormChannelsFirst(Tensor x, Tensor weight, Tensor bias, float eps)
    {
        const string op = nameof(LayerNormChannelsFirst);
        Check.Rank(x, 4, op, nameof(x), "(N, C, H, W)");
        int c = x.Size(1);
        Check.Vector(op, weight, nameof(weight), c, x, nameof(x));
        Check.Vector(op, bias, nameof(bias), c, x, nameof(x));
        Check.Positive(eps, op, nameof(eps));
        var y = Like(x);
        var mean = Tensor.Empty([x.Size(0), x.Size(2), x.Size(3)], x.Device);
        var rstd = Tensor.Empty([x.Size(0), x.Size(2), x.Size(3)], x.Device);
        var be = x.Backend;
        be.LayerNormChannelsFirst(x, weight, bias, eps, y, mean, rstd);
        return AutogradEngine.Record(y, op, [x, weight, bias], g =>
        {
            var gx = Like(x); var gw = Like(weight); var gb = Like(bias);
            be.LayerNormChannelsFirstBackward(x, weight, mean, rstd, g, gx, gw, gb);
            return [gx, gw, gb];
        });
    }

    /// <summary>BatchNorm2d over (N, C, H, W). In training, normalizes with batch statistics and updates the running
    /// buffers in place (momentum, unbiased variance); in evaluation uses the running buffers.</summary>
    public static Tensor BatchNorm2d(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                                     bool training, float momentum = 0.1f, float eps = 1e-5f)
    {
        const string op = nameof(BatchNorm2d);
        Check.Rank(x, 4, op, nameof(x), "(N, C, H, W)");
        int c = x.Size(1);
        Check.Vector(op, weight, nameof(weight), c, x, nameof(x));
        Check.Vector(op, bias, nameof(bias), c, x, nameof(x));
        Check.Vector(op, runningMean, nameof(runningMean), c, x, nameof(x));
        Check.Vector(op, runningVar, nameof(runningVar), c, x, nameof(x));
        Check.Positive(eps, op, nameof(eps));
        if (!(momentum >= 0 && momentum <= 1))
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, $"{op}: momentum must be in [0, 1]");
        var y = Like(x);
        var be = x.Backend;
        if (!training)
        {
            be.BatchNormEval(x, weight, bias, runningMean, runningVar, eps, y);
            return AutogradEngine.Record(y, op, [x, weight, bias], g =>
            {
                // With fixed running statistics BN is affine per channel: y = xhat * w + b with
                // xhat = (x - mean) / sqrt(var + eps). The same eval kernel computes both pieces:
                // dx = g * w / sqrt(var + eps) is BN-eval of g with zero mean and zero bias.
                var zeros = Tensor.Zeros([c], x.Device);
                var ones = Tensor.Ones([c], x.Device);
                var gx = Like(x);
                be.BatchNormEval(g, weight, zeros, zeros, runningVar, eps, gx);
                var xhatG = Like(x);
                be.BatchNormEval(x, ones, zeros, runningMean, runningVar, eps, xhatG);
                be.Mul(xhatG, g, xhatG);
                var gw = Like(weight); var gb = Like(bias);
                ChannelSums(be, xhatG, gw);
                ChannelSums(be, g, gb);
                xhatG.Dispose(); zeros.Dispose(); ones.Dispose();
                return [gx, gw, gb];
            });
        }
        if ((long)x.Size(0) * x.Size(2) * x.Size(3) < 2)
            throw new ArgumentException($"{op}: training needs more than one value per channel, got x {Shapes.Format(x.Shape)}", nameof(x));
        var saveMean = Tensor.Empty([c], x.Device);
        var saveInvStd = Tensor.Empty([c], x.Device);
        be.BatchNormTrain(x, weight, bias, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd);
        return AutogradEngine.Record(y, op, [x, weight, bias], g =>
        {
            var gx = Like(x); var gw = Like(weight); var gb = Like(bias);
            be.BatchNormBackward(x, weight, saveMean, saveInvStd, g, gx, gw, gb);
            return [gx, gw, gb];
        });
    }

    /// <summary>out[c] = sum over n, h, w of t[n, c, h, w].</summary>
    private static void ChannelSums(Backends.IBackend be, Tensor t, Tensor result)
    {
        var nhwc = Tensor.Empty([t.Size(0), t.Size(2), t.Size(3), t.Size(1)], t.Device);
        be.Permute(t, [0, 2, 3, 1], nhwc);
        be.SumToLastDim(nhwc, result);
        nhwc.Dispose();
    }
}
