// BatchNorm2d in training with statistics over the global batch, as the reference's nn.SyncBatchNorm (slak-facts §1):
// forward sums each channel's values and squares (float64) on every rank, adds them over the ranks in rank order, and
// normalises with the global mean and biased variance; the running buffers are updated with the global mean and
// unbiased variance. Backward adds the per-channel sums of dy and dy * xhat over the ranks for the input gradient;
// the weight and bias gradients stay this rank's sums (the gradient all-reduce averages them, as DDP does). Computed
// on the host (one download and upload per call): correct on every backend, fast on none; a device kernel is left to
// the GPU work. The ranks call it in the same order because every rank runs the same graph.
using Slak.Autograd;

namespace Slak.Distributed;

/// <summary>Synchronised batch normalisation.</summary>
internal static class SyncBatchNorm
{
    /// <summary>Training-mode BatchNorm2d over (N, C, H, W) with statistics summed over the ranks of
    /// <paramref name="dp"/>.</summary>
    public static Tensor Forward(DataParallel dp, Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                                 float momentum, float eps)
    {
        ArgumentNullException.ThrowIfNull(dp);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(bias);
        ArgumentNullException.ThrowIfNull(runningMean);
        ArgumentNullException.ThrowIfNull(runningVar);
        if (x.Rank != 4) throw new ArgumentException($"SyncBatchNorm: x must be (N, C, H, W), got rank {x.Rank}", nameof(x));
        int n = x.Size(0), c = x.Size(1), plane = x.Size(2) * x.Size(3);
        var xs = x.ToArray();
        var stats = new double[2 * c + 1];
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
            {
                var v = xs.AsSpan((i * c + ch) * plane, plane);
                double s = 0, q = 0;
                foreach (float f in v) { s += f; q += (double)f * f; }
                stats[ch] += s;
                stats[c + ch] += q;
            }
        stats[2 * c] = (double)n * plane;
        dp.Sum(stats, "the SyncBatchNorm statistics");
        double m = stats[2 * c];
        if (m < 2) throw new ArgumentException($"SyncBatchNorm: training needs more than one value per channel over all ranks, got {m}", nameof(x));
        var mean = new float[c];
        var invStd = new float[c];
        var w = weight.ToArray();
        var b = bias.ToArray();
        var rm = runningMean.ToArray();
        var rv = runningVar.ToArray();
        for (int ch = 0; ch < c; ch++)
        {
            double mu = stats[ch] / m, variance = Math.Max(0, stats[c + ch] / m - mu * mu);
            mean[ch] = (float)mu;
            invStd[ch] = (float)(1 / Math.Sqrt(variance + eps));
            rm[ch] = (float)((1 - momentum) * rm[ch] + momentum * mu);
            rv[ch] = (float)((1 - momentum) * rv[ch] + momentum * variance * m / (m - 1));
        }
        runningMean.Backend.CopyFromHost(rm, runningMean);
        runningVar.Backend.CopyFromHost(rv, runningVar);
        var ys = new float[xs.Length];
        var xhat = new float[xs.Length];
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
            {
                int o = (i * c + ch) * plane;
                for (int k = 0; k < plane; k++)
                {
                    float h = (xs[o + k] - mean[ch]) * invStd[ch];
                    xhat[o + k] = h;
                    ys[o + k] = h * w[ch] + b[ch];
                }
            }
        var y = Tensor.FromArray(ys, x.ShapeArray, x.Device);
        return AutogradEngine.Record(y, "SyncBatchNorm2d", [x, weight, bias], g =>
        {
            var gs = g.ToArray();
            var sums = new double[2 * c];
            var gw = new float[c];
            var gb = new float[c];
            for (int i = 0; i < n; i++)
                for (int ch = 0; ch < c; ch++)
                {
                    int o = (i * c + ch) * plane;
                    double s = 0, sx = 0;
                    for (int k = 0; k < plane; k++) { s += gs[o + k]; sx += (double)gs[o + k] * xhat[o + k]; }
                    sums[ch] += s;
                    sums[c + ch] += sx;
                }
            for (int ch = 0; ch < c; ch++) { gb[ch] = (float)sums[ch]; gw[ch] = (float)sums[c + ch]; }
            dp.Sum(sums, "the SyncBatchNorm gradient sums");
            var gx = new float[gs.Length];
            for (int i = 0; i < n; i++)
                for (int ch = 0; ch < c; ch++)
                {
                    int o = (i * c + ch) * plane;
                    float scale = w[ch] * invStd[ch], meanG = (float)(sums[ch] / m), meanGx = (float)(sums[c + ch] / m);
                    for (int k = 0; k < plane; k++) gx[o + k] = scale * (gs[o + k] - meanG - xhat[o + k] * meanGx);
                }
            return [Tensor.FromArray(gx, x.ShapeArray, x.Device), Tensor.FromArray(gw, [c], x.Device), Tensor.FromArray(gb, [c], x.Device)];
        });
    }
}
