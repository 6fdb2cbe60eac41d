// Statistics passes of the fused BatchNorm sum (CpuBackend.Norm.BatchSum.cs) with less work per channel and per sweep.
// (1) A part folds its channels' position sums into the per-channel values (mean, invstd, running statistics, scale
// and shift rows; backward: the parameter gradients and the k, a, b rows) with the parameter tensors' spans taken once
// per part and branch, not seven times per channel and branch (Tensor.Data: two virtual calls and checked slicing
// each), and eight channels a 512-bit vector: on 2x2 and 1x1 maps there are 124-249 channels of a few positions, so
// this bookkeeping was a large share of a call whose data is a few hundred KB in cache. (2) The forward's three
// branches are summed in one sweep down the images (three input streams at once, two lines each, 24 float64
// accumulators in registers) instead of one sweep per branch, as the backward already sums dy and its three inputs.
// Every position's sums are the same operations in the same order (each value widened to float64 and added over the
// images in order) and every channel's fold is the same operations lane by lane (the divisions, square roots and
// conversions are correctly rounded in vectors as in scalars; no multiply-add is contracted), so the bits do not
// change.
using System.Buffers;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether the fused sum's statistics take the parameter spans once per part and the forward sums its
    /// three branches in one sweep (the default; environment variable SLAK_BN_SUM_FOLD=0 turns it off) instead of per
    /// channel and per branch (the same bits). Internal so that the bench and tests can compare both.</summary>
    internal static bool BatchNormSumFold { get; set; } = Environment.GetEnvironmentVariable("SLAK_BN_SUM_FOLD") != "0";

    /// <summary>The forward fold of channels [c0, c1) of branch b from its position sums (sum, sum of squares):
    /// eight channels at a time in 512-bit float64 vectors (BatchNormTrainChannel's operations lane by lane: the
    /// divisions, square roots and conversions are correctly rounded either way), the rest one at a time.</summary>
    private static void TrainFoldPart(int c0, int c1, int hw, long count, ReadOnlySpan<double> sum,
        ReadOnlySpan<double> sq, float momentum, float eps, Tensor weight, Tensor bias, Tensor runningMean,
        Tensor runningVar, Tensor saveMean, Tensor saveInvStd, float[] meanRow, float[] scaleRow, float[] shiftRow)
    {
        ReadOnlySpan<float> w = S(weight), bias0 = S(bias);
        Span<float> rm = S(runningMean), rv = S(runningVar), sm = S(saveMean), si = S(saveInvStd);
        int ch = c0;
        if (Vector512.IsHardwareAccelerated)
        {
            const int lanes = 8; // Vector512<double>.Count
            Span<double> fs = stackalloc double[lanes], fq = stackalloc double[lanes];
            Span<float> mean32 = stackalloc float[lanes], scale32 = stackalloc float[lanes];
            var vCount = Vector512.Create((double)count);
            var vEps = Vector512.Create((double)eps);
            var vUnbias = Vector512.Create((double)(count - 1));
            var keep = Vector256.Create(1 - momentum);
            var vMomentum = Vector512.Create((double)momentum);
            for (; ch + lanes <= c1; ch += lanes)
            {
                for (int l = 0; l < lanes; l++)
                {
                    fs[l] = FoldChannel(sum, ch + l, hw);
                    fq[l] = FoldChannel(sq, ch + l, hw);
                }
                var mean = Vector512.Create((ReadOnlySpan<double>)fs) / vCount;
                var meanSq = Vector512.Create((ReadOnlySpan<double>)fq) / vCount;
                var var = Vector512.Max(Vector512<double>.Zero, meanSq - mean * mean);
                var inv = Narrow(Vector512<double>.One / Vector512.Sqrt(var + vEps));
                var scale = Vector256.Create(w.Slice(ch, lanes)) * inv;
                var unbiased = count > 1 ? var * vCount / vUnbias : var;
                Narrow(mean).CopyTo(sm.Slice(ch, lanes));
                inv.CopyTo(si.Slice(ch, lanes));
                var rmOld = Widen(keep * Vector256.Create(rm.Slice(ch, lanes)));
                var rvOld = Widen(keep * Vector256.Create(rv.Slice(ch, lanes)));
                Narrow(rmOld + vMomentum * mean).CopyTo(rm.Slice(ch, lanes));
                Narrow(rvOld + vMomentum * unbiased).CopyTo(rv.Slice(ch, lanes));
                if (hw == 1)
                {
                    sm.Slice(ch, lanes).CopyTo(meanRow.AsSpan(ch, lanes));
                    scale.CopyTo(scaleRow.AsSpan(ch, lanes));
                    bias0.Slice(ch, lanes).CopyTo(shiftRow.AsSpan(ch, lanes));
                    continue;
                }
                Narrow(mean).CopyTo(mean32);
                scale.CopyTo(scale32);
                for (int l = 0; l < lanes; l++)
                {
                    int at = (ch + l) * hw;
                    meanRow.AsSpan(at, hw).Fill(mean32[l]);
                    scaleRow.AsSpan(at, hw).Fill(scale32[l]);
                    shiftRow.AsSpan(at, hw).Fill(bias0[ch + l]);
                }
            }
        }
        for (; ch < c1; ch++)
        {
            double mean = FoldChannel(sum, ch, hw) / count;
            double var = Math.Max(0, FoldChannel(sq, ch, hw) / count - mean * mean);
            meanRow.AsSpan(ch * hw, hw).Fill((float)mean);
            BatchNormTrainChannel(ch, hw, mean, var, count, momentum, eps, w, bias0, rm, rv, sm, si, scaleRow,
                shiftRow);
        }
    }

    private static Vector256<float> Narrow(Vector512<double> v) =>
        Vector256.Create(Vector128.Narrow(v.GetLower().GetLower(), v.GetLower().GetUpper()),
                         Vector128.Narrow(v.GetUpper().GetLower(), v.GetUpper().GetUpper()));

    private static Vector512<double> Widen(Vector256<float> v)
    {
        var (lo, hi) = Vector256.Widen(v);
        return Vector512.Create(lo, hi);
    }

    /// <summary>The backward fold of channels [c0, c1) for every branch from sums[0, row) = sum(dy) per position and
    /// sums[(1 + b) row, (2 + b) row) = sum(dy * x_b): eight channels at a time in 512-bit vectors
    /// (BatchNormBackwardChannel's operations lane by lane), the rest one at a time.</summary>
    private static void BackwardFoldPart(int c0, int c1, int hw, int row, long count, double[] sums,
        IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds,
        IReadOnlyList<Tensor> dweights, IReadOnlyList<Tensor> dbiases, float[][] kRows, float[][] aRows,
        float[][] bRows)
    {
        const int lanes = 8; // Vector512<double>.Count
        int branches = weights.Count, m = c1 - c0;
        // Channel sums padded to whole vectors: sdy, then each branch's sum(dy * x_b).
        int stride = (m + lanes - 1) / lanes * lanes;
        var folded = ArrayPool<double>.Shared.Rent((1 + branches) * stride);
        try
        {
            for (int q = 0; q <= branches; q++)
                for (int ch = c0; ch < c1; ch++)
                    folded[q * stride + ch - c0] = FoldChannel(sums.AsSpan(q * row, row), ch, hw);
            var vCount = Vector512.Create((double)count);
            Span<float> k32 = stackalloc float[lanes], a32 = stackalloc float[lanes], b32 = stackalloc float[lanes];
            for (int b = 0; b < branches; b++)
            {
                ReadOnlySpan<float> w = S(weights[b]), mean = S(saveMeans[b]), invStd = S(saveInvStds[b]);
                Span<float> dw = S(dweights[b]), db = S(dbiases[b]);
                float[] kRow = kRows[b], aRow = aRows[b], bRow = bRows[b];
                int ch = c0;
                for (; Vector512.IsHardwareAccelerated && ch + lanes <= c1; ch += lanes)
                {
                    var sdy = Vector512.Create((ReadOnlySpan<double>)folded.AsSpan(ch - c0, lanes));
                    var sdyX = Vector512.Create((ReadOnlySpan<double>)folded.AsSpan((1 + b) * stride + ch - c0, lanes));
                    var m32 = Vector256.Create(mean.Slice(ch, lanes));
                    var inv32 = Vector256.Create(invStd.Slice(ch, lanes));
                    var sdyx = Widen(inv32) * (sdyX - Widen(m32) * sdy);
                    Narrow(sdyx).CopyTo(dw.Slice(ch, lanes));
                    Narrow(sdy).CopyTo(db.Slice(ch, lanes));
                    var k = Vector256.Create(w.Slice(ch, lanes)) * inv32;
                    var meanDy = Narrow(sdy / vCount);
                    var meanDyX = Narrow(sdyx / vCount);
                    var av = -k * inv32 * meanDyX;
                    var bv = -k * meanDy + k * inv32 * meanDyX * m32;
                    if (hw == 1)
                    {
                        k.CopyTo(kRow.AsSpan(ch, lanes));
                        av.CopyTo(aRow.AsSpan(ch, lanes));
                        bv.CopyTo(bRow.AsSpan(ch, lanes));
                        continue;
                    }
                    k.CopyTo(k32); av.CopyTo(a32); bv.CopyTo(b32);
                    for (int l = 0; l < lanes; l++)
                    {
                        int at = (ch + l) * hw;
                        kRow.AsSpan(at, hw).Fill(k32[l]);
                        aRow.AsSpan(at, hw).Fill(a32[l]);
                        bRow.AsSpan(at, hw).Fill(b32[l]);
                    }
                }
                for (; ch < c1; ch++)
                    BatchNormBackwardChannel(ch, hw, folded[ch - c0], folded[(1 + b) * stride + ch - c0], count, w,
                        mean, invStd, dw, db, kRow, aRow, bRow);
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(folded);
        }
    }

    /// <summary>Column sums of x_b and x_b^2 over positions [j0, j1) for three branches in one sweep (row at least one
    /// line): sums[2b row + j] = sum of x_b, sums[(2b + 1) row + j] = sum of x_b^2, float64, images in order; two
    /// lines at a time on the grid of lines, then single lines, partial lines at the ends as overlapping whole lines
    /// of which only the range's positions are kept.</summary>
    private static void ColumnSquareSums3Wide(ReadOnlySpan<float> x0, ReadOnlySpan<float> x1, ReadOnlySpan<float> x2,
                                              int n, int row, int j0, int j1, double[] sums)
    {
        if ((long)(n - 1) * row + row > Math.Min(x0.Length, Math.Min(x1.Length, x2.Length)) || sums.Length < 6 * row)
            throw new ArgumentException("column sums past the end of a tensor");
        ref float r0 = ref MemoryMarshal.GetReference(x0);
        ref float r1 = ref MemoryMarshal.GetReference(x1);
        ref float r2 = ref MemoryMarshal.GetReference(x2);
        Span<double> buf = stackalloc double[6 * WideLine];
        int j = j0;
        while (j < j1)
        {
            if (j % WideLine == 0 && j + 2 * WideLine <= j1)
            {
                SquareSums3Lines2(ref r0, ref r1, ref r2, n, row, j, sums);
                j += 2 * WideLine;
                continue;
            }
            int start = j % WideLine == 0 && j + WideLine <= j1 ? j : Math.Min(j / WideLine * WideLine, row - WideLine);
            int end = Math.Min(j1, start + WideLine);
            SquareSums3Line(ref r0, ref r1, ref r2, n, row, start, buf);
            for (int q = 0; q < 6; q++)
                buf.Slice(q * WideLine + j - start, end - j).CopyTo(sums.AsSpan(q * row + j, end - j));
            j = end;
        }
    }

    /// <summary>The six column sums of the 32 positions from <paramref name="j"/> down the n images, in registers,
    /// stored at sums[q row + j ...] (q = 2b: x_b; 2b + 1: x_b^2).</summary>
    private static void SquareSums3Lines2(ref float r0, ref float r1, ref float r2, int n, int row, int j,
                                          double[] sums)
    {
        Vector512<double> s0 = default, s1 = default, s2 = default, s3 = default;
        Vector512<double> q0 = default, q1 = default, q2 = default, q3 = default;
        Vector512<double> t0 = default, t1 = default, t2 = default, t3 = default;
        Vector512<double> u0 = default, u1 = default, u2 = default, u3 = default;
        Vector512<double> v0 = default, v1 = default, v2 = default, v3 = default;
        Vector512<double> w0 = default, w1 = default, w2 = default, w3 = default;
        nuint off = (nuint)j;
        for (int img = 0; img < n; img++, off += (nuint)row)
        {
            var (a0, a1) = Vector512.Widen(Vector512.LoadUnsafe(ref r0, off));
            var (a2, a3) = Vector512.Widen(Vector512.LoadUnsafe(ref r0, off + WideLine));
            s0 += a0; s1 += a1; s2 += a2; s3 += a3;
            q0 = Vector512.FusedMultiplyAdd(a0, a0, q0); q1 = Vector512.FusedMultiplyAdd(a1, a1, q1);
            q2 = Vector512.FusedMultiplyAdd(a2, a2, q2); q3 = Vector512.FusedMultiplyAdd(a3, a3, q3);
            var (b0, b1) = Vector512.Widen(Vector512.LoadUnsafe(ref r1, off));
            var (b2, b3) = Vector512.Widen(Vector512.LoadUnsafe(ref r1, off + WideLine));
            t0 += b0; t1 += b1; t2 += b2; t3 += b3;
            u0 = Vector512.FusedMultiplyAdd(b0, b0, u0); u1 = Vector512.FusedMultiplyAdd(b1, b1, u1);
            u2 = Vector512.FusedMultiplyAdd(b2, b2, u2); u3 = Vector512.FusedMultiplyAdd(b3, b3, u3);
            var (e0, e1) = Vector512.Widen(Vector512.LoadUnsafe(ref r2, off));
            var (e2, e3) = Vector512.Widen(Vector512.LoadUnsafe(ref r2, off + WideLine));
            v0 += e0; v1 += e1; v2 += e2; v3 += e3;
            w0 = Vector512.FusedMultiplyAdd(e0, e0, w0); w1 = Vector512.FusedMultiplyAdd(e1, e1, w1);
            w2 = Vector512.FusedMultiplyAdd(e2, e2, w2); w3 = Vector512.FusedMultiplyAdd(e3, e3, w3);
        }
        Store4(sums.AsSpan(j), s0, s1, s2, s3);
        Store4(sums.AsSpan(row + j), q0, q1, q2, q3);
        Store4(sums.AsSpan(2 * row + j), t0, t1, t2, t3);
        Store4(sums.AsSpan(3 * row + j), u0, u1, u2, u3);
        Store4(sums.AsSpan(4 * row + j), v0, v1, v2, v3);
        Store4(sums.AsSpan(5 * row + j), w0, w1, w2, w3);
    }

    /// <summary>The six column sums of the 16 positions from <paramref name="j"/>, into output[q 16 ...].</summary>
    private static void SquareSums3Line(ref float r0, ref float r1, ref float r2, int n, int row, int j,
                                        Span<double> output)
    {
        Vector512<double> s0 = default, s1 = default, q0 = default, q1 = default;
        Vector512<double> t0 = default, t1 = default, u0 = default, u1 = default;
        Vector512<double> v0 = default, v1 = default, w0 = default, w1 = default;
        nuint off = (nuint)j;
        for (int img = 0; img < n; img++, off += (nuint)row)
        {
            var (a0, a1) = Vector512.Widen(Vector512.LoadUnsafe(ref r0, off));
            s0 += a0; s1 += a1;
            q0 = Vector512.FusedMultiplyAdd(a0, a0, q0); q1 = Vector512.FusedMultiplyAdd(a1, a1, q1);
            var (b0, b1) = Vector512.Widen(Vector512.LoadUnsafe(ref r1, off));
            t0 += b0; t1 += b1;
            u0 = Vector512.FusedMultiplyAdd(b0, b0, u0); u1 = Vector512.FusedMultiplyAdd(b1, b1, u1);
            var (e0, e1) = Vector512.Widen(Vector512.LoadUnsafe(ref r2, off));
            v0 += e0; v1 += e1;
            w0 = Vector512.FusedMultiplyAdd(e0, e0, w0); w1 = Vector512.FusedMultiplyAdd(e1, e1, w1);
        }
        int h = Vector512<double>.Count;
        s0.CopyTo(output); s1.CopyTo(output.Slice(h));
        q0.CopyTo(output.Slice(2 * h)); q1.CopyTo(output.Slice(3 * h));
        t0.CopyTo(output.Slice(4 * h)); t1.CopyTo(output.Slice(5 * h));
        u0.CopyTo(output.Slice(6 * h)); u1.CopyTo(output.Slice(7 * h));
        v0.CopyTo(output.Slice(8 * h)); v1.CopyTo(output.Slice(9 * h));
        w0.CopyTo(output.Slice(10 * h)); w1.CopyTo(output.Slice(11 * h));
    }
}
