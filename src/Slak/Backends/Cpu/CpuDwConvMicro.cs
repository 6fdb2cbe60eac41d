// Register-blocked inner loops of the CPU depthwise convolution. One call handles one output row segment of R
// Vector256 (R = 1..8, a JIT-time constant through the TR type argument, so the accumulators stay in registers and
// unused ones vanish) and walks a channel's tap list row by row over precomputed [start, end) segments that leave
// out the taps lying entirely in the zero padding for this segment (the caller clips the kernel rows). The lanes
// are 8 consecutive columns (shift 0) or 8 images of one column (batch-interleaved layout, shift 3). With AVX-512,
// adjacent vector pairs of a segment run as Vector512 (same layout, half the instructions), and two adjacent output
// rows share each call: one row gives each accumulator one FMA per tap, so the loop waits on FMA latency; two rows
// give twice the independent chains per weight broadcast (and, in the weight gradient, half the folds).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

/// <summary>Compile-time count of vectors per output segment.</summary>
internal interface IDwVecCount
{
    static abstract int N { get; }
}

internal struct DwV1 : IDwVecCount { public static int N => 1; }
internal struct DwV2 : IDwVecCount { public static int N => 2; }
internal struct DwV3 : IDwVecCount { public static int N => 3; }
internal struct DwV4 : IDwVecCount { public static int N => 4; }
internal struct DwV5 : IDwVecCount { public static int N => 5; }
internal struct DwV6 : IDwVecCount { public static int N => 6; }
internal struct DwV7 : IDwVecCount { public static int N => 7; }
internal struct DwV8 : IDwVecCount { public static int N => 8; }

/// <summary>Inner loops; all pointers are into pinned, zero-padded scratch planes (see CpuDwConvEngine).</summary>
internal static unsafe class CpuDwConvMicro
{
    internal const int Lanes = 8;

    /// <summary>Pairs of adjacent Vector256 of a segment run as one Vector512 where the CPU has AVX-512 (the scratch
    /// layouts are unchanged: a segment's vectors are contiguous in both). SLAK_DWCONV_V512=0 turns it off, for
    /// side-by-side benchmarks.</summary>
    internal static readonly bool UseVector512 = Vector512.IsHardwareAccelerated
        && Environment.GetEnvironmentVariable("SLAK_DWCONV_V512") != "0";

