// Output passes of the fused BatchNorm sum (CpuBackend.Norm.BatchSum.cs) on maps smaller than a cache line (slak_nano's
// 2x2 and 1x1 stages, slak_nano64's 2x2 stage: H*W = 4 or 1). There a channel's positions of one image are too few for
// the per-channel scalar kernels, so the output passes ran per branch over each image's range with per-position rows
// (256-bit): the forward wrote y for branch 0 and read and rewrote it for branches 1 and 2 (five passes over y), the
// backward read dy once per branch, and every range ended in a scalar tail. These kernels do the three branches in one
// pass with 512-bit vectors: y = ((x_0 - m_0) s_0 + h_0 + ((x_1 - m_1) s_1 + h_1)) + ((x_2 - m_2) s_2 + h_2) written
// once, and the three dx_b = (dy k_b + b_b) + x_b a_b from one read of dy, with the per-position rows. The part ranges
// are rounded to whole lines (StreamPartChannels), so that only the last part has a scalar tail. Every value is the
// same float operations in the same order as the per-branch passes: the same bits.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether three-branch fused calls on maps smaller than a line run their output passes in the
    /// three-branch 512-bit kernels with line-aligned parts (the default where 512-bit vectors are accelerated;
    /// environment variable SLAK_BN_SUM_SMALL=0 turns them off) instead of per-branch 256-bit passes (the same bits).
    /// Internal so that the bench and tests can compare both.</summary>
    internal static bool BatchNormSumSmallMaps { get; set; } = Environment.GetEnvironmentVariable("SLAK_BN_SUM_SMALL") != "0";

    /// <summary>For the bench only: the fused calls compute the statistics (forward) or the gradient sums and parameter
    /// gradients (backward) and return without writing y or dx, so that the output pass's share of a call can be timed.
    /// Never set outside a benchmark.</summary>
    internal static bool BatchNormSumStatisticsOnly { get; set; }

    /// <summary>Whether the small-map output kernels end a range that is not a whole number of vectors (1x1 maps of 249
    /// channels: 9 positions an image) with one vector over the range's last 16 positions (the default; environment
    /// variable SLAK_BN_SUM_TAIL=0 turns it off) instead of a scalar loop (the same bits: every position is the same
    /// operations).</summary>
    internal static bool BatchNormSumOverlapTail { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_BN_SUM_TAIL") != "0";

    /// <summary>Whether a call of <paramref name="branches"/> branches on maps of <paramref name="hw"/> positions and
    /// image rows of <paramref name="row"/> takes the small-map kernels.</summary>
    private static bool UseBnSumSmallMaps(int branches, int hw, int row) =>
        BatchNormSumSmallMaps && branches == 3 && hw < WideLine && UseBnSumWide(row);

    /// <summary>Channels [c0, c1) of part <paramref name="part"/> of <paramref name="parts"/>: the even split of the
    /// c channels with inner bounds rounded down to channels that start on a whole line of the image row (parts can be
    /// empty).</summary>
    private static (int C0, int C1) LinePartChannels(int c, int hw, int part, int parts)
    {
        int step = 1; // the fewest channels that fill whole lines
        while (step * hw % WideLine != 0) step++;
        int Bound(int p) => p >= parts ? c : (int)((long)c * p / parts) / step * step;
        return (Bound(part), Bound(part + 1));
    }

    /// <summary>y[i] = ((x0[i] - m0[i]) s0[i] + h0[i] + ((x1[i] - m1[i]) s1[i] + h1[i])) + ((x2[i] - m2[i]) s2[i] +
    /// h2[i]) over one image's range: every span has y's length (the rows starting at the range's first
    /// position).</summary>
    private static void CenterScaleShiftSum3Rows(ReadOnlySpan<float> x0, ReadOnlySpan<float> x1, ReadOnlySpan<float> x2,
        ReadOnlySpan<float> m0, ReadOnlySpan<float> s0, ReadOnlySpan<float> h0, ReadOnlySpan<float> m1,
        ReadOnlySpan<float> s1, ReadOnlySpan<float> h1, ReadOnlySpan<float> m2, ReadOnlySpan<float> s2,
        ReadOnlySpan<float> h2, Span<float> y)
    {
        int len = y.Length, i = 0;
        ref float r0 = ref MemoryMarshal.GetReference(x0), r1 = ref MemoryMarshal.GetReference(x1);
        ref float r2 = ref MemoryMarshal.GetReference(x2), ry = ref MemoryMarshal.GetReference(y);
        ref float rm0 = ref MemoryMarshal.GetReference(m0), rs0 = ref MemoryMarshal.GetReference(s0);
        ref float rh0 = ref MemoryMarshal.GetReference(h0), rm1 = ref MemoryMarshal.GetReference(m1);
        ref float rs1 = ref MemoryMarshal.GetReference(s1), rh1 = ref MemoryMarshal.GetReference(h1);
        ref float rm2 = ref MemoryMarshal.GetReference(m2), rs2 = ref MemoryMarshal.GetReference(s2);
        ref float rh2 = ref MemoryMarshal.GetReference(h2);
        // With the overlapped tail the last partial vector is the range's last whole vector (its first positions
        // computed again, to the same values).
        bool overlap = BatchNormSumOverlapTail && len > WideLine && len % WideLine != 0;
        for (; i + WideLine <= len || (overlap && i < len); i += WideLine)
        {
            nuint at = (nuint)Math.Min(i, len - WideLine);
            var t0 = (Vector512.LoadUnsafe(ref r0, at) - Vector512.LoadUnsafe(ref rm0, at)) * Vector512.LoadUnsafe(ref rs0, at)
                     + Vector512.LoadUnsafe(ref rh0, at);
            var t1 = (Vector512.LoadUnsafe(ref r1, at) - Vector512.LoadUnsafe(ref rm1, at)) * Vector512.LoadUnsafe(ref rs1, at)
                     + Vector512.LoadUnsafe(ref rh1, at);
            var t2 = (Vector512.LoadUnsafe(ref r2, at) - Vector512.LoadUnsafe(ref rm2, at)) * Vector512.LoadUnsafe(ref rs2, at)
                     + Vector512.LoadUnsafe(ref rh2, at);
            (t0 + t1 + t2).StoreUnsafe(ref ry, at);
        }
        for (; i < len; i++)
            y[i] = (x0[i] - m0[i]) * s0[i] + h0[i] + ((x1[i] - m1[i]) * s1[i] + h1[i]) + ((x2[i] - m2[i]) * s2[i] + h2[i]);
    }

    /// <summary>dx_b[i] = (dy[i] k_b[i] + b_b[i]) + x_b[i] a_b[i] for the three branches over one image's range of len
    /// positions from <paramref name="at"/> (dy read once), the rows' entries from <paramref name="j0"/>.</summary>
    private static void BatchNormDx3Rows(ReadOnlySpan<float> dy, ReadOnlySpan<float> x0, ReadOnlySpan<float> x1,
        ReadOnlySpan<float> x2, float[][] kRows, float[][] aRows, float[][] bRows, int j0, int at, int len,
        Span<float> dx0, Span<float> dx1, Span<float> dx2)
    {
        ReadOnlySpan<float> g = dy.Slice(at, len), a0 = x0.Slice(at, len), a1 = x1.Slice(at, len), a2 = x2.Slice(at, len);
        Span<float> d0 = dx0.Slice(at, len), d1 = dx1.Slice(at, len), d2 = dx2.Slice(at, len);
        ReadOnlySpan<float> k0 = kRows[0].AsSpan(j0, len), k1 = kRows[1].AsSpan(j0, len), k2 = kRows[2].AsSpan(j0, len);
        ReadOnlySpan<float> f0 = aRows[0].AsSpan(j0, len), f1 = aRows[1].AsSpan(j0, len), f2 = aRows[2].AsSpan(j0, len);
        ReadOnlySpan<float> b0 = bRows[0].AsSpan(j0, len), b1 = bRows[1].AsSpan(j0, len), b2 = bRows[2].AsSpan(j0, len);
        ref float rg = ref MemoryMarshal.GetReference(g);
        int i = 0;
        // As in CenterScaleShiftSum3Rows.
        bool overlap = BatchNormSumOverlapTail && len > WideLine && len % WideLine != 0;
        for (; i + WideLine <= len || (overlap && i < len); i += WideLine)
        {
            nuint p = (nuint)Math.Min(i, len - WideLine);
            var gv = Vector512.LoadUnsafe(ref rg, p);
            Dx(gv, a0, k0, f0, b0, d0, p);
            Dx(gv, a1, k1, f1, b1, d1, p);
            Dx(gv, a2, k2, f2, b2, d2, p);
        }
        for (; i < len; i++)
        {
            d0[i] = (g[i] * k0[i] + b0[i]) + a0[i] * f0[i];
            d1[i] = (g[i] * k1[i] + b1[i]) + a1[i] * f1[i];
            d2[i] = (g[i] * k2[i] + b2[i]) + a2[i] * f2[i];
        }

        // Every span here has len entries and p + 16 <= len.
        static void Dx(Vector512<float> gv, ReadOnlySpan<float> x, ReadOnlySpan<float> k, ReadOnlySpan<float> a,
                       ReadOnlySpan<float> b, Span<float> dx, nuint p) =>
            (gv * Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(k), p) + Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(b), p)
             + Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(x), p) * Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(a), p))
            .StoreUnsafe(ref MemoryMarshal.GetReference(dx), p);
    }
}
