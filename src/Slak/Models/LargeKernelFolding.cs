// Evaluation-mode folding of a SLaK large kernel, on the host in float64 (ReparamLargeKernelConv's folded inference
// path and the ONNX export both use it): each branch b (K x N, N x K, N x N or K x K) with its eval
// BatchNorm is the convolution with w_b * m_b * gamma_b / sqrt(var_b + eps_b) plus the per-channel shift
// beta_b - mean_b * gamma_b / sqrt(var_b + eps_b), where m_b is the sparse mask when one is bound (pruned taps become
// exact zeros). Since every branch pads "same" (kh / 2, kw / 2) with odd sizes, the sum of the branches is ONE
// depthwise convolution whose kernel is the union (max kh x max kw) with each branch centred in it.
namespace Slak.Models;

/// <summary>One folded depthwise convolution: weight (C, 1, Kh, Kw) and an optional per-channel bias.</summary>
/// <param name="Channels">C.</param>
/// <param name="KernelHeight">Kh.</param>
/// <param name="KernelWidth">Kw.</param>
/// <param name="Weight">C * Kh * Kw values, row-major.</param>
/// <param name="Bias">C values, or null when the branch has no BatchNorm.</param>
internal sealed record FoldedDepthwise(int Channels, int KernelHeight, int KernelWidth, float[] Weight, float[]? Bias);

/// <summary>Folds BatchNorms and masks into the branches of a large kernel and merges them.</summary>
internal static class LargeKernelFolding
{
    /// <summary>Each branch on its own, BatchNorm and mask folded in (state_dict order).</summary>
    public static FoldedDepthwise[] FoldBranches(ReparamLargeKernelConv lk)
    {
        ArgumentNullException.ThrowIfNull(lk);
        return [.. lk.Branches.Select(FoldBranch)];
    }

    /// <summary>The union kernel: the sum of every folded branch as one depthwise convolution (bias = the sum of
    /// the branch shifts, null when no branch has a BatchNorm).</summary>
    public static FoldedDepthwise Merge(ReparamLargeKernelConv lk)
    {
        var parts = FoldBranches(lk);
        int c = parts[0].Channels;
        int kh = parts.Max(p => p.KernelHeight), kw = parts.Max(p => p.KernelWidth);
        var w = new double[(long)c * kh * kw];
        double[]? bias = null;
        foreach (var p in parts)
        {
            int oy = (kh - p.KernelHeight) / 2, ox = (kw - p.KernelWidth) / 2;
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < p.KernelHeight; y++)
                    for (int x = 0; x < p.KernelWidth; x++)
                        w[((long)ch * kh + oy + y) * kw + ox + x] +=
                            p.Weight[((long)ch * p.KernelHeight + y) * p.KernelWidth + x];
            if (p.Bias is null) continue;
            bias ??= new double[c];
            for (int ch = 0; ch < c; ch++) bias[ch] += p.Bias[ch];
        }
        var weight = new float[w.Length];
        for (long i = 0; i < w.Length; i++) weight[i] = (float)w[i];
        return new FoldedDepthwise(c, kh, kw, weight, bias is null ? null : Array.ConvertAll(bias, v => (float)v));
    }

    private static FoldedDepthwise FoldBranch(ConvBn branch)
    {
        var conv = branch.Conv;
        int c = conv.Channels, kh = conv.KernelHeight, kw = conv.KernelWidth, taps = kh * kw;
        var w = conv.Weight.ToArray();
        var mask = conv.WeightMask?.ToArray();
        var scale = new double[c];
        float[]? bias = null;
        if (branch.Bn is { } bn)
        {
            var gamma = bn.Weight.ToArray();
            var beta = bn.Bias.ToArray();
            var mean = bn.RunningMean.ToArray();
            var variance = bn.RunningVar.ToArray();
            bias = new float[c];
            for (int ch = 0; ch < c; ch++)
            {
                scale[ch] = gamma[ch] / Math.Sqrt((double)variance[ch] + bn.Eps);
                bias[ch] = (float)(beta[ch] - mean[ch] * scale[ch]);
            }
        }
        else
        {
            Array.Fill(scale, 1.0);
        }
        var folded = new float[w.Length];
        for (int ch = 0; ch < c; ch++)
            for (int t = 0; t < taps; t++)
            {
                int i = ch * taps + t;
                folded[i] = mask is not null && mask[i] == 0 ? 0f : (float)(w[i] * scale[ch]);
            }
        return new FoldedDepthwise(c, kh, kw, folded, bias);
    }
}