    /// <summary>out[0 .. R*8) (+)= sum over rows i in [ilo, ihi] and taps t in [segs[2i], segs[2i+1]) of
    /// wts[t] * xbase[i*stride + (cols[t] &lt;&lt; shift) + lane].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Forward<TR>(float* outp, float* xbase, int stride, int* segs, int* cols, float* wts,
        int ilo, int ihi, int shift, bool accumulate) where TR : struct, IDwVecCount
    {
        if (TR.N > 1 && UseVector512)
        {
            Forward512<TR>(outp, xbase, stride, segs, cols, wts, ilo, ihi, shift, accumulate);
            return;
        }
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> a4 = default, a5 = default, a6 = default, a7 = default;
        if (accumulate)
        {
            a0 = Vector256.Load(outp);
            if (TR.N > 1) a1 = Vector256.Load(outp + 8);
            if (TR.N > 2) a2 = Vector256.Load(outp + 16);
            if (TR.N > 3) a3 = Vector256.Load(outp + 24);
            if (TR.N > 4) a4 = Vector256.Load(outp + 32);
            if (TR.N > 5) a5 = Vector256.Load(outp + 40);
            if (TR.N > 6) a6 = Vector256.Load(outp + 48);
            if (TR.N > 7) a7 = Vector256.Load(outp + 56);
        }
        for (int i = ilo; i <= ihi; i++)
        {
            float* xrow = xbase + (nint)i * stride;
            for (int t = segs[2 * i], e = segs[2 * i + 1]; t < e; t++)
            {
                var w = Vector256.Create(wts[t]);
                float* p = xrow + (cols[t] << shift);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(p), w, a0);
                if (TR.N > 1) a1 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 8), w, a1);
                if (TR.N > 2) a2 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 16), w, a2);
                if (TR.N > 3) a3 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 24), w, a3);
                if (TR.N > 4) a4 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 32), w, a4);
                if (TR.N > 5) a5 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 40), w, a5);
                if (TR.N > 6) a6 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 48), w, a6);
                if (TR.N > 7) a7 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 56), w, a7);
            }
        }
        a0.Store(outp);
        if (TR.N > 1) a1.Store(outp + 8);
        if (TR.N > 2) a2.Store(outp + 16);
        if (TR.N > 3) a3.Store(outp + 24);
        if (TR.N > 4) a4.Store(outp + 32);
        if (TR.N > 5) a5.Store(outp + 40);
        if (TR.N > 6) a6.Store(outp + 48);
        if (TR.N > 7) a7.Store(outp + 56);
    }

    /// <summary>For each tap t of rows [ilo, ihi] in [segs[2i], segs[2i+1]): acc[t] += lane-wise products
    /// xbase[i*stride + (cols[t] &lt;&lt; shift) + lane] * dy[lane] summed over the R vectors of dy (held in
    /// registers for the whole tap walk).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Filter<TR>(Vector256<float>* acc, float* xbase, int stride, float* dy, int* segs,
        int* cols, int ilo, int ihi, int shift) where TR : struct, IDwVecCount
    {
        if (TR.N > 1 && UseVector512)
        {
            Filter512<TR>(acc, xbase, stride, dy, segs, cols, ilo, ihi, shift);
            return;
        }
        Vector256<float> d0 = Vector256.Load(dy), d1 = default, d2 = default, d3 = default;
        Vector256<float> d4 = default, d5 = default, d6 = default, d7 = default;
        if (TR.N > 1) d1 = Vector256.Load(dy + 8);
        if (TR.N > 2) d2 = Vector256.Load(dy + 16);
        if (TR.N > 3) d3 = Vector256.Load(dy + 24);
        if (TR.N > 4) d4 = Vector256.Load(dy + 32);
        if (TR.N > 5) d5 = Vector256.Load(dy + 40);
        if (TR.N > 6) d6 = Vector256.Load(dy + 48);
        if (TR.N > 7) d7 = Vector256.Load(dy + 56);
        for (int i = ilo; i <= ihi; i++)
        {
            float* xrow = xbase + (nint)i * stride;
            for (int t = segs[2 * i], e = segs[2 * i + 1]; t < e; t++)
            {
                float* p = xrow + (cols[t] << shift);
                // Two chains halve the FMA latency on the critical path of one tap.
                var s0 = Vector256.FusedMultiplyAdd(Vector256.Load(p), d0, acc[t]);
                var s1 = Vector256<float>.Zero;
                if (TR.N > 1) s1 = Vector256.Multiply(Vector256.Load(p + 8), d1);
                if (TR.N > 2) s0 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 16), d2, s0);
                if (TR.N > 3) s1 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 24), d3, s1);
                if (TR.N > 4) s0 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 32), d4, s0);
                if (TR.N > 5) s1 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 40), d5, s1);
                if (TR.N > 6) s0 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 48), d6, s0);
                if (TR.N > 7) s1 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 56), d7, s1);
                acc[t] = TR.N > 1 ? s0 + s1 : s0;
            }
        }
    }

    /// <summary><see cref="Forward{TR}"/> with the segment's vectors taken in pairs as Vector512 (the last one alone
    /// when R is odd).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Forward512<TR>(float* outp, float* xbase, int stride, int* segs, int* cols, float* wts,
        int ilo, int ihi, int shift, bool accumulate) where TR : struct, IDwVecCount
    {
        bool odd = (TR.N & 1) != 0;
        int tail = (TR.N - 1) * 8;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> at = default;
        if (accumulate)
        {
            a0 = Vector512.Load(outp);
            if (TR.N > 3) a1 = Vector512.Load(outp + 16);
            if (TR.N > 5) a2 = Vector512.Load(outp + 32);
            if (TR.N > 7) a3 = Vector512.Load(outp + 48);
            if (odd) at = Vector256.Load(outp + tail);
        }
        for (int i = ilo; i <= ihi; i++)
        {
            float* xrow = xbase + (nint)i * stride;
            for (int t = segs[2 * i], e = segs[2 * i + 1]; t < e; t++)
            {
                var w = Vector512.Create(wts[t]);
                float* p = xrow + (cols[t] << shift);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(p), w, a0);
                if (TR.N > 3) a1 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 16), w, a1);
                if (TR.N > 5) a2 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 32), w, a2);
                if (TR.N > 7) a3 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 48), w, a3);
                if (odd) at = Vector256.FusedMultiplyAdd(Vector256.Load(p + tail), w.GetLower(), at);
            }
        }
        a0.Store(outp);
        if (TR.N > 3) a1.Store(outp + 16);
        if (TR.N > 5) a2.Store(outp + 32);
        if (TR.N > 7) a3.Store(outp + 48);
        if (odd) at.Store(outp + tail);
    }

    /// <summary>Two adjacent output rows at once (Vector512 pairs, AVX-512 only): out0 gets rows i in [ilo0, ihi0]
    /// read from xbase, out1 rows i in [ilo1, ihi1] read one input row lower (xbase + stride); ilo1 &lt;= ilo0 and
    /// ihi1 &lt;= ihi0 (the lower output row is clipped earlier at both ends). Each weight broadcast then feeds twice
    /// the FMAs and there are twice the independent accumulator chains: with one row, a tap's FMAs wait on the
    /// previous tap's (FMA latency), not on the FMA units. Taps are added in the same order as
    /// <see cref="Forward{TR}"/>, so results are bit-identical.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Forward2Rows<TR>(float* out0, float* out1, float* xbase, int stride, int* segs, int* cols,
        float* wts, int ilo0, int ihi0, int ilo1, int ihi1, int shift, bool accumulate) where TR : struct, IDwVecCount
    {
        // Kernel rows only the lower output row reaches (its top is clipped one row later) go first, through the
        // one-row kernel; its partial sum is reloaded below, so every output adds its taps in the one-row order.
        bool lowerFirst = ilo1 < ilo0;
        if (lowerFirst) Forward<TR>(out1, xbase + stride, stride, segs, cols, wts, ilo1, ilo0 - 1, shift, accumulate);
        bool odd = (TR.N & 1) != 0;
        int tail = (TR.N - 1) * 8;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        Vector256<float> at = default, bt = default;
        if (accumulate)
        {
            if (TR.N > 1) a0 = Vector512.Load(out0);
            if (TR.N > 3) a1 = Vector512.Load(out0 + 16);
            if (TR.N > 5) a2 = Vector512.Load(out0 + 32);
            if (TR.N > 7) a3 = Vector512.Load(out0 + 48);
            if (odd) at = Vector256.Load(out0 + tail);
        }
        if (accumulate || lowerFirst)
        {
            if (TR.N > 1) b0 = Vector512.Load(out1);
            if (TR.N > 3) b1 = Vector512.Load(out1 + 16);
            if (TR.N > 5) b2 = Vector512.Load(out1 + 32);
            if (TR.N > 7) b3 = Vector512.Load(out1 + 48);
            if (odd) bt = Vector256.Load(out1 + tail);
        }
        for (int i = ilo0; i <= ihi1; i++)
        {
            float* p0row = xbase + (nint)i * stride;
            float* p1row = p0row + stride;
            for (int t = segs[2 * i], e = segs[2 * i + 1]; t < e; t++)
            {
                var w = Vector512.Create(wts[t]);
                int off = cols[t] << shift;
                float* p = p0row + off;
                float* q = p1row + off;
                if (TR.N > 1)
                {
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Load(p), w, a0);
                    b0 = Vector512.FusedMultiplyAdd(Vector512.Load(q), w, b0);
                }
                if (TR.N > 3)
                {
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 16), w, a1);
                    b1 = Vector512.FusedMultiplyAdd(Vector512.Load(q + 16), w, b1);
                }
                if (TR.N > 5)
                {
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 32), w, a2);
                    b2 = Vector512.FusedMultiplyAdd(Vector512.Load(q + 32), w, b2);
                }
                if (TR.N > 7)
                {
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 48), w, a3);
                    b3 = Vector512.FusedMultiplyAdd(Vector512.Load(q + 48), w, b3);
                }
                if (odd)
                {
                    at = Vector256.FusedMultiplyAdd(Vector256.Load(p + tail), w.GetLower(), at);
                    bt = Vector256.FusedMultiplyAdd(Vector256.Load(q + tail), w.GetLower(), bt);
                }
            }
        }
        if (TR.N > 1) { a0.Store(out0); b0.Store(out1); }
        if (TR.N > 3) { a1.Store(out0 + 16); b1.Store(out1 + 16); }
        if (TR.N > 5) { a2.Store(out0 + 32); b2.Store(out1 + 32); }
        if (TR.N > 7) { a3.Store(out0 + 48); b3.Store(out1 + 48); }
        if (odd) { at.Store(out0 + tail); bt.Store(out1 + tail); }
        // Kernel rows only the upper output row reaches (the lower one has left the image).
        if (ihi1 < ihi0) Forward<TR>(out0, xbase, stride, segs, cols, wts, ihi1 + 1, ihi0, shift, accumulate: true);
    }

    /// <summary><see cref="Filter{TR}"/> for two adjacent output rows (Vector512 pairs, AVX-512 only): dy0 and dy1
    /// are their output gradients, row 0 reaches kernel rows [ilo0, ihi0] from xbase and row 1 [ilo1, ihi1] one input
    /// row lower (ilo1 &lt;= ilo0, ihi1 &lt;= ihi0). A tap's two rows are folded into its accumulator once, which halves
    /// the horizontal folds and the accumulator loads and stores per multiply-add.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Filter2Rows<TR>(Vector256<float>* acc, float* xbase, int stride, float* dy0, float* dy1,
        int* segs, int* cols, int ilo0, int ihi0, int ilo1, int ihi1, int shift) where TR : struct, IDwVecCount
    {
        Filter<TR>(acc, xbase + stride, stride, dy1, segs, cols, ilo1, ilo0 - 1, shift);
        bool odd = (TR.N & 1) != 0;
        int tail = (TR.N - 1) * 8;
        Vector512<float> d0 = default, d1 = default, d2 = default, d3 = default;
        Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default;
        Vector256<float> dt = default, et = default;
        if (TR.N > 1) { d0 = Vector512.Load(dy0); e0 = Vector512.Load(dy1); }
        if (TR.N > 3) { d1 = Vector512.Load(dy0 + 16); e1 = Vector512.Load(dy1 + 16); }
        if (TR.N > 5) { d2 = Vector512.Load(dy0 + 32); e2 = Vector512.Load(dy1 + 32); }
        if (TR.N > 7) { d3 = Vector512.Load(dy0 + 48); e3 = Vector512.Load(dy1 + 48); }
        if (odd) { dt = Vector256.Load(dy0 + tail); et = Vector256.Load(dy1 + tail); }
        for (int i = ilo0; i <= ihi1; i++)
        {
            float* p0row = xbase + (nint)i * stride;
            float* p1row = p0row + stride;
            for (int t = segs[2 * i], e = segs[2 * i + 1]; t < e; t++)
            {
                int off = cols[t] << shift;
                float* p = p0row + off;
                float* q = p1row + off;
                var s0 = Vector512<float>.Zero;
                var s1 = Vector512<float>.Zero;
                if (TR.N > 1)
                {
                    s0 = Vector512.Multiply(Vector512.Load(p), d0);
                    s1 = Vector512.Multiply(Vector512.Load(q), e0);
                }
                if (TR.N > 3)
                {
                    s0 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 16), d1, s0);
                    s1 = Vector512.FusedMultiplyAdd(Vector512.Load(q + 16), e1, s1);
                }
                if (TR.N > 5)
                {
                    s0 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 32), d2, s0);
                    s1 = Vector512.FusedMultiplyAdd(Vector512.Load(q + 32), e2, s1);
                }
                if (TR.N > 7)
                {
                    s0 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 48), d3, s0);
                    s1 = Vector512.FusedMultiplyAdd(Vector512.Load(q + 48), e3, s1);
                }
                var r = acc[t];
                if (TR.N > 1)
                {
                    s0 += s1;
                    r += s0.GetLower() + s0.GetUpper();
                }
                if (odd)
                {
                    r = Vector256.FusedMultiplyAdd(Vector256.Load(p + tail), dt, r);
                    r = Vector256.FusedMultiplyAdd(Vector256.Load(q + tail), et, r);
                }
                acc[t] = r;
            }
        }
        Filter<TR>(acc, xbase, stride, dy0, segs, cols, ihi1 + 1, ihi0, shift);
    }

    /// <summary><see cref="Filter{TR}"/> with the vectors of dy taken in pairs as Vector512; each tap's lane sums are
    /// folded back to one Vector256 accumulator.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Filter512<TR>(Vector256<float>* acc, float* xbase, int stride, float* dy, int* segs,
        int* cols, int ilo, int ihi, int shift) where TR : struct, IDwVecCount
    {
        bool odd = (TR.N & 1) != 0;
        int tail = (TR.N - 1) * 8;
        Vector512<float> d0 = Vector512.Load(dy), d1 = default, d2 = default, d3 = default;
        Vector256<float> dt = default;
        if (TR.N > 3) d1 = Vector512.Load(dy + 16);
        if (TR.N > 5) d2 = Vector512.Load(dy + 32);
        if (TR.N > 7) d3 = Vector512.Load(dy + 48);
        if (odd) dt = Vector256.Load(dy + tail);
        for (int i = ilo; i <= ihi; i++)
        {
            float* xrow = xbase + (nint)i * stride;
            for (int t = segs[2 * i], e = segs[2 * i + 1]; t < e; t++)
            {
                float* p = xrow + (cols[t] << shift);
                var s0 = Vector512.Multiply(Vector512.Load(p), d0);
                var s1 = Vector512<float>.Zero;
                if (TR.N > 3) s1 = Vector512.Multiply(Vector512.Load(p + 16), d1);
                if (TR.N > 5) s0 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 32), d2, s0);
                if (TR.N > 7) s1 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 48), d3, s1);
                if (TR.N > 3) s0 += s1;
                var r = acc[t] + s0.GetLower() + s0.GetUpper();
                if (odd) r = Vector256.FusedMultiplyAdd(Vector256.Load(p + tail), dt, r);
                acc[t] = r;
            }
        }
    }
}
