// Wide kernels of the fused BatchNorm sum (CpuBackend.Norm.BatchSum.cs), on hosts with 512-bit vectors. The column
// sums of the statistics (forward) and of the gradient sums (backward) walk down the n images of a part's channel
// range; the 256-bit kernels (CpuBackend.Norm.Columns.cs, ColumnBlock3) read 32 or 64 bytes of each stream per image
// at a stride of a whole image row (C*H*W floats), so every sweep touches one line of n different pages and the range
// is swept one line (or half a line) at a time. These read whole cache lines as 512-bit vectors, up to four adjacent
// lines per stream per image (forward) or two per stream for the four streams of the backward, with the float64
// accumulators in registers. Every position's sums are the same operations in the same order as the 256-bit kernels
// (each value widened to float64 and added over the images in order; the product of two floats is exact in float64,
// so a fused multiply-add rounds it exactly as the separate multiply and add did), so the bits do not change.
// The output passes add the three branches in registers (y = (BN_0 + BN_1) + BN_2 with each term rounded to float,
// as the running-sum form does) and the backward reads dy once for the three dx_b.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether the fused BatchNorm sum runs its 512-bit kernels (the default where 512-bit vectors are
    /// accelerated; environment variable SLAK_BN_SUM_WIDE=0 turns them off) instead of the 256-bit column sums and
    /// per-branch output passes (the same bits). Internal so that the bench and tests can compare both.</summary>
    internal static bool BatchNormSumWide { get; set; } = Environment.GetEnvironmentVariable("SLAK_BN_SUM_WIDE") != "0";

    private const int WideLine = 16; // floats in one 512-bit vector, one 64-byte cache line

    /// <summary>Whether a call on image rows of <paramref name="row"/> positions takes the wide kernels.</summary>
    private static bool UseBnSumWide(int row) => BatchNormSumWide && Vector512.IsHardwareAccelerated && row >= WideLine;

    /// <summary>Column sums of x and x^2 over positions [j0, j1) (row at least one line): four lines at a time on the
    /// grid of lines that starts at position 0, then single lines; a partial line at either end as one whole line that
    /// overlaps it, of which only the range's positions are kept.</summary>
    private static void ColumnSquareSumsWide(ReadOnlySpan<float> x, int n, int row, int j0, int j1, Span<double> sum,
                                             Span<double> sq)
    {
        ref float rx = ref MemoryMarshal.GetReference(x);
        Span<double> bufS = stackalloc double[WideLine];
        Span<double> bufQ = stackalloc double[WideLine];
        int j = j0;
        while (j < j1)
        {
            if (j % WideLine == 0 && j + 4 * WideLine <= j1)
            {
                SquareSumsLines4(ref rx, n, row, j, sum.Slice(j, 4 * WideLine), sq.Slice(j, 4 * WideLine));
                j += 4 * WideLine;
                continue;
            }
            if (j % WideLine == 0 && j + WideLine <= j1)
            {
                SquareSumsLine(ref rx, n, row, j, sum.Slice(j, WideLine), sq.Slice(j, WideLine));
                j += WideLine;
                continue;
            }
            int start = Math.Min(j / WideLine * WideLine, row - WideLine);
            int end = Math.Min(j1, start + WideLine);
            SquareSumsLine(ref rx, n, row, start, bufS, bufQ);
            bufS.Slice(j - start, end - j).CopyTo(sum.Slice(j, end - j));
            bufQ.Slice(j - start, end - j).CopyTo(sq.Slice(j, end - j));
            j = end;
        }
    }

    /// <summary>Sums of x and x^2 of the 64 positions from <paramref name="j"/> down the n images, in
    /// registers.</summary>
    private static void SquareSumsLines4(ref float rx, int n, int row, int j, Span<double> sum, Span<double> sq)
    {
        Vector512<double> s0 = default, s1 = default, s2 = default, s3 = default;
        Vector512<double> s4 = default, s5 = default, s6 = default, s7 = default;
        Vector512<double> q0 = default, q1 = default, q2 = default, q3 = default;
        Vector512<double> q4 = default, q5 = default, q6 = default, q7 = default;
        nuint off = (nuint)j;
        for (int img = 0; img < n; img++, off += (nuint)row)
        {
            var (a0, a1) = Vector512.Widen(Vector512.LoadUnsafe(ref rx, off));
            var (a2, a3) = Vector512.Widen(Vector512.LoadUnsafe(ref rx, off + WideLine));
            var (a4, a5) = Vector512.Widen(Vector512.LoadUnsafe(ref rx, off + 2 * WideLine));
            var (a6, a7) = Vector512.Widen(Vector512.LoadUnsafe(ref rx, off + 3 * WideLine));
            s0 += a0; s1 += a1; s2 += a2; s3 += a3; s4 += a4; s5 += a5; s6 += a6; s7 += a7;
            q0 = Vector512.FusedMultiplyAdd(a0, a0, q0); q1 = Vector512.FusedMultiplyAdd(a1, a1, q1);
            q2 = Vector512.FusedMultiplyAdd(a2, a2, q2); q3 = Vector512.FusedMultiplyAdd(a3, a3, q3);
            q4 = Vector512.FusedMultiplyAdd(a4, a4, q4); q5 = Vector512.FusedMultiplyAdd(a5, a5, q5);
            q6 = Vector512.FusedMultiplyAdd(a6, a6, q6); q7 = Vector512.FusedMultiplyAdd(a7, a7, q7);
        }
        int h = Vector512<double>.Count;
        s0.CopyTo(sum); s1.CopyTo(sum.Slice(h)); s2.CopyTo(sum.Slice(2 * h)); s3.CopyTo(sum.Slice(3 * h));
        s4.CopyTo(sum.Slice(4 * h)); s5.CopyTo(sum.Slice(5 * h)); s6.CopyTo(sum.Slice(6 * h)); s7.CopyTo(sum.Slice(7 * h));
        q0.CopyTo(sq); q1.CopyTo(sq.Slice(h)); q2.CopyTo(sq.Slice(2 * h)); q3.CopyTo(sq.Slice(3 * h));
        q4.CopyTo(sq.Slice(4 * h)); q5.CopyTo(sq.Slice(5 * h)); q6.CopyTo(sq.Slice(6 * h)); q7.CopyTo(sq.Slice(7 * h));
    }

    /// <summary>Sums of x and x^2 of the 16 positions from <paramref name="j"/> down the n images, in
    /// registers.</summary>
    private static void SquareSumsLine(ref float rx, int n, int row, int j, Span<double> sum, Span<double> sq)
    {
        Vector512<double> s0 = default, s1 = default, q0 = default, q1 = default;
        nuint off = (nuint)j;
        for (int img = 0; img < n; img++, off += (nuint)row)
        {
            var (a0, a1) = Vector512.Widen(Vector512.LoadUnsafe(ref rx, off));
            s0 += a0; s1 += a1;
            q0 = Vector512.FusedMultiplyAdd(a0, a0, q0); q1 = Vector512.FusedMultiplyAdd(a1, a1, q1);
        }
        int h = Vector512<double>.Count;
        s0.CopyTo(sum); s1.CopyTo(sum.Slice(h));
        q0.CopyTo(sq); q1.CopyTo(sq.Slice(h));
    }

    /// <summary>The backward's column sums over positions [j0, j1) for three branches (row at least one line): sums[j]
    /// = sum of dy and sums[(1 + b) row + j] = sum of dy * x_b, float64, images in order; two lines at a time on the
    /// grid of lines, then single lines, partial lines at the ends as overlapping whole lines.</summary>
    private static void ColumnSums3Wide(ReadOnlySpan<float> dy, ReadOnlySpan<float> x0, ReadOnlySpan<float> x1,
                                        ReadOnlySpan<float> x2, int n, int row, int j0, int j1, double[] sums)
    {
        ref float rg = ref MemoryMarshal.GetReference(dy);
        ref float r0 = ref MemoryMarshal.GetReference(x0);
        ref float r1 = ref MemoryMarshal.GetReference(x1);
        ref float r2 = ref MemoryMarshal.GetReference(x2);
        Span<double> buf = stackalloc double[4 * WideLine];
        int j = j0;
        while (j < j1)
        {
            if (j % WideLine == 0 && j + 2 * WideLine <= j1)
            {
                GradSums3Lines2(ref rg, ref r0, ref r1, ref r2, n, row, j, sums);
                j += 2 * WideLine;
                continue;
            }
            int start = j % WideLine == 0 && j + WideLine <= j1 ? j : Math.Min(j / WideLine * WideLine, row - WideLine);
            int end = Math.Min(j1, start + WideLine);
            GradSums3Line(ref rg, ref r0, ref r1, ref r2, n, row, start, buf);
            for (int q = 0; q < 4; q++)
                buf.Slice(q * WideLine + j - start, end - j).CopyTo(sums.AsSpan(q * row + j, end - j));
            j = end;
        }
    }

    /// <summary>The four column sums of the 32 positions from <paramref name="j"/> down the n images, in registers,
    /// stored at sums[q * row + j ...] (q = 0: dy; 1 + b: dy * x_b).</summary>
    private static void GradSums3Lines2(ref float rg, ref float r0, ref float r1, ref float r2, int n, int row, int j,
                                        double[] sums)
    {
        Vector512<double> s0 = default, s1 = default, s2 = default, s3 = default;
        Vector512<double> p0 = default, p1 = default, p2 = default, p3 = default;
        Vector512<double> q0 = default, q1 = default, q2 = default, q3 = default;
        Vector512<double> t0 = default, t1 = default, t2 = default, t3 = default;
        nuint off = (nuint)j;
        for (int img = 0; img < n; img++, off += (nuint)row)
        {
            var (g0, g1) = Vector512.Widen(Vector512.LoadUnsafe(ref rg, off));
            var (g2, g3) = Vector512.Widen(Vector512.LoadUnsafe(ref rg, off + WideLine));
            s0 += g0; s1 += g1; s2 += g2; s3 += g3;
            var (a0, a1) = Vector512.Widen(Vector512.LoadUnsafe(ref r0, off));
            var (a2, a3) = Vector512.Widen(Vector512.LoadUnsafe(ref r0, off + WideLine));
            p0 = Vector512.FusedMultiplyAdd(g0, a0, p0); p1 = Vector512.FusedMultiplyAdd(g1, a1, p1);
            p2 = Vector512.FusedMultiplyAdd(g2, a2, p2); p3 = Vector512.FusedMultiplyAdd(g3, a3, p3);
            var (b0, b1) = Vector512.Widen(Vector512.LoadUnsafe(ref r1, off));
            var (b2, b3) = Vector512.Widen(Vector512.LoadUnsafe(ref r1, off + WideLine));
            q0 = Vector512.FusedMultiplyAdd(g0, b0, q0); q1 = Vector512.FusedMultiplyAdd(g1, b1, q1);
            q2 = Vector512.FusedMultiplyAdd(g2, b2, q2); q3 = Vector512.FusedMultiplyAdd(g3, b3, q3);
            var (e0, e1) = Vector512.Widen(Vector512.LoadUnsafe(ref r2, off));
            var (e2, e3) = Vector512.Widen(Vector512.LoadUnsafe(ref r2, off + WideLine));
            t0 = Vector512.FusedMultiplyAdd(g0, e0, t0); t1 = Vector512.FusedMultiplyAdd(g1, e1, t1);
            t2 = Vector512.FusedMultiplyAdd(g2, e2, t2); t3 = Vector512.FusedMultiplyAdd(g3, e3, t3);
        }
        Store4(sums.AsSpan(j), s0, s1, s2, s3);
        Store4(sums.AsSpan(row + j), p0, p1, p2, p3);
        Store4(sums.AsSpan(2 * row + j), q0, q1, q2, q3);
        Store4(sums.AsSpan(3 * row + j), t0, t1, t2, t3);
    }

    private static void Store4(Span<double> to, Vector512<double> v0, Vector512<double> v1, Vector512<double> v2,
                               Vector512<double> v3)
    {
        int h = Vector512<double>.Count;
        v0.CopyTo(to); v1.CopyTo(to.Slice(h)); v2.CopyTo(to.Slice(2 * h)); v3.CopyTo(to.Slice(3 * h));
    }

    /// <summary>The four column sums of the 16 positions from <paramref name="j"/>, into output[q * 16 ...].</summary>
    private static void GradSums3Line(ref float rg, ref float r0, ref float r1, ref float r2, int n, int row, int j,
                                      Span<double> output)
    {
        Vector512<double> s0 = default, s1 = default, p0 = default, p1 = default;
        Vector512<double> q0 = default, q1 = default, t0 = default, t1 = default;
        nuint off = (nuint)j;
        for (int img = 0; img < n; img++, off += (nuint)row)
        {
            var (g0, g1) = Vector512.Widen(Vector512.LoadUnsafe(ref rg, off));
            s0 += g0; s1 += g1;
            var (a0, a1) = Vector512.Widen(Vector512.LoadUnsafe(ref r0, off));
            p0 = Vector512.FusedMultiplyAdd(g0, a0, p0); p1 = Vector512.FusedMultiplyAdd(g1, a1, p1);
            var (b0, b1) = Vector512.Widen(Vector512.LoadUnsafe(ref r1, off));
            q0 = Vector512.FusedMultiplyAdd(g0, b0, q0); q1 = Vector512.FusedMultiplyAdd(g1, b1, q1);
            var (e0, e1) = Vector512.Widen(Vector512.LoadUnsafe(ref r2, off));
            t0 = Vector512.FusedMultiplyAdd(g0, e0, t0); t1 = Vector512.FusedMultiplyAdd(g1, e1, t1);
        }
        int h = Vector512<double>.Count;
        s0.CopyTo(output); s1.CopyTo(output.Slice(h));
        p0.CopyTo(output.Slice(2 * h)); p1.CopyTo(output.Slice(3 * h));
        q0.CopyTo(output.Slice(4 * h)); q1.CopyTo(output.Slice(5 * h));
        t0.CopyTo(output.Slice(6 * h)); t1.CopyTo(output.Slice(7 * h));
    }

    /// <summary>y = ((x_0 - m_0) s_0 + h_0) + ((x_1 - m_1) s_1 + h_1) + ((x_2 - m_2) s_2 + h_2) over one channel's
    /// positions of one image, each term rounded to float before it is added (the running-sum form's operations).
    /// </summary>
    private static void CenterScaleShiftSum3(ReadOnlySpan<float> x0, ReadOnlySpan<float> x1, ReadOnlySpan<float> x2,
        float m0, float sc0, float sh0, float m1, float sc1, float sh1, float m2, float sc2, float sh2, Span<float> y)
    {
        int i = 0, len = y.Length;
        ref float r0 = ref MemoryMarshal.GetReference(x0);
        ref float r1 = ref MemoryMarshal.GetReference(x1);
        ref float r2 = ref MemoryMarshal.GetReference(x2);
        ref float ry = ref MemoryMarshal.GetReference(y);
        Vector512<float> vm0 = Vector512.Create(m0), vs0 = Vector512.Create(sc0), vh0 = Vector512.Create(sh0);
        Vector512<float> vm1 = Vector512.Create(m1), vs1 = Vector512.Create(sc1), vh1 = Vector512.Create(sh1);
        Vector512<float> vm2 = Vector512.Create(m2), vs2 = Vector512.Create(sc2), vh2 = Vector512.Create(sh2);
        for (; i + WideLine <= len; i += WideLine)
        {
            nuint at = (nuint)i;
            var t0 = (Vector512.LoadUnsafe(ref r0, at) - vm0) * vs0 + vh0;
            var t1 = (Vector512.LoadUnsafe(ref r1, at) - vm1) * vs1 + vh1;
            var t2 = (Vector512.LoadUnsafe(ref r2, at) - vm2) * vs2 + vh2;
            (t0 + t1 + t2).StoreUnsafe(ref ry, at);
        }
        for (; i < len; i++)
            y[i] = (x0[i] - m0) * sc0 + sh0 + ((x1[i] - m1) * sc1 + sh1) + ((x2[i] - m2) * sc2 + sh2);
    }

    /// <summary>dx_b = (dy * k_b + b_b) + x_b * a_b for the three branches over one channel's positions of one image,
    /// dy read once.</summary>
    private static void BatchNormDx3(ReadOnlySpan<float> dy, ReadOnlySpan<float> x0, ReadOnlySpan<float> x1,
        ReadOnlySpan<float> x2, ReadOnlySpan<float> k, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dx0,
        Span<float> dx1, Span<float> dx2)
    {
        int i = 0, len = dy.Length;
        ref float rg = ref MemoryMarshal.GetReference(dy);
        ref float r0 = ref MemoryMarshal.GetReference(x0);
        ref float r1 = ref MemoryMarshal.GetReference(x1);
        ref float r2 = ref MemoryMarshal.GetReference(x2);
        ref float d0 = ref MemoryMarshal.GetReference(dx0);
        ref float d1 = ref MemoryMarshal.GetReference(dx1);
        ref float d2 = ref MemoryMarshal.GetReference(dx2);
        Vector512<float> k0 = Vector512.Create(k[0]), a0 = Vector512.Create(a[0]), b0 = Vector512.Create(b[0]);
        Vector512<float> k1 = Vector512.Create(k[1]), a1 = Vector512.Create(a[1]), b1 = Vector512.Create(b[1]);
        Vector512<float> k2 = Vector512.Create(k[2]), a2 = Vector512.Create(a[2]), b2 = Vector512.Create(b[2]);
        for (; i + WideLine <= len; i += WideLine)
        {
            nuint at = (nuint)i;
            var g = Vector512.LoadUnsafe(ref rg, at);
            (g * k0 + b0 + Vector512.LoadUnsafe(ref r0, at) * a0).StoreUnsafe(ref d0, at);
            (g * k1 + b1 + Vector512.LoadUnsafe(ref r1, at) * a1).StoreUnsafe(ref d1, at);
            (g * k2 + b2 + Vector512.LoadUnsafe(ref r2, at) * a2).StoreUnsafe(ref d2, at);
        }
        for (; i < len; i++)
        {
            dx0[i] = (dy[i] * k[0] + b[0]) + x0[i] * a[0];
            dx1[i] = (dy[i] * k[1] + b[1]) + x1[i] * a[1];
            dx2[i] = (dy[i] * k[2] + b[2]) + x2[i] * a[2];
        }
    }
}
