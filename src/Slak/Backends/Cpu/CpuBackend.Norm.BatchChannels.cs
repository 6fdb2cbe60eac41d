// BatchNorm2d training forward and backward of the CPU backend in one fork/join each. The threads own ranges of whole
// channels, i.e. the same contiguous position range [c0 * H*W, c1 * H*W) of every image row: a thread sums its
// positions down the n images in registers (CpuBackend.Norm.Columns.cs), folds them into its channels' statistics (or
// gradient sums), updates its channels' running statistics (forward) or parameter gradients (backward), and then
// writes its positions of every image's output from the per-position scale rows it has just filled, re-reading inputs
// that it read itself a moment before (its own cache, not the other core's). The earlier path
// (CpuBackend.Norm.Batch.cs) ran the same column sums over one position split, joined, computed every channel on the calling thread, and forked
// again over image groups for the output: two fork/joins per call and a second read of inputs half of which the other
// core had read. Every value is computed by the same operations in the same order as that path (each position's sum
// over the images in order, in float64; the fold over a channel's positions in order; the same float formulas for the
// output), so the bits are the same, whatever the thread count.
using System.Buffers;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether BatchNorm2d training forward and backward run as one fork/join over channel ranges (the
    /// default) instead of column sums, a join, and a second fork over image groups (the same bits). Only with the default
    /// <see cref="BatchNormOnePassStatistics"/> and <see cref="BatchNormColumnSums"/>. Internal so that the bench can
    /// time both.</summary>
    internal static bool BatchNormChannelParts { get; set; } = true;

    private static bool UseBatchNormChannelParts =>
        BatchNormChannelParts && BatchNormOnePassStatistics && BatchNormColumnSums;

    /// <summary>Channel ranges per thread of a channel-parts call: more than one, so that a thread that wakes late
    /// finds parts left to share instead of waiting for, or leaving all the work to, the calling thread. Internal so
    /// that the bench can time others.</summary>
    internal static int BatchNormPartsPerThread { get; set; } = 4;

    /// <summary>Parts of a channel-parts call: at most one per channel, 1 below
    /// <see cref="BatchNormSerialBelow"/>.</summary>
    private static int BnChannelParts(int c, long numel) =>
        numel < BatchNormSerialBelow ? 1 : Math.Max(1, Math.Min(c, CpuParallel.Threads * BatchNormPartsPerThread));

    /// <summary>Training forward over channel ranges: statistics from one read of x (float64 sums of x and x^2 per
    /// position, folded per channel; variance = E[x^2] - mean^2, clamped at 0), running statistics, then
    /// y = (x - mean) * (w * invstd) + b, all on the thread that owns the channel.</summary>
    private static void BatchNormTrainChannelParts(Tensor x, Tensor weight, Tensor bias, Tensor runningMean,
        Tensor runningVar, float momentum, float eps, Tensor y, Tensor saveMean, Tensor saveInvStd)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3), row = c * hw;
        long count = (long)n * hw;
        int parts = BnChannelParts(c, x.Numel);
        var meanRow = ArrayPool<float>.Shared.Rent(row);
        var scaleRow = ArrayPool<float>.Shared.Rent(row);
        var shiftRow = ArrayPool<float>.Shared.Rent(row);
        var sums = ArrayPool<double>.Shared.Rent(2 * row);
        try
        {
            CpuParallel.For(0, parts, part =>
            {
                int c0 = (int)((long)c * part / parts), c1 = (int)((long)c * (part + 1) / parts);
                int j0 = c0 * hw, len = (c1 - c0) * hw;
                var xs = S(x);
                ColumnSumsRange(xs, xs, n, row, j0, j0 + len, sums.AsSpan(0, row), sums.AsSpan(row, row));
                for (int ch = c0; ch < c1; ch++)
                {
                    double mean = FoldChannel(sums, ch, hw) / count;
                    double var = Math.Max(0, FoldChannel(sums.AsSpan(row), ch, hw) / count - mean * mean);
                    meanRow.AsSpan(ch * hw, hw).Fill((float)mean);
                    BatchNormTrainChannel(ch, hw, mean, var, count, momentum, eps, weight, bias, runningMean, runningVar,
                        saveMean, saveInvStd, scaleRow, shiftRow);
                }
                var ys = S(y);
                for (int img = 0; img < n; img++)
                    CenterScaleShift(xs.Slice(img * row + j0, len), meanRow.AsSpan(j0, len), scaleRow.AsSpan(j0, len),
                        shiftRow.AsSpan(j0, len), ys.Slice(img * row + j0, len));
            });
        }
        finally
        {
            ArrayPool<float>.Shared.Return(meanRow);
            ArrayPool<float>.Shared.Return(scaleRow);
            ArrayPool<float>.Shared.Return(shiftRow);
            ArrayPool<double>.Shared.Return(sums);
        }
    }

    /// <summary>Backward over channel ranges: float64 sums of dy and dy * x per position (one read of dy and x), folded
    /// per channel into dbias = sum(dy) and dweight = invstd * (sum(dy * x) - mean * sum(dy)), then
    /// dx = (dy * k + b) + x * a with k = w * invstd, a = -k * invstd * mean(dy * xhat),
    /// b = -k * mean(dy) + k * invstd * mean(dy * xhat) * mean, all on the thread that owns the channel.</summary>
    private static void BatchNormBackwardChannelParts(Tensor x, Tensor weight, Tensor saveMean, Tensor saveInvStd,
        Tensor dy, Tensor dx, Tensor dweight, Tensor dbias)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3), row = c * hw;
        long count = (long)n * hw;
        int parts = BnChannelParts(c, x.Numel);
        var kRow = ArrayPool<float>.Shared.Rent(row);
        var aRow = ArrayPool<float>.Shared.Rent(row);
        var bRow = ArrayPool<float>.Shared.Rent(row);
        var sums = ArrayPool<double>.Shared.Rent(2 * row);
        try
        {
            CpuParallel.For(0, parts, part =>
            {
                int c0 = (int)((long)c * part / parts), c1 = (int)((long)c * (part + 1) / parts);
                int j0 = c0 * hw, len = (c1 - c0) * hw;
                var xs = S(x);
                var gs = S(dy);
                ColumnSumsRange(gs, xs, n, row, j0, j0 + len, sums.AsSpan(0, row), sums.AsSpan(row, row));
                for (int ch = c0; ch < c1; ch++)
                    BatchNormBackwardChannel(ch, hw, FoldChannel(sums, ch, hw), FoldChannel(sums.AsSpan(row), ch, hw),
                        count, weight, saveMean, saveInvStd, dweight, dbias, kRow, aRow, bRow);
                var ds = S(dx);
                for (int img = 0; img < n; img++)
                    BatchNormDx(gs.Slice(img * row + j0, len), xs.Slice(img * row + j0, len), kRow.AsSpan(j0, len),
                        aRow.AsSpan(j0, len), bRow.AsSpan(j0, len), ds.Slice(img * row + j0, len));
            });
        }
        finally
        {
            ArrayPool<float>.Shared.Return(kRow);
            ArrayPool<float>.Shared.Return(aRow);
            ArrayPool<float>.Shared.Return(bRow);
            ArrayPool<double>.Shared.Return(sums);
        }
    }
}
