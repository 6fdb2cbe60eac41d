// Reference normalizations in float64: LayerNorm over the last dim and over channels (biased variance), and
// BatchNorm2d in training (batch statistics, running update with momentum and unbiased variance) and evaluation.
namespace Slak.Tests.Support;

public static partial class Reference
{
    /// <summary>LayerNorm over the last dimension.</summary>
    public static RefTensor LayerNorm(RefTensor x, RefTensor weight, RefTensor bias, double eps)
    {
        int c = x.Size(-1), rows = x.Length / c;
        var y = new RefTensor(x.Shape);
        for (int r = 0; r < rows; r++)
        {
            double mu = 0, v = 0;
            for (int j = 0; j < c; j++) mu += x[r * c + j];
            mu /= c;
            for (int j = 0; j < c; j++) v += (x[r * c + j] - mu) * (x[r * c + j] - mu);
            v /= c;
            for (int j = 0; j < c; j++) y[r * c + j] = (x[r * c + j] - mu) / Math.Sqrt(v + eps) * weight[j] + bias[j];
        }
        return y;
    }

    /// <summary>LayerNorm over C of (N, C, H, W), per pixel.</summary>
    public static RefTensor LayerNormChannelsFirst(RefTensor x, RefTensor weight, RefTensor bias, double eps)
    {
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        var y = new RefTensor(x.Shape);
        for (int b = 0; b < n; b++)
            for (int r = 0; r < h; r++)
                for (int q = 0; q < w; q++)
                {
                    double mu = 0, v = 0;
                    for (int ch = 0; ch < c; ch++) mu += x[b, ch, r, q];
                    mu /= c;
                    for (int ch = 0; ch < c; ch++) v += (x[b, ch, r, q] - mu) * (x[b, ch, r, q] - mu);
                    v /= c;
                    for (int ch = 0; ch < c; ch++)
                        y[b, ch, r, q] = (x[b, ch, r, q] - mu) / Math.Sqrt(v + eps) * weight[ch] + bias[ch];
                }
        return y;
    }

    /// <summary>Per-channel batch mean and biased variance over (N, H, W).</summary>
    public static (double[] Mean, double[] Var) ChannelStats(RefTensor x)
    {
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3), count = n * h * w;
        var mean = new double[c];
        var variance = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            double s = 0;
            for (int b = 0; b < n; b++) for (int r = 0; r < h; r++) for (int q = 0; q < w; q++) s += x[b, ch, r, q];
            double mu = s / count, v = 0;
            for (int b = 0; b < n; b++) for (int r = 0; r < h; r++) for (int q = 0; q < w; q++) v += (x[b, ch, r, q] - mu) * (x[b, ch, r, q] - mu);
            mean[ch] = mu;
            variance[ch] = v / count;
        }
        return (mean, variance);
    }

    /// <summary>BatchNorm2d with given per-channel statistics: (x - mean) / sqrt(var + eps) * w + b.</summary>
    public static RefTensor BatchNormWith(RefTensor x, double[] mean, double[] variance, RefTensor weight, RefTensor bias, double eps)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(variance);
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        var y = new RefTensor(x.Shape);
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
                for (int r = 0; r < h; r++)
                    for (int q = 0; q < w; q++)
                        y[b, ch, r, q] = (x[b, ch, r, q] - mean[ch]) / Math.Sqrt(variance[ch] + eps) * weight[ch] + bias[ch];
        return y;
    }

    /// <summary>Training BatchNorm2d output (batch statistics).</summary>
    public static RefTensor BatchNormTrain(RefTensor x, RefTensor weight, RefTensor bias, double eps)
    {
        var (mean, variance) = ChannelStats(x);
        return BatchNormWith(x, mean, variance, weight, bias, eps);
    }

    /// <summary>Running statistics after one training step (PyTorch: unbiased variance, momentum on the new
    /// value).</summary>
    public static (double[] Mean, double[] Var) RunningUpdate(RefTensor x, double[] runMean, double[] runVar, double momentum)
    {
        ArgumentNullException.ThrowIfNull(runMean);
        ArgumentNullException.ThrowIfNull(runVar);
        var (mean, variance) = ChannelStats(x);
        int count = x.Size(0) * x.Size(2) * x.Size(3);
        var m = new double[mean.Length];
        var v = new double[mean.Length];
        for (int c = 0; c < mean.Length; c++)
        {
            m[c] = (1 - momentum) * runMean[c] + momentum * mean[c];
            v[c] = (1 - momentum) * runVar[c] + momentum * variance[c] * count / (count - 1);
        }
        return (m, v);
    }
}
