// The decomposed large kernel's training tail, y = sum_b BN_b(x_b) (IBackend.BatchNormSum.cs), on the CPU. It runs as
// CpuBackend.Norm.BatchChannels.cs runs one BatchNorm: one fork/join over ranges of whole channels, a thread summing
// its positions down the n images (float64, images in order), folding them per channel, and writing its positions of
// the outputs; here for every branch at once. Forward: each branch's statistics from one read of its x, then y written
// once as ((BN_0 + BN_1) + BN_2) element by element (the unfused path writes three normalized tensors and reads them
// back in two adds). Backward: with three branches, one read of dy and the three x gives sum(dy) (shared: every
// branch's bias gradient) and each sum(dy * x_b) in one sweep down the images; then each dx_b from dy and x_b
// re-read from this thread's cache. Every value comes from the same operations in the same order as the unfused
// path (BatchNormTrain / BatchNormBackward per branch and Add), so the bits are the same, whatever the thread count.
// Where 512-bit vectors are accelerated, the column sums and output passes of three-branch calls run the wide kernels
// of CpuBackend.Norm.BatchSumWide.cs (whole cache lines per image and sweep; the same bits); their output passes run
// one channel plane a call on maps of whole lines (CpuBackend.Norm.BatchSumPlanes.cs) and the three-branch row kernels
// of CpuBackend.Norm.BatchSumSmallMaps.cs on maps smaller than a line (the same bits). The statistics' per-channel fold
// runs eight channels a vector with the parameter spans taken once per part, and the forward sums its three branches
// in one sweep (CpuBackend.Norm.BatchSumFold.cs; the same bits); the small-map output passes walk one vector column
// down the images with the constants in registers (CpuBackend.Norm.BatchSumSmallColumns.cs; the same bits).
using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void BatchNormTrainSum(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> biases,
                                  IReadOnlyList<Tensor> runningMeans, IReadOnlyList<Tensor> runningVars,
                                  IReadOnlyList<float> momenta, IReadOnlyList<float> eps, Tensor y,
                                  IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds)
    {
        int branches = xs.Count;
        var x0 = xs[0];
        int n = x0.Size(0), c = x0.Size(1), hw = x0.Size(2) * x0.Size(3), row = c * hw;
        long count = (long)n * hw;
        int parts = BnSumParts(c, x0.Numel, branches);
        var meanRows = RentRows(branches, row);
        var scaleRows = RentRows(branches, row);
        var shiftRows = RentRows(branches, row);
        bool wide = UseBnSumWide(row), small = UseBnSumSmallMaps(branches, hw, row);
        bool fold = BatchNormSumFold, oneSweep = fold && wide && branches == 3;
        // [2b row, (2b + 1) row): branch b's sums of x, then of x^2 (one sweep); else one pair reused per branch.
        var sums = ArrayPool<double>.Shared.Rent((oneSweep ? 6 : 2) * row);
        try
        {
            CpuParallel.For(0, parts, part =>
            {
                var (c0, c1) = small ? LinePartChannels(c, hw, part, parts)
                    : ((int)((long)c * part / parts), (int)((long)c * (part + 1) / parts));
                int j0 = c0 * hw, len = (c1 - c0) * hw;
                if (oneSweep) ColumnSquareSums3Wide(S(xs[0]), S(xs[1]), S(xs[2]), n, row, j0, j0 + len, sums);
                for (int b = 0; fold && b < branches; b++)
                {
                    if (!oneSweep)
                    {
                        var xb = S(xs[b]);
                        Span<double> sum = sums.AsSpan(0, row), sq = sums.AsSpan(row, row);
                        if (wide) ColumnSquareSumsWide(xb, n, row, j0, j0 + len, sum, sq);
                        else ColumnSumsRange(xb, xb, n, row, j0, j0 + len, sum, sq);
                    }
                    int at = oneSweep ? 2 * b * row : 0;
                    TrainFoldPart(c0, c1, hw, count, sums.AsSpan(at, row), sums.AsSpan(at + row, row), momenta[b],
                        eps[b], weights[b], biases[b], runningMeans[b], runningVars[b], saveMeans[b], saveInvStds[b],
                        meanRows[b], scaleRows[b], shiftRows[b]);
                }
                for (int b = 0; !fold && b < branches; b++)
                {
                    var xb = S(xs[b]);
                    // The parts own disjoint channel ranges, so they share one sums row (reused branch after branch).
                    if (wide) ColumnSquareSumsWide(xb, n, row, j0, j0 + len, sums.AsSpan(0, row), sums.AsSpan(row, row));
                    else ColumnSumsRange(xb, xb, n, row, j0, j0 + len, sums.AsSpan(0, row), sums.AsSpan(row, row));
                    for (int ch = c0; ch < c1; ch++)
                    {
                        double mean = FoldChannel(sums, ch, hw) / count;
                        double var = Math.Max(0, FoldChannel(sums.AsSpan(row), ch, hw) / count - mean * mean);
                        meanRows[b].AsSpan(ch * hw, hw).Fill((float)mean);
                        BatchNormTrainChannel(ch, hw, mean, var, count, momenta[b], eps[b], weights[b], biases[b],
                            runningMeans[b], runningVars[b], saveMeans[b], saveInvStds[b], scaleRows[b], shiftRows[b]);
                    }
                }
                if (BatchNormSumStatisticsOnly) return;
                var ys = S(y);
                if (small)
                {
                    ReadOnlySpan<float> a0 = S(xs[0]), a1 = S(xs[1]), a2 = S(xs[2]);
                    if (UseBnSumColumns(len))
                    {
                        CenterScaleShiftSum3Columns(a0, a1, a2, meanRows, scaleRows, shiftRows, j0, len, n, row, ys);
                        return;
                    }
                    for (int img = 0, at = j0; img < n; img++, at += row)
                        CenterScaleShiftSum3Rows(a0.Slice(at, len), a1.Slice(at, len), a2.Slice(at, len),
                            meanRows[0].AsSpan(j0, len), scaleRows[0].AsSpan(j0, len), shiftRows[0].AsSpan(j0, len),
                            meanRows[1].AsSpan(j0, len), scaleRows[1].AsSpan(j0, len), shiftRows[1].AsSpan(j0, len),
                            meanRows[2].AsSpan(j0, len), scaleRows[2].AsSpan(j0, len), shiftRows[2].AsSpan(j0, len),
                            ys.Slice(at, len));
                    return;
                }
                if (wide && branches == 3 && hw >= WideLine && BatchNormSumChannelScalars)
                {
                    ReadOnlySpan<float> a0 = S(xs[0]), a1 = S(xs[1]), a2 = S(xs[2]);
                    float[] m0 = meanRows[0], m1 = meanRows[1], m2 = meanRows[2];
                    float[] s0 = scaleRows[0], s1 = scaleRows[1], s2 = scaleRows[2];
                    float[] h0 = shiftRows[0], h1 = shiftRows[1], h2 = shiftRows[2];
                    // Forward planes only below 8x8 maps: there a call of the per-image kernel writes one to three
                    // vectors; at 8x8 and 16x16 the planes measured no faster (bn-sum-passes).
                    if (BatchNormSumPlanes && hw % WideLine == 0 && hw < 4 * WideLine)
                    {
                        for (int p = j0; p < j0 + len; p += hw)
                            CenterScaleShiftSum3Plane(a0, a1, a2, meanRows, scaleRows, shiftRows, p, n, row, hw, ys);
                        return;
                    }
                    for (int img = 0; img < n; img++)
                        for (int at = img * row + j0, p = j0; p < j0 + len; at += hw, p += hw)
                            CenterScaleShiftSum3(a0.Slice(at, hw), a1.Slice(at, hw), a2.Slice(at, hw), m0[p], s0[p],
                                h0[p], m1[p], s1[p], h1[p], m2[p], s2[p], h2[p], ys.Slice(at, hw));
                    return;
                }
                if (hw >= Vector<float>.Count && BatchNormSumChannelScalars)
                {
                    // A channel's hw values take its scalars (one load a vector instead of four row loads); the
                    // branches are added into the image's range one after another, as in the row form.
                    for (int img = 0; img < n; img++)
                    {
                        int off = img * row + j0;
                        var yi = ys.Slice(off, len);
                        for (int b = 0; b < branches; b++)
                        {
                            var xi = S(xs[b]).Slice(off, len);
                            float[] mr = meanRows[b], sr = scaleRows[b], hr = shiftRows[b];
                            for (int ch = c0, at = j0, i = 0; ch < c1; ch++, at += hw, i += hw)
                                if (b == 0) CenterScaleShift(xi.Slice(i, hw), mr[at], sr[at], hr[at], yi.Slice(i, hw));
                                else AddCenterScaleShift(xi.Slice(i, hw), mr[at], sr[at], hr[at], yi.Slice(i, hw));
                        }
                    }
                    return;
                }
                for (int img = 0; img < n; img++)
                {
                    int off = img * row + j0;
                    var yi = ys.Slice(off, len);
                    CenterScaleShift(S(xs[0]).Slice(off, len), meanRows[0].AsSpan(j0, len), scaleRows[0].AsSpan(j0, len),
                        shiftRows[0].AsSpan(j0, len), yi);
                    for (int b = 1; b < branches; b++)
                        AddCenterScaleShift(S(xs[b]).Slice(off, len), meanRows[b].AsSpan(j0, len),
                            scaleRows[b].AsSpan(j0, len), shiftRows[b].AsSpan(j0, len), yi);
                }
            });
        }
        finally
        {
            ReturnRows(meanRows);
            ReturnRows(scaleRows);
            ReturnRows(shiftRows);
            ArrayPool<double>.Shared.Return(sums);
        }
    }

    /// <inheritdoc />
    public void BatchNormBackwardSum(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights,
                                     IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds, Tensor dy,
                                     IReadOnlyList<Tensor> dxs, IReadOnlyList<Tensor> dweights,
                                     IReadOnlyList<Tensor> dbiases)
    {
        int branches = xs.Count;
        var x0 = xs[0];
        int n = x0.Size(0), c = x0.Size(1), hw = x0.Size(2) * x0.Size(3), row = c * hw;
        long count = (long)n * hw;
        int parts = BnSumParts(c, x0.Numel, branches);
        var kRows = RentRows(branches, row);
        var aRows = RentRows(branches, row);
        var bRows = RentRows(branches, row);
        // [0, row): sum(dy) per position; [(1 + b) row, (2 + b) row): sum(dy * x_b).
        var sums = ArrayPool<double>.Shared.Rent((1 + branches) * row);
        bool oneSweep = branches == 3 && row >= Vector<float>.Count && BatchNormSumOneSweep;
        bool wide = branches == 3 && UseBnSumWide(row), small = UseBnSumSmallMaps(branches, hw, row);
        bool fold = BatchNormSumFold;
        try
        {
            CpuParallel.For(0, parts, part =>
            {
                var (c0, c1) = small ? LinePartChannels(c, hw, part, parts)
                    : ((int)((long)c * part / parts), (int)((long)c * (part + 1) / parts));
                int j0 = c0 * hw, len = (c1 - c0) * hw;
                var gs = S(dy);
                if (wide && BatchNormSumOneSweep)
                    ColumnSums3Wide(gs, S(xs[0]), S(xs[1]), S(xs[2]), n, row, j0, j0 + len, sums);
                else if (oneSweep)
                    ColumnSums3Range(gs, S(xs[0]), S(xs[1]), S(xs[2]), n, row, j0, j0 + len, sums);
                else
                    for (int b = 0; b < branches; b++) // sum(dy) comes out the same from every branch's sweep
                        ColumnSumsRange(gs, S(xs[b]), n, row, j0, j0 + len, sums.AsSpan(0, row),
                            sums.AsSpan((1 + b) * row, row));
                if (fold)
                    BackwardFoldPart(c0, c1, hw, row, count, sums, weights, saveMeans, saveInvStds, dweights, dbiases,
                        kRows, aRows, bRows);
                for (int ch = c0; !fold && ch < c1; ch++)
                {
                    double sdy = FoldChannel(sums, ch, hw);
                    for (int b = 0; b < branches; b++)
                        BatchNormBackwardChannel(ch, hw, sdy, FoldChannel(sums.AsSpan((1 + b) * row), ch, hw), count,
                            weights[b], saveMeans[b], saveInvStds[b], dweights[b], dbiases[b], kRows[b], aRows[b],
                            bRows[b]);
                }
                if (BatchNormSumStatisticsOnly) return;
                if (small)
                {
                    if (UseBnSumColumns(len))
                    {
                        BatchNormDx3Columns(gs, S(xs[0]), S(xs[1]), S(xs[2]), kRows, aRows, bRows, j0, len, n, row,
                            S(dxs[0]), S(dxs[1]), S(dxs[2]));
                        return;
                    }
                    for (int img = 0, at = j0; img < n; img++, at += row)
                        BatchNormDx3Rows(gs, S(xs[0]), S(xs[1]), S(xs[2]), kRows, aRows, bRows, j0, at, len, S(dxs[0]),
                            S(dxs[1]), S(dxs[2]));
                    return;
                }
                if (wide && hw >= WideLine && BatchNormSumChannelScalars)
                {
                    ReadOnlySpan<float> a0 = S(xs[0]), a1 = S(xs[1]), a2 = S(xs[2]);
                    Span<float> d0 = S(dxs[0]), d1 = S(dxs[1]), d2 = S(dxs[2]);
                    if (BatchNormSumPlanes && hw % WideLine == 0)
                    {
                        for (int p = j0; p < j0 + len; p += hw)
                            BatchNormDx3Plane(gs, a0, a1, a2, kRows, aRows, bRows, p, n, row, hw, d0, d1, d2);
                        return;
                    }
                    Span<float> k = stackalloc float[3], a = stackalloc float[3], bb = stackalloc float[3];
                    for (int ch = c0, p = j0; ch < c1; ch++, p += hw)
                    {
                        // The three branches' scalars of this channel, read once for all the images.
                        for (int b = 0; b < 3; b++) { k[b] = kRows[b][p]; a[b] = aRows[b][p]; bb[b] = bRows[b][p]; }
                        for (int img = 0, at = p; img < n; img++, at += row)
                            BatchNormDx3(gs.Slice(at, hw), a0.Slice(at, hw), a1.Slice(at, hw), a2.Slice(at, hw), k, a,
                                bb, d0.Slice(at, hw), d1.Slice(at, hw), d2.Slice(at, hw));
                    }
                    return;
                }
                if (hw >= Vector<float>.Count && BatchNormSumChannelScalars)
                {
                    for (int img = 0; img < n; img++)
                    {
                        int off = img * row + j0;
                        var g = gs.Slice(off, len);
                        for (int b = 0; b < branches; b++)
                        {
                            var xi = S(xs[b]).Slice(off, len);
                            var di = S(dxs[b]).Slice(off, len);
                            float[] kr = kRows[b], ar = aRows[b], br = bRows[b];
                            for (int ch = c0, at = j0, i = 0; ch < c1; ch++, at += hw, i += hw)
                                BatchNormDx(g.Slice(i, hw), xi.Slice(i, hw), kr[at], ar[at], br[at], di.Slice(i, hw));
                        }
                    }
                    return;
                }
                for (int img = 0; img < n; img++)
                {
                    int off = img * row + j0;
                    var g = gs.Slice(off, len);
                    for (int b = 0; b < branches; b++)
                        BatchNormDx(g, S(xs[b]).Slice(off, len), kRows[b].AsSpan(j0, len), aRows[b].AsSpan(j0, len),
                            bRows[b].AsSpan(j0, len), S(dxs[b]).Slice(off, len));
                }
            });
        }
        finally
        {
            ReturnRows(kRows);
            ReturnRows(aRows);
            ReturnRows(bRows);
            ArrayPool<double>.Shared.Return(sums);
        }
    }

    /// <summary>Whether the three-branch backward sums dy, dy * x_0, dy * x_1 and dy * x_2 in one sweep down the
    /// images (the default) instead of one sweep per branch (the same bits). Internal so that the bench can time
    /// both.</summary>
    internal static bool BatchNormSumOneSweep { get; set; } = true;

    /// <summary>Whether the output passes of the fused calls read each channel's scale and shift as scalars on maps of
    /// at least one vector (the default) instead of from per-position rows (the same bits). Internal so that the bench
    /// and tests can compare both.</summary>
    internal static bool BatchNormSumChannelScalars { get; set; } = true;

    /// <summary>Branch-input bytes per part of a fused call: the channel ranges are made small enough that a part's
    /// inputs, read once for the sums, are still in the core's cache (L2) when the part re-reads them for its outputs
    /// (slak_nano64's first stage: 12 MB of inputs, one channel per part). Internal so that the bench and tests can
    /// set it.</summary>
    internal static int BatchNormSumPartBytes { get; set; } = 256 << 10;

    /// <summary>Parts of a fused call: 1 below <see cref="BatchNormSerialBelow"/> elements per branch (as each
    /// unfused BatchNorm decides); else at least <see cref="BatchNormPartsPerThread"/> per thread and enough that each
    /// holds at most <see cref="BatchNormSumPartBytes"/> of inputs, at most one per channel.</summary>
    private static int BnSumParts(int c, long numelPerBranch, int branches)
    {
        if (numelPerBranch < BatchNormSerialBelow) return 1;
        long bytes = numelPerBranch * branches * sizeof(float);
        long byCache = (bytes + BatchNormSumPartBytes - 1) / BatchNormSumPartBytes;
        return (int)Math.Max(1, Math.Min(c, Math.Max(CpuParallel.Threads * BatchNormPartsPerThread, byCache)));
    }

    private static float[][] RentRows(int count, int row)
    {
        var rows = new float[count][];
        for (int i = 0; i < count; i++) rows[i] = ArrayPool<float>.Shared.Rent(row);
        return rows;
    }

    private static void ReturnRows(float[][] rows)
    {
        foreach (var r in rows) ArrayPool<float>.Shared.Return(r);
    }

    /// <summary>y += (x - mean) * scale + shift, element-wise: adds the next branch's normalized values to the
    /// running sum exactly as Add(sum, BN_b(x)) would (the normalized value rounded to float, then added).</summary>
    private static void AddCenterScaleShift(ReadOnlySpan<float> x, ReadOnlySpan<float> mean, ReadOnlySpan<float> scale,
                                            ReadOnlySpan<float> shift, Span<float> y)
    {
        int i = 0, w = Vector<float>.Count;
        for (; i + w <= x.Length; i += w)
        {
            var d = new Vector<float>(x.Slice(i, w)) - new Vector<float>(mean.Slice(i, w));
            var t = d * new Vector<float>(scale.Slice(i, w)) + new Vector<float>(shift.Slice(i, w));
            (new Vector<float>(y.Slice(i, w)) + t).CopyTo(y.Slice(i, w));
        }
        for (; i < x.Length; i++) y[i] += (x[i] - mean[i]) * scale[i] + shift[i];
    }

    /// <summary>y = (x - mean) * scale + shift with one channel's scalars (the float operations of the row
    /// form).</summary>
    private static void CenterScaleShift(ReadOnlySpan<float> x, float mean, float scale, float shift, Span<float> y)
    {
        int i = 0, w = Vector<float>.Count;
        var m = new Vector<float>(mean);
        var sc = new Vector<float>(scale);
        var sh = new Vector<float>(shift);
        for (; i + w <= x.Length; i += w) ((new Vector<float>(x.Slice(i, w)) - m) * sc + sh).CopyTo(y.Slice(i, w));
        for (; i < x.Length; i++) y[i] = (x[i] - mean) * scale + shift;
    }

    /// <summary>y += (x - mean) * scale + shift with one channel's scalars (as the row form).</summary>
    private static void AddCenterScaleShift(ReadOnlySpan<float> x, float mean, float scale, float shift, Span<float> y)
    {
        int i = 0, w = Vector<float>.Count;
        var m = new Vector<float>(mean);
        var sc = new Vector<float>(scale);
        var sh = new Vector<float>(shift);
        for (; i + w <= x.Length; i += w)
            (new Vector<float>(y.Slice(i, w)) + ((new Vector<float>(x.Slice(i, w)) - m) * sc + sh)).CopyTo(y.Slice(i, w));
        for (; i < x.Length; i++) y[i] += (x[i] - mean) * scale + shift;
    }

    /// <summary>dx = (dy * k + b) + x * a with one channel's scalars (as the row form).</summary>
    private static void BatchNormDx(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, float k, float a, float b, Span<float> dx)
    {
        int i = 0, w = Vector<float>.Count;
        var kv = new Vector<float>(k);
        var av = new Vector<float>(a);
        var bv = new Vector<float>(b);
        for (; i + w <= dy.Length; i += w)
            ((new Vector<float>(dy.Slice(i, w)) * kv + bv) + new Vector<float>(x.Slice(i, w)) * av).CopyTo(dx.Slice(i, w));
        for (; i < dy.Length; i++) dx[i] = (dy[i] * k + b) + x[i] * a;
    }

    /// <summary>Column sums of positions [j0, j1) for three branches in one sweep: sums[j] = sum of dy[img, j] and
    /// sums[(1 + b) row + j] = sum of dy[img, j] * x_b[img, j], float64, images in order (the bits of
    /// <see cref="ColumnSumsRange"/> run per branch). Blocks of one vector of positions; a partial block at either end
    /// is computed as a whole block that overlaps it (row is at least one vector), of which only the range's positions
    /// are kept.</summary>
    private static void ColumnSums3Range(ReadOnlySpan<float> dy, ReadOnlySpan<float> x0, ReadOnlySpan<float> x1,
                                         ReadOnlySpan<float> x2, int n, int row, int j0, int j1, double[] sums)
    {
        int w = Vector<float>.Count;
        ref float rg = ref MemoryMarshal.GetReference(dy);
        ref float r0 = ref MemoryMarshal.GetReference(x0);
        ref float r1 = ref MemoryMarshal.GetReference(x1);
        ref float r2 = ref MemoryMarshal.GetReference(x2);
        Span<double> buf = stackalloc double[4 * w];
        int j = j0;
        while (j < j1)
        {
            int start = j / w * w;
            if (start == j && j + w <= j1)
            {
                ColumnBlock3(ref rg, ref r0, ref r1, ref r2, n, row, j, buf);
                for (int q = 0; q < 4; q++) buf.Slice(q * w, w).CopyTo(sums.AsSpan(q * row + j, w));
                j += w;
                continue;
            }
            start = Math.Min(start, row - w);
            int end = Math.Min(j1, start + w);
            ColumnBlock3(ref rg, ref r0, ref r1, ref r2, n, row, start, buf);
            for (int q = 0; q < 4; q++)
                buf.Slice(q * w + j - start, end - j).CopyTo(sums.AsSpan(q * row + j, end - j));
            j = end;
        }
    }

    /// <summary>The four column sums of the vector of positions starting at <paramref name="j"/> down the n images,
    /// in registers: into out[0, w) sum(dy), out[(1 + b) w, (2 + b) w) sum(dy * x_b).</summary>
    private static void ColumnBlock3(ref float rg, ref float r0, ref float r1, ref float r2, int n, int row, int j,
                                     Span<double> output)
    {
        int h = Vector<double>.Count;
        Vector<double> s0 = default, s1 = default, p0 = default, p1 = default;
        Vector<double> q0 = default, q1 = default, t0 = default, t1 = default;
        nuint off = (nuint)j;
        for (int img = 0; img < n; img++, off += (nuint)row)
        {
            Vector.Widen(Vector.LoadUnsafe(ref rg, off), out var g0, out var g1);
            s0 += g0; s1 += g1;
            Vector.Widen(Vector.LoadUnsafe(ref r0, off), out var a0, out var a1);
            p0 += g0 * a0; p1 += g1 * a1;
            Vector.Widen(Vector.LoadUnsafe(ref r1, off), out var b0, out var b1);
            q0 += g0 * b0; q1 += g1 * b1;
            Vector.Widen(Vector.LoadUnsafe(ref r2, off), out var e0, out var e1);
            t0 += g0 * e0; t1 += g1 * e1;
        }
        s0.CopyTo(output); s1.CopyTo(output.Slice(h));
        p0.CopyTo(output.Slice(2 * h)); p1.CopyTo(output.Slice(3 * h));
        q0.CopyTo(output.Slice(4 * h)); q1.CopyTo(output.Slice(5 * h));
        t0.CopyTo(output.Slice(6 * h)); t1.CopyTo(output.Slice(7 * h));
    }
}
