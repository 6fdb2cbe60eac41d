// BatchNorm2d kernels of the CPU backend. SLaK's large-kernel branches each end in a BatchNorm on small maps (8x8
// down to 1x1 in slak_nano), where a loop per channel over N planes of H*W values is all call overhead (a 1x1 map
// gives N one-element spans per channel). So each image's C*H*W values are handled as one contiguous row:
// statistics (sum and sum of squares, from one read of x) accumulate position-wise in double over the images (SIMD,
// widening, down position columns in registers: CpuBackend.Norm.Columns.cs), then fold over the H*W positions of
// each channel; the affine output is computed row-wise against
// per-position scale/shift rows (forward: two reads of x; backward: one read of dy and x for both reductions, one for
// dx). Images are split into a fixed number of groups whose partial sums are added in group order (results do not
// depend on thread timing); tensors below BatchNormSerialBelow elements run on the calling thread. By default training
// forward and backward run CpuBackend.Norm.BatchChannels.cs's one-fork form of the same computation (same bits).
using System.Buffers;
using System.Numerics;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Elements below which the BatchNorm kernels run on the calling thread (fork/join costs more than
    /// the pass). Internal so tests can force both paths.</summary>
    internal static int BatchNormSerialBelow { get; set; } = 1 << 15;

    /// <inheritdoc />
    public void BatchNormTrain(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                               float momentum, float eps, Tensor y, Tensor saveMean, Tensor saveInvStd)
    {
        if (UseBatchNormChannelParts)
        {
            BatchNormTrainChannelParts(x, weight, bias, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd);
            return;
        }
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3), row = c * hw;
        long count = (long)n * hw;
        int groups = BnGroups(n, x.Numel);
        var meanRow = ArrayPool<float>.Shared.Rent(row);
        var scaleRow = ArrayPool<float>.Shared.Rent(row);
        var shiftRow = ArrayPool<float>.Shared.Rent(row);
        try
        {
            var (mean, variance) = BatchNormOnePassStatistics
                ? BatchStatisticsOnePass(x, n, c, hw, groups, meanRow)
                : BatchStatisticsTwoPass(x, n, c, hw, groups, meanRow);
            var mr = meanRow;
            for (int ch = 0; ch < c; ch++)
                BatchNormTrainChannel(ch, hw, mean[ch], variance[ch], count, momentum, eps, weight, bias, runningMean,
                    runningVar, saveMean, saveInvStd, scaleRow, shiftRow);
            var sr = scaleRow; var hr = shiftRow;
            ForImageGroups(n, groups, img =>
                CenterScaleShift(S(x).Slice(img * row, row), mr.AsSpan(0, row), sr.AsSpan(0, row), hr.AsSpan(0, row),
                    S(y).Slice(img * row, row)));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(meanRow);
            ArrayPool<float>.Shared.Return(scaleRow);
            ArrayPool<float>.Shared.Return(shiftRow);
        }
    }

    /// <inheritdoc />
    public void BatchNormEval(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, float eps, Tensor y)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3), row = c * hw;
        var scaleRow = ArrayPool<float>.Shared.Rent(row);
        var shiftRow = ArrayPool<float>.Shared.Rent(row);
        try
        {
            for (int ch = 0; ch < c; ch++)
            {
                float scale = S(weight)[ch] / MathF.Sqrt(S(runningVar)[ch] + eps);
                float shift = S(bias)[ch] - S(runningMean)[ch] * scale;
                scaleRow.AsSpan(ch * hw, hw).Fill(scale);
                shiftRow.AsSpan(ch * hw, hw).Fill(shift);
            }
            ForImageGroups(n, BnGroups(n, x.Numel), img =>
                ScaleShift(S(x).Slice(img * row, row), scaleRow.AsSpan(0, row), shiftRow.AsSpan(0, row), S(y).Slice(img * row, row)));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scaleRow);
            ArrayPool<float>.Shared.Return(shiftRow);
        }
    }

    /// <inheritdoc />
    public void BatchNormBackward(Tensor x, Tensor weight, Tensor saveMean, Tensor saveInvStd, Tensor dy,
                                  Tensor dx, Tensor dweight, Tensor dbias)
    {
        if (UseBatchNormChannelParts)
        {
            BatchNormBackwardChannelParts(x, weight, saveMean, saveInvStd, dy, dx, dweight, dbias);
            return;
        }
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3), row = c * hw;
        long count = (long)n * hw;
        int groups = BnGroups(n, x.Numel);
        var kRow = ArrayPool<float>.Shared.Rent(row);
        var aRow = ArrayPool<float>.Shared.Rent(row);
        var bRow = ArrayPool<float>.Shared.Rent(row);
        try
        {
            // Position-wise sum(dy) in [0, row) and sum(dy * x) in [row, 2 row).
            var sums = BatchNormColumnSums ? ColumnSums(dy, x, n, row) : GroupSums(n, 2 * row, groups, (img, acc) =>
            {
                var g = S(dy).Slice(img * row, row);
                AddWiden(g, acc.AsSpan(0, row));
                AddProductWiden(g, S(x).Slice(img * row, row), acc.AsSpan(row, row));
            });
            for (int ch = 0; ch < c; ch++)
                BatchNormBackwardChannel(ch, hw, FoldChannel(sums, ch, hw), FoldChannel(sums.AsSpan(row), ch, hw), count,
                    weight, saveMean, saveInvStd, dweight, dbias, kRow, aRow, bRow);
            ArrayPool<double>.Shared.Return(sums);
            ForImageGroups(n, groups, img =>
                BatchNormDx(S(dy).Slice(img * row, row), S(x).Slice(img * row, row), kRow.AsSpan(0, row),
                    aRow.AsSpan(0, row), bRow.AsSpan(0, row), S(dx).Slice(img * row, row)));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(kRow);
            ArrayPool<float>.Shared.Return(aRow);
            ArrayPool<float>.Shared.Return(bRow);
        }
    }

    /// <summary>Whether training BatchNorm reads x once for its statistics (sum and sum of squares together, the
    /// default) instead of twice (sum, then squared deviations). Internal so that the bench can time both.</summary>
    internal static bool BatchNormOnePassStatistics { get; set; } = true;

    /// <summary>Per-channel mean and biased variance from one read of x: position-wise sums of x and x^2 in float64
    /// (a float's square is exact in float64), folded per channel; variance = E[x^2] - mean^2, whose float64
    /// cancellation error (about 1e-16 relative to E[x^2]) stays far below float32 resolution unless |mean| / std
    /// exceeds about 1e4. Fills <paramref name="meanRow"/> with each channel's float mean over its H*W positions.</summary>
    private static (double[] Mean, double[] Var) BatchStatisticsOnePass(Tensor x, int n, int c, int hw, int groups,
                                                                        float[] meanRow)
    {
        int row = c * hw;
        long count = (long)n * hw;
        var sums = BatchNormColumnSums
            ? ColumnSums(x, x, n, row)
            : GroupSums(n, 2 * row, groups, (img, acc) => AddWidenWithSquares(S(x).Slice(img * row, row), acc.AsSpan(0, 2 * row)));
        var mean = new double[c];
        var variance = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            mean[ch] = FoldChannel(sums, ch, hw) / count;
            variance[ch] = Math.Max(0, FoldChannel(sums.AsSpan(row), ch, hw) / count - mean[ch] * mean[ch]);
            meanRow.AsSpan(ch * hw, hw).Fill((float)mean[ch]);
        }
        ArrayPool<double>.Shared.Return(sums);
        return (mean, variance);
    }

    /// <summary>Per-channel mean and biased variance from two reads of x (sum; then squared deviations from the float
    /// mean), in float64. Fills <paramref name="meanRow"/> as <see cref="BatchStatisticsOnePass"/> does.</summary>
    private static (double[] Mean, double[] Var) BatchStatisticsTwoPass(Tensor x, int n, int c, int hw, int groups,
                                                                        float[] meanRow)
    {
        int row = c * hw;
        long count = (long)n * hw;
        // The same sums of x as the one-pass statistics (the column sums' second half is unused here).
        var sums = BatchNormColumnSums
            ? ColumnSums(x, x, n, row)
            : GroupSums(n, row, groups, (img, acc) => AddWiden(S(x).Slice(img * row, row), acc));
        var mean = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            mean[ch] = FoldChannel(sums, ch, hw) / count;
            meanRow.AsSpan(ch * hw, hw).Fill((float)mean[ch]);
        }
        ArrayPool<double>.Shared.Return(sums);
        var sq = GroupSums(n, row, groups, (img, acc) => AddSquaredDiffWiden(S(x).Slice(img * row, row), meanRow.AsSpan(0, row), acc));
        var variance = new double[c];
        for (int ch = 0; ch < c; ch++) variance[ch] = FoldChannel(sq, ch, hw) / count;
        ArrayPool<double>.Shared.Return(sq);
        return (mean, variance);
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    private static int BnGroups(int n, long numel) =>
        numel < BatchNormSerialBelow ? 1 : Math.Max(1, Math.Min(n, CpuParallel.Threads));

    /// <summary>Position-wise sums over images: groups of consecutive images each fill a zeroed double row via
    /// <paramref name="addImage"/>, then the rows are added in group order. The result is rented from the shared
    /// pool (at least <paramref name="width"/> long; the caller returns it).</summary>
    private static double[] GroupSums(int n, int width, int groups, Action<int, double[]> addImage)
    {
        var parts = new double[groups][];
        int per = (n + groups - 1) / groups;
        CpuParallel.For(0, groups, g =>
        {
            var acc = ArrayPool<double>.Shared.Rent(width);
            Array.Clear(acc, 0, width);
            for (int img = g * per, end = Math.Min(n, img + per); img < end; img++) addImage(img, acc);
            parts[g] = acc;
        });
        var total = parts[0];
        for (int g = 1; g < groups; g++)
        {
            var p = parts[g];
            for (int j = 0; j < width; j++) total[j] += p[j];
            ArrayPool<double>.Shared.Return(p);
        }
        return total;
    }

    private static void ForImageGroups(int n, int groups, Action<int> image)
    {
        int per = (n + groups - 1) / groups;
        CpuParallel.For(0, groups, g =>
        {
            for (int img = g * per, end = Math.Min(n, img + per); img < end; img++) image(img);
        });
    }

    /// <summary>Channel <paramref name="ch"/> of the training forward, from its batch mean and biased variance
    /// (float64): saves mean and invstd = 1 / sqrt(var + eps), updates the running statistics (unbiased variance),
    /// and fills the channel's hw entries of the scale (w * invstd) and shift (b) rows. Both forward paths call it.
    /// </summary>
    private static void BatchNormTrainChannel(int ch, int hw, double mean, double var, long count, float momentum,
        float eps, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd,
        float[] scaleRow, float[] shiftRow) =>
        BatchNormTrainChannel(ch, hw, mean, var, count, momentum, eps, S(weight), S(bias), S(runningMean),
            S(runningVar), S(saveMean), S(saveInvStd), scaleRow, shiftRow);

    /// <summary><see cref="BatchNormTrainChannel(int, int, double, double, long, float, float, Tensor, Tensor, Tensor,
    /// Tensor, Tensor, Tensor, float[], float[])"/> on the tensors' spans, taken once by a caller that folds many
    /// channels (the same operations).</summary>
    private static void BatchNormTrainChannel(int ch, int hw, double mean, double var, long count, float momentum,
        float eps, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> runningMean,
        Span<float> runningVar, Span<float> saveMean, Span<float> saveInvStd, float[] scaleRow, float[] shiftRow)
    {
        float inv = (float)(1.0 / Math.Sqrt(var + eps));
        scaleRow.AsSpan(ch * hw, hw).Fill(weight[ch] * inv);
        shiftRow.AsSpan(ch * hw, hw).Fill(bias[ch]);
        saveMean[ch] = (float)mean;
        saveInvStd[ch] = inv;
        double unbiased = count > 1 ? var * count / (count - 1) : var;
        runningMean[ch] = (float)((1 - momentum) * runningMean[ch] + momentum * mean);
        runningVar[ch] = (float)((1 - momentum) * runningVar[ch] + momentum * unbiased);
    }

    /// <summary>Channel <paramref name="ch"/> of the training backward, from its float64 sums of dy and dy * x:
    /// dbias = sum(dy), dweight = sum(dy * xhat) = invstd * (sum(dy * x) - mean * sum(dy)), and the channel's hw
    /// entries of the k, a, b rows of dx = (dy * k + b) + x * a (k = w * invstd, a = -k * invstd * mean(dy * xhat),
    /// b = -k * mean(dy) + k * invstd * mean(dy * xhat) * mean). Both backward paths call it.</summary>
    private static void BatchNormBackwardChannel(int ch, int hw, double sdy, double sdyX, long count, Tensor weight,
        Tensor saveMean, Tensor saveInvStd, Tensor dweight, Tensor dbias, float[] kRow, float[] aRow, float[] bRow) =>
        BatchNormBackwardChannel(ch, hw, sdy, sdyX, count, S(weight), S(saveMean), S(saveInvStd), S(dweight), S(dbias),
            kRow, aRow, bRow);

    /// <summary><see cref="BatchNormBackwardChannel(int, int, double, double, long, Tensor, Tensor, Tensor, Tensor,
    /// Tensor, float[], float[], float[])"/> on the tensors' spans, taken once by a caller that folds many channels
    /// (the same operations).</summary>
    private static void BatchNormBackwardChannel(int ch, int hw, double sdy, double sdyX, long count,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> saveMean, ReadOnlySpan<float> saveInvStd, Span<float> dweight,
        Span<float> dbias, float[] kRow, float[] aRow, float[] bRow)
    {
        float m = saveMean[ch], inv = saveInvStd[ch];
        double sdyx = inv * (sdyX - m * sdy);
        dweight[ch] = (float)sdyx;
        dbias[ch] = (float)sdy;
        float k = weight[ch] * inv;
        float meanDy = (float)(sdy / count), meanDyX = (float)(sdyx / count);
        float a = -k * inv * meanDyX, b = -k * meanDy + k * inv * meanDyX * m;
        kRow.AsSpan(ch * hw, hw).Fill(k);
        aRow.AsSpan(ch * hw, hw).Fill(a);
        bRow.AsSpan(ch * hw, hw).Fill(b);
    }

    private static double FoldChannel(ReadOnlySpan<double> positions, int ch, int hw)
    {
        double s = 0;
        foreach (double v in positions.Slice(ch * hw, hw)) s += v;
        return s;
    }

    /// <summary>acc[j] += x[j] in double.</summary>
    internal static void AddWiden(ReadOnlySpan<float> x, Span<double> acc)
    {
        int i = 0, w = Vector<float>.Count, h = Vector<double>.Count;
        for (; i + w <= x.Length; i += w)
        {
            Vector.Widen(new Vector<float>(x.Slice(i, w)), out var lo, out var hi);
            (new Vector<double>(acc.Slice(i, h)) + lo).CopyTo(acc.Slice(i, h));
            (new Vector<double>(acc.Slice(i + h, h)) + hi).CopyTo(acc.Slice(i + h, h));
        }
        for (; i < x.Length; i++) acc[i] += x[i];
    }

    /// <summary>acc[j] += x[j] and acc[x.Length + j] += x[j]^2, in double.</summary>
    private static void AddWidenWithSquares(ReadOnlySpan<float> x, Span<double> acc)
    {
        int i = 0, w = Vector<float>.Count, h = Vector<double>.Count, len = x.Length;
        for (; i + w <= len; i += w)
        {
            Vector.Widen(new Vector<float>(x.Slice(i, w)), out var lo, out var hi);
            (new Vector<double>(acc.Slice(i, h)) + lo).CopyTo(acc.Slice(i, h));
            (new Vector<double>(acc.Slice(i + h, h)) + hi).CopyTo(acc.Slice(i + h, h));
            (new Vector<double>(acc.Slice(len + i, h)) + lo * lo).CopyTo(acc.Slice(len + i, h));
            (new Vector<double>(acc.Slice(len + i + h, h)) + hi * hi).CopyTo(acc.Slice(len + i + h, h));
        }
        for (; i < len; i++) { double v = x[i]; acc[i] += v; acc[len + i] += v * v; }
    }

    /// <summary>acc[j] += a[j] * b[j] in double.</summary>
    internal static void AddProductWiden(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<double> acc)
    {
        int i = 0, w = Vector<float>.Count, h = Vector<double>.Count;
        for (; i + w <= a.Length; i += w)
        {
            Vector.Widen(new Vector<float>(a.Slice(i, w)), out var alo, out var ahi);
            Vector.Widen(new Vector<float>(b.Slice(i, w)), out var blo, out var bhi);
            (new Vector<double>(acc.Slice(i, h)) + alo * blo).CopyTo(acc.Slice(i, h));
            (new Vector<double>(acc.Slice(i + h, h)) + ahi * bhi).CopyTo(acc.Slice(i + h, h));
        }
        for (; i < a.Length; i++) acc[i] += (double)a[i] * b[i];
    }

    /// <summary>acc[j] += d*d in double with d = x[j] - mean[j] rounded to float (as the output pass computes it).</summary>
    private static void AddSquaredDiffWiden(ReadOnlySpan<float> x, ReadOnlySpan<float> mean, Span<double> acc)
    {
        int i = 0, w = Vector<float>.Count, h = Vector<double>.Count;
        for (; i + w <= x.Length; i += w)
        {
            var d = new Vector<float>(x.Slice(i, w)) - new Vector<float>(mean.Slice(i, w));
            Vector.Widen(d, out var lo, out var hi);
            (new Vector<double>(acc.Slice(i, h)) + lo * lo).CopyTo(acc.Slice(i, h));
            (new Vector<double>(acc.Slice(i + h, h)) + hi * hi).CopyTo(acc.Slice(i + h, h));
        }
        for (; i < x.Length; i++) { double d = x[i] - mean[i]; acc[i] += d * d; }
    }

    /// <summary>y = (x - mean) * scale + shift, element-wise over rows.</summary>
    private static void CenterScaleShift(ReadOnlySpan<float> x, ReadOnlySpan<float> mean, ReadOnlySpan<float> scale,
                                         ReadOnlySpan<float> shift, Span<float> y)
    {
        int i = 0, w = Vector<float>.Count;
        for (; i + w <= x.Length; i += w)
        {
            var d = new Vector<float>(x.Slice(i, w)) - new Vector<float>(mean.Slice(i, w));
            (d * new Vector<float>(scale.Slice(i, w)) + new Vector<float>(shift.Slice(i, w))).CopyTo(y.Slice(i, w));
        }
        for (; i < x.Length; i++) y[i] = (x[i] - mean[i]) * scale[i] + shift[i];
    }

    /// <summary>y = x * scale + shift, element-wise over rows.</summary>
    private static void ScaleShift(ReadOnlySpan<float> x, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, Span<float> y)
    {
        int i = 0, w = Vector<float>.Count;
        for (; i + w <= x.Length; i += w)
            (new Vector<float>(x.Slice(i, w)) * new Vector<float>(scale.Slice(i, w)) + new Vector<float>(shift.Slice(i, w)))
                .CopyTo(y.Slice(i, w));
        for (; i < x.Length; i++) y[i] = x[i] * scale[i] + shift[i];
    }

    /// <summary>dx = (dy * k + b) + x * a, element-wise over rows.</summary>
    private static void BatchNormDx(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> k,
                                    ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dx)
    {
        int i = 0, w = Vector<float>.Count;
        for (; i + w <= dy.Length; i += w)
        {
            var g = new Vector<float>(dy.Slice(i, w)) * new Vector<float>(k.Slice(i, w)) + new Vector<float>(b.Slice(i, w));
            (g + new Vector<float>(x.Slice(i, w)) * new Vector<float>(a.Slice(i, w))).CopyTo(dx.Slice(i, w));
        }
        for (; i < dy.Length; i++) dx[i] = (dy[i] * k[i] + b[i]) + x[i] * a[i];
    }
}
