// BatchNorm2d in training with statistics over the global batch, as the reference's nn.SyncBatchNorm (slak-facts §1):
// forward sums each channel's values and squares (float64) on every rank, adds them over the ranks in rank order, and
// normalises with the global mean and biased variance; the running buffers are updated with the global mean and
// unbiased variance. Backward adds the per-channel sums of dy and dy * xhat over the ranks for the input gradient;
// the weight and bias gradients stay this rank's sums (the gradient all-reduce averages them, as DDP does). The ranks
// call it in the same order because every rank runs the same graph.
// Two implementations:
//   - cpu ranks: on the host in float64 (one download and upload of the activations: free on the CPU);
//   - cuda (and cuda-emu) ranks: on the device, composed from the backend's kernels (channel sums, BatchNorm's eval
//     kernel as a per-channel affine map), with only the per-channel statistics exchanged through the job's
//     ITensorCollective: device buffers with NCCL, a download of 2C values otherwise. Statistics take two passes (the
//     global mean, then the centred squares: two exchanges), as the single-process kernels do, in float32.
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
        if (x.Device.IsCudaBackend) return DeviceForward(dp, x, weight, bias, runningMean, runningVar, momentum, eps);
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

    /// <summary>The device implementation (cuda ranks): statistics and normalisation on the device, the per-channel
    /// sums exchanged through <see cref="DataParallel.Tensors"/>.</summary>
    private static Tensor DeviceForward(DataParallel dp, Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                                        float momentum, float eps)
    {
        int c = x.Size(1);
        double m = (double)x.Size(0) * x.Size(2) * x.Size(3) * dp.Size; // every rank trains on an equal part
        if (m < 2) throw new ArgumentException($"SyncBatchNorm: training needs more than one value per channel over all ranks, got {m}", nameof(x));
        var be = x.Backend;
        var device = x.Device;
        var collective = dp.Tensors;
        // Pass 1: the global mean.
        var mean = Tensor.Empty([c], device);
        ChannelSums(x, mean);
        collective.Sum(mean, "the SyncBatchNorm statistics (sums)");
        be.Scale(mean, (float)(1 / m), mean);
        // Pass 2: the global biased variance from the centred squares, d = x - mean (one rounding, as the kernels do).
        var variance = Tensor.Empty([c], device);
        var negMean = Tensor.Empty([c], device);
        be.Scale(mean, -1f, negMean);
        var centred = Tensor.Empty(x.Shape, device);
        be.Copy(x, centred);
        be.AddBiasChannels(centred, negMean);
        be.Mul(centred, centred, centred);
        ChannelSums(centred, variance);
        centred.Dispose();
        negMean.Dispose();
        collective.Sum(variance, "the SyncBatchNorm statistics (centred squares)");
        be.Scale(variance, (float)(1 / m), variance);
        // Running statistics: the global mean and unbiased variance.
        be.Scale(runningMean, 1 - momentum, runningMean);
        be.AddScaled(runningMean, mean, momentum);
        be.Scale(runningVar, 1 - momentum, runningVar);
        be.AddScaled(runningVar, variance, (float)(momentum * m / (m - 1)));
        // y = (x - mean) / sqrt(var + eps) * w + b: BatchNorm's eval kernel with the global statistics.
        var y = Tensor.Empty(x.Shape, device);
        be.BatchNormEval(x, weight, bias, mean, variance, eps, y);
        return AutogradEngine.Record(y, "SyncBatchNorm2d", [x, weight, bias], g =>
        {
            // 1/std per channel: the eval kernel on a (1, C, 1, 1) tensor of ones with zero mean, unit weight, no bias.
            var ones = Tensor.Ones([c], device);
            var zeros = Tensor.Zeros([c], device);
            var invStd = Tensor.Empty([1, c, 1, 1], device);
            be.BatchNormEval(Tensor.Ones([1, c, 1, 1], device), ones, zeros, zeros, variance, eps, invStd);
            // This rank's sums of dy and dy * xhat (the bias and weight gradients), then their sums over the ranks.
            var sums = Tensor.Empty([2 * c], device);
            var sumDy = sums.SliceBatch(0, c);
            var sumDyXhat = sums.SliceBatch(c, c);
            var xhat = Tensor.Empty(x.Shape, device);
            be.BatchNormEval(x, ones, zeros, mean, variance, eps, xhat);
            be.Mul(xhat, g, xhat);
            ChannelSums(xhat, sumDyXhat);
            xhat.Dispose();
            ChannelSums(g, sumDy);
            var gw = Tensor.Empty([c], device);
            var gb = Tensor.Empty([c], device);
            be.Copy(sumDyXhat, gw);
            be.Copy(sumDy, gb);
            collective.Sum(sums, "the SyncBatchNorm gradient sums");
            // dx = w*inv*dy - w*inv*sum(dy)/m - xhat * w*inv*sum(dy*xhat)/m, as two eval-kernel affine maps.
            var wInv = Tensor.Empty([c], device);
            be.Mul(weight, invStd, wInv);
            var shift = Tensor.Empty([c], device);
            be.Mul(wInv, sumDy, shift);
            be.Scale(shift, (float)(-1 / m), shift);
            var slope = Tensor.Empty([c], device);
            be.Mul(wInv, sumDyXhat, slope);
            be.Scale(slope, (float)(-1 / m), slope);
            var gx = Tensor.Empty(x.Shape, device);
            be.BatchNormEval(g, weight, shift, zeros, variance, eps, gx);
            var term = Tensor.Empty(x.Shape, device);
            be.BatchNormEval(x, slope, zeros, mean, variance, eps, term);
            be.Add(gx, term, gx);
            term.Dispose();
            return [gx, gw, gb];
        });
    }

    /// <summary>result[c] = sum over n, h, w of t[n, c, h, w].</summary>
    private static void ChannelSums(Tensor t, Tensor result)
    {
        var nhwc = Tensor.Empty([t.Size(0), t.Size(2), t.Size(3), t.Size(1)], t.Device);
        t.Backend.Permute(t, [0, 2, 3, 1], nhwc);
        t.Backend.SumToLastDim(nhwc, result);
        nhwc.Dispose();
    }
}
