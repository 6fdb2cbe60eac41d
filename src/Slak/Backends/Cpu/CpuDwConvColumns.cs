// Line kernels of the small-map depthwise path (CpuDwConvSmallMap.cs) for a branch whose kernel spans a whole line
// of the map: the window (the part of the kernel that can meet the map) is 2L-1 taps long along an axis A where the
// map is L = 4, 8 or 16 pixels long (slak_nano: 15 x 3 on 8 x 8, 9 x 3 on 4 x 4; slak_nano64: 31 x 3 on 16 x 16,
// 15 x 3 on 8 x 8, 7 x 3 on 4 x 4). There every (output pixel, input pixel) pair of two lines along A is joined by one tap, so:
// - forward and input gradient: for an output line and one tap offset along the other axis B, the L accumulators of
//   the output line and the 2L-1 weight vectors of that offset stay in registers while the L input pixels of the
//   input line are loaded once each: L*L FMAs for L input loads and 2L-1 weight loads (0.36 loads per FMA at L = 8,
//   the general small-map kernel needs 1.25), and no FMA falls outside the map. At L = 4 two output lines go
//   together (8 accumulators cover the FMA latency). At L = 16 a line is two blocks of 8 and each pair of blocks is
//   the L = 8 kernel with its own 15 taps (the whole line's 16 accumulators and 31 weights would not fit in the 32
//   registers);
// - weight gradient: the 2L-1 tap accumulators of one offset along B stay in registers while each output line's
//   L gradient vectors are loaded once and the input line streams through (L*L FMAs for 2L loads). At L = 4 two
//   columns of 16 channels go together; at L = 16, blocks of 8 as in the forward.
// - a window only 3 taps along such lines (the S x S branch, or an M x 3 branch whose long side does not span the
//   map) takes narrow variants: the L input pixels of a line are loaded once for its 3L-2 FMAs (the general kernel
//   loads one input per FMA), and the weight gradient keeps 3 x 4 partial sums in registers.
// Layouts are the small-map path's (pixel-major columns of 16 channels, weight tables [column][tap][16]); a column's
// channels beyond C are zeros in the tables and are never stored. The order of the sums is fixed by the shape, so
// results do not depend on the thread count. The layout moves around these kernels (CpuDwConvPixelMajor) cost about
// as much as their FMAs on 8 x 8 maps and several times as much on 4 x 4 maps; two changes there come with the kernels:
// full blocks of 8 channels move by 128-bit halves (16 shuffles instead of 24) and padded stores follow a fixed
// pattern instead of stepping pixel by pixel. SLAK_DWCONV_COLUMNS=0 (or Enabled = false) turns all of it off (the
// general small-map kernels and the previous moves: one switch restores the previous path for A/B runs);
// SLAK_DWCONV_LINES16=0 (Lines16 = false) turns off the 16-long lines alone (16 x 16 maps back on the plane engine).
// In cache the line kernels run at the FMA peak (31 x 3 on 16 x 16) or above 80 % of it (3-tap windows); what stays
// between a pass and the peak is the layout moves and, at 16 x 16, the traffic of the branch outputs.
// Measurements: bench/results/dwconv-columns.md (`dwconv-columns`), dwconv-columns-step.md (`dwconv-columns-step`).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

/// <summary>Whole-line kernels of <see cref="CpuDwConvSmallMap"/> (forward, input gradient, weight gradient).</summary>
internal static unsafe class CpuDwConvColumns
{
    /// <summary>Switch for tests and benchmarks (SLAK_DWCONV_COLUMNS=0 turns the kernels and the moves' changes
    /// off).</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SLAK_DWCONV_COLUMNS") != "0";

    /// <summary>Switch for tests and benchmarks (SLAK_DWCONV_LINES16=0 turns the 16-long lines off: 16 x 16 maps go
    /// back to the plane engine).</summary>
    internal static bool Lines16 { get; set; } = Environment.GetEnvironmentVariable("SLAK_DWCONV_LINES16") != "0";

    /// <summary>Channels per column: one Vector512 of floats.</summary>
    private const int L = 16;

    /// <summary>Where the lines run: A is the axis of the whole lines (La pixels, Ka = 2La-1 window taps), B the
    /// other (Lb pixels, Kb window taps). Strides in floats: Sa/Sb between input pixels, Oa/Ob between output pixels,
    /// Wa/Wb between weight taps.</summary>
    private readonly struct Lines
    {
        public Lines(bool alongY, int h, int w, int kh, int kw, int rowStride, int outRowStride)
        {
            La = alongY ? h : w;
            Lb = alongY ? w : h;
            Kb = alongY ? kw : kh;
            Sa = alongY ? rowStride : L;
            Sb = alongY ? L : rowStride;
            Oa = alongY ? outRowStride : L;
            Ob = alongY ? L : outRowStride;
            Wa = alongY ? kw * L : L;
            Wb = alongY ? L : kw * L;
        }

        public int La { get; }
        public int Lb { get; }
        public int Kb { get; }
        public int Pb => Kb / 2;
        public nint Sa { get; }
        public nint Sb { get; }
        public nint Oa { get; }
        public nint Ob { get; }
        public nint Wa { get; }
        public nint Wb { get; }
    }

    /// <summary>True when a branch with a Kh x Kw window (already clipped to at most 2H-1 x 2W-1) on an H x W map
    /// takes these kernels; alongY: the whole lines are the map's columns.</summary>
    internal static bool Applies(int h, int w, int kh, int kw, out bool alongY) =>
        Applies(h, w, kh, kw, out alongY, out _);

    /// <summary>As <see cref="Applies(int, int, int, int, out bool)"/>; narrow: the window is 3 taps along the lines
    /// (the S x S branch, or an M x 3 branch whose long side does not span the map) instead of 2L-1.</summary>
    private static bool Applies(int h, int w, int kh, int kw, out bool alongY, out bool narrow)
    {
        narrow = false;
        alongY = Fits(h, kh);
        if (!Enabled || !Vector512.IsHardwareAccelerated) return false;
        if (alongY || Fits(w, kw)) return true;
        narrow = true;
        alongY = !IsLine(w) || kw != 3;
        return (IsLine(w) && kw == 3) || (IsLine(h) && kh == 3);
    }

    private static bool IsLine(int length) => length == 4 || length == 8 || (length == 16 && Lines16);

    private static bool Fits(int length, int taps) => IsLine(length) && taps == 2 * length - 1;

    /// <summary>out = (or +=) the correlation of in with the weight table, as CpuDwConvSmallMap.Correlate: in is
    /// the first column's map origin inside a zero border of at least one pixel (columns inLen apart, rows
    /// rowStride apart), out dense (H*W pixels x 16 per column), the table [column][window tap][16]. False (nothing
    /// done) when the branch does not take these kernels.</summary>
    internal static bool Correlate(int h, int w, int kh, int kw, int ncols, float* inp, int inLen, int rowStride,
        float* wt, float* outp, bool accumulate)
    {
        if (!Applies(h, w, kh, kw, out bool alongY, out bool narrow)) return false;
        var g = new Lines(alongY, h, w, kh, kw, rowStride, w * L);
        int colLen = h * w * L, wcol = kh * kw * L;
        for (int col = 0; col < ncols; col++)
        {
            float* ic = inp + (nint)col * inLen, wc = wt + (nint)col * wcol, oc = outp + (nint)col * colLen;
            if (narrow && g.La >= 8) CorrelateNarrow8(g, ic, wc, oc, accumulate);
            else if (narrow) CorrelateNarrow4(g, ic, wc, oc, accumulate);
            else if (g.La >= 8) Correlate8(g, ic, wc, oc, accumulate);
            else Correlate4(g, ic, wc, oc, accumulate);
        }
        return true;
    }

    /// <summary>acc += the weight gradient of <paramref name="ncols"/> columns, as CpuDwConvSmallMap.FilterColumns:
    /// x and g dense (H*W pixels x 16 per column), acc [column][window tap][16]. False (nothing done) when the
    /// branch does not take these kernels.</summary>
    internal static bool Filter(int h, int w, int kh, int kw, int ncols, float* x, float* g, float* acc)
    {
        if (!Applies(h, w, kh, kw, out bool alongY, out bool narrow)) return false;
        var lines = new Lines(alongY, h, w, kh, kw, w * L, w * L);
        int colLen = h * w * L, wcol = kh * kw * L;
        if (narrow)
        {
            for (int col = 0; col < ncols; col++)
                FilterNarrow(lines, x + (nint)col * colLen, g + (nint)col * colLen, acc + (nint)col * wcol);
            return true;
        }
        if (lines.La >= 8)
        {
            for (int col = 0; col < ncols; col++)
                Filter8(lines, x + (nint)col * colLen, g + (nint)col * colLen, acc + (nint)col * wcol);
            return true;
        }
        // Two columns at a time; an odd last column is paired with itself and its second copy is not stored.
        for (int col = 0; col < ncols; col += 2)
        {
            bool pair = col + 1 < ncols;
            Filter4(lines, x + (nint)col * colLen, g + (nint)col * colLen, acc + (nint)col * wcol,
                pair ? colLen : 0, pair ? wcol : 0, pair);
        }
        return true;
    }

    // a_k += x * w_k for k = 0..3.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma4(Vector512<float> x, ref Vector512<float> a0, ref Vector512<float> a1,
        ref Vector512<float> a2, ref Vector512<float> a3, Vector512<float> w0, Vector512<float> w1,
        Vector512<float> w2, Vector512<float> w3)
    {
        a0 = Vector512.FusedMultiplyAdd(x, w0, a0);
        a1 = Vector512.FusedMultiplyAdd(x, w1, a1);
        a2 = Vector512.FusedMultiplyAdd(x, w2, a2);
        a3 = Vector512.FusedMultiplyAdd(x, w3, a3);
    }

    // One column, L = 8 or 16: output pixel r of a line gets input pixel r' of a line through window tap
    // r' - r + L - 1. The lines are cut into blocks of 8 pixels: output block a and input block b meet through 15
    // taps starting at 8(b - a) + L - 8, the 8 x 8 block of an 8-long line (15 weights, 8 accumulators and the
    // input in 24 registers; a 16-long line's 16 accumulators and 31 weights would not fit in 32). Pairing two output
    // lines for 16 accumulators measured no faster (the kernel alone runs at the FMA peak in cache).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Correlate8(in Lines g, float* ic, float* wc, float* oc, bool accumulate)
    {
        nint sa = g.Sa, oa = g.Oa, wa = g.Wa;
        int blocks = g.La / 8;
        for (int ob = 0; ob < g.Lb; ob++)
        for (int ab = 0; ab < blocks; ab++)
        {
            // Offsets along B whose input line lies in the map.
            int tb0 = Math.Max(0, g.Pb - ob), tb1 = Math.Min(g.Kb - 1, g.Lb - 1 + g.Pb - ob);
            float* o = oc + ob * g.Ob + 8 * ab * oa;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> a4 = default, a5 = default, a6 = default, a7 = default;
            if (accumulate)
            {
                a0 = Vector512.Load(o); a1 = Vector512.Load(o + oa);
                a2 = Vector512.Load(o + 2 * oa); a3 = Vector512.Load(o + 3 * oa);
                a4 = Vector512.Load(o + 4 * oa); a5 = Vector512.Load(o + 5 * oa);
                a6 = Vector512.Load(o + 6 * oa); a7 = Vector512.Load(o + 7 * oa);
            }
            for (int tb = tb0; tb <= tb1; tb++)
            for (int bb = 0; bb < blocks; bb++)
            {
                float* wp = wc + tb * g.Wb + (8 * (bb - ab) + g.La - 8) * wa;
                var w0 = Vector512.Load(wp); var w1 = Vector512.Load(wp + wa);
                var w2 = Vector512.Load(wp + 2 * wa); var w3 = Vector512.Load(wp + 3 * wa);
                var w4 = Vector512.Load(wp + 4 * wa); var w5 = Vector512.Load(wp + 5 * wa);
                var w6 = Vector512.Load(wp + 6 * wa); var w7 = Vector512.Load(wp + 7 * wa);
                var w8 = Vector512.Load(wp + 8 * wa); var w9 = Vector512.Load(wp + 9 * wa);
                var w10 = Vector512.Load(wp + 10 * wa); var w11 = Vector512.Load(wp + 11 * wa);
                var w12 = Vector512.Load(wp + 12 * wa); var w13 = Vector512.Load(wp + 13 * wa);
                var w14 = Vector512.Load(wp + 14 * wa);
                float* ip = ic + (ob + tb - g.Pb) * g.Sb + 8 * bb * sa;
                var x = Vector512.Load(ip);
                Fma4(x, ref a0, ref a1, ref a2, ref a3, w7, w6, w5, w4);
                Fma4(x, ref a4, ref a5, ref a6, ref a7, w3, w2, w1, w0);
                x = Vector512.Load(ip + sa);
                Fma4(x, ref a0, ref a1, ref a2, ref a3, w8, w7, w6, w5);
                Fma4(x, ref a4, ref a5, ref a6, ref a7, w4, w3, w2, w1);
                x = Vector512.Load(ip + 2 * sa);
                Fma4(x, ref a0, ref a1, ref a2, ref a3, w9, w8, w7, w6);
                Fma4(x, ref a4, ref a5, ref a6, ref a7, w5, w4, w3, w2);
                x = Vector512.Load(ip + 3 * sa);
                Fma4(x, ref a0, ref a1, ref a2, ref a3, w10, w9, w8, w7);
                Fma4(x, ref a4, ref a5, ref a6, ref a7, w6, w5, w4, w3);
                x = Vector512.Load(ip + 4 * sa);
                Fma4(x, ref a0, ref a1, ref a2, ref a3, w11, w10, w9, w8);
                Fma4(x, ref a4, ref a5, ref a6, ref a7, w7, w6, w5, w4);
                x = Vector512.Load(ip + 5 * sa);
                Fma4(x, ref a0, ref a1, ref a2, ref a3, w12, w11, w10, w9);
                Fma4(x, ref a4, ref a5, ref a6, ref a7, w8, w7, w6, w5);
                x = Vector512.Load(ip + 6 * sa);
                Fma4(x, ref a0, ref a1, ref a2, ref a3, w13, w12, w11, w10);
                Fma4(x, ref a4, ref a5, ref a6, ref a7, w9, w8, w7, w6);
                x = Vector512.Load(ip + 7 * sa);
                Fma4(x, ref a0, ref a1, ref a2, ref a3, w14, w13, w12, w11);
                Fma4(x, ref a4, ref a5, ref a6, ref a7, w10, w9, w8, w7);
            }
            a0.Store(o); a1.Store(o + oa); a2.Store(o + 2 * oa); a3.Store(o + 3 * oa);
            a4.Store(o + 4 * oa); a5.Store(o + 5 * oa); a6.Store(o + 6 * oa); a7.Store(o + 7 * oa);
        }
    }

    // One column, L = 4, two output lines (a: ob, b: ob + 1) at a time: output pixel r gets input pixel r' through
    // window tap r' - r + 3. The offsets along B cover both lines, so a line may read the one-pixel zero border
    // (or, past an odd last line, a line whose results are not stored).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Correlate4(in Lines g, float* ic, float* wc, float* oc, bool accumulate)
    {
        nint sa = g.Sa, sb = g.Sb, oa = g.Oa, wa = g.Wa;
        for (int ob = 0; ob < g.Lb; ob += 2)
        {
            bool two = ob + 1 < g.Lb;
            int tb0 = Math.Max(0, g.Pb - ob - 1), tb1 = Math.Min(g.Kb - 1, g.Lb - 1 + g.Pb - ob);
            float* o = oc + ob * g.Ob, p = o + g.Ob;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            if (accumulate)
            {
                a0 = Vector512.Load(o); a1 = Vector512.Load(o + oa);
                a2 = Vector512.Load(o + 2 * oa); a3 = Vector512.Load(o + 3 * oa);
                if (two)
                {
                    b0 = Vector512.Load(p); b1 = Vector512.Load(p + oa);
                    b2 = Vector512.Load(p + 2 * oa); b3 = Vector512.Load(p + 3 * oa);
                }
            }
            for (int tb = tb0; tb <= tb1; tb++)
            {
                float* wp = wc + tb * g.Wb;
                var w0 = Vector512.Load(wp); var w1 = Vector512.Load(wp + wa);
                var w2 = Vector512.Load(wp + 2 * wa); var w3 = Vector512.Load(wp + 3 * wa);
                var w4 = Vector512.Load(wp + 4 * wa); var w5 = Vector512.Load(wp + 5 * wa);
                var w6 = Vector512.Load(wp + 6 * wa);
                float* ip = ic + (ob + tb - g.Pb) * sb, iq = ip + sb;
                Fma4(Vector512.Load(ip), ref a0, ref a1, ref a2, ref a3, w3, w2, w1, w0);
                Fma4(Vector512.Load(iq), ref b0, ref b1, ref b2, ref b3, w3, w2, w1, w0);
                Fma4(Vector512.Load(ip + sa), ref a0, ref a1, ref a2, ref a3, w4, w3, w2, w1);
                Fma4(Vector512.Load(iq + sa), ref b0, ref b1, ref b2, ref b3, w4, w3, w2, w1);
                Fma4(Vector512.Load(ip + 2 * sa), ref a0, ref a1, ref a2, ref a3, w5, w4, w3, w2);
                Fma4(Vector512.Load(iq + 2 * sa), ref b0, ref b1, ref b2, ref b3, w5, w4, w3, w2);
                Fma4(Vector512.Load(ip + 3 * sa), ref a0, ref a1, ref a2, ref a3, w6, w5, w4, w3);
                Fma4(Vector512.Load(iq + 3 * sa), ref b0, ref b1, ref b2, ref b3, w6, w5, w4, w3);
            }
            a0.Store(o); a1.Store(o + oa); a2.Store(o + 2 * oa); a3.Store(o + 3 * oa);
            if (!two) continue;
            b0.Store(p); b1.Store(p + oa); b2.Store(p + 2 * oa); b3.Store(p + 3 * oa);
        }
    }

    // One column, L = 8 or 16: tap t (0..2L-2) of an offset tb along B gets x[line ob + tb - pb, r'] * g[line ob, r]
    // for every r, r' with r' - r + L - 1 = t. In blocks of 8 pixels as Correlate8: output block a and input block
    // b = a + d feed the 15 taps from 8d + L - 8, held in registers while every line pair passes.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Filter8(in Lines lines, float* xc, float* gc, float* acc)
    {
        nint sa = lines.Sa, wa = lines.Wa;
        int blocks = lines.La / 8;
        for (int tb = 0; tb < lines.Kb; tb++)
        for (int d = 1 - blocks; d < blocks; d++)
        {
            // Output lines whose input line at this offset lies in the map.
            int ob0 = Math.Max(0, lines.Pb - tb), ob1 = Math.Min(lines.Lb - 1, lines.Lb - 1 + lines.Pb - tb);
            if (ob0 > ob1) continue;
            int ab0 = Math.Max(0, -d), ab1 = Math.Min(blocks, blocks - d);
            float* t = acc + tb * lines.Wb + (8 * d + lines.La - 8) * wa;
            var t0 = Vector512.Load(t); var t1 = Vector512.Load(t + wa);
            var t2 = Vector512.Load(t + 2 * wa); var t3 = Vector512.Load(t + 3 * wa);
            var t4 = Vector512.Load(t + 4 * wa); var t5 = Vector512.Load(t + 5 * wa);
            var t6 = Vector512.Load(t + 6 * wa); var t7 = Vector512.Load(t + 7 * wa);
            var t8 = Vector512.Load(t + 8 * wa); var t9 = Vector512.Load(t + 9 * wa);
            var t10 = Vector512.Load(t + 10 * wa); var t11 = Vector512.Load(t + 11 * wa);
            var t12 = Vector512.Load(t + 12 * wa); var t13 = Vector512.Load(t + 13 * wa);
            var t14 = Vector512.Load(t + 14 * wa);
            for (int ob = ob0; ob <= ob1; ob++)
            for (int ab = ab0; ab < ab1; ab++)
            {
                float* gp = gc + ob * lines.Sb + 8 * ab * sa;
                float* xp = xc + (ob + tb - lines.Pb) * lines.Sb + 8 * (ab + d) * sa;
                var g0 = Vector512.Load(gp); var g1 = Vector512.Load(gp + sa);
                var g2 = Vector512.Load(gp + 2 * sa); var g3 = Vector512.Load(gp + 3 * sa);
                var g4 = Vector512.Load(gp + 4 * sa); var g5 = Vector512.Load(gp + 5 * sa);
                var g6 = Vector512.Load(gp + 6 * sa); var g7 = Vector512.Load(gp + 7 * sa);
                var x = Vector512.Load(xp);
                Fma4(x, ref t7, ref t6, ref t5, ref t4, g0, g1, g2, g3);
                Fma4(x, ref t3, ref t2, ref t1, ref t0, g4, g5, g6, g7);
                x = Vector512.Load(xp + sa);
                Fma4(x, ref t8, ref t7, ref t6, ref t5, g0, g1, g2, g3);
                Fma4(x, ref t4, ref t3, ref t2, ref t1, g4, g5, g6, g7);
                x = Vector512.Load(xp + 2 * sa);
                Fma4(x, ref t9, ref t8, ref t7, ref t6, g0, g1, g2, g3);
                Fma4(x, ref t5, ref t4, ref t3, ref t2, g4, g5, g6, g7);
                x = Vector512.Load(xp + 3 * sa);
                Fma4(x, ref t10, ref t9, ref t8, ref t7, g0, g1, g2, g3);
                Fma4(x, ref t6, ref t5, ref t4, ref t3, g4, g5, g6, g7);
                x = Vector512.Load(xp + 4 * sa);
                Fma4(x, ref t11, ref t10, ref t9, ref t8, g0, g1, g2, g3);
                Fma4(x, ref t7, ref t6, ref t5, ref t4, g4, g5, g6, g7);
                x = Vector512.Load(xp + 5 * sa);
                Fma4(x, ref t12, ref t11, ref t10, ref t9, g0, g1, g2, g3);
                Fma4(x, ref t8, ref t7, ref t6, ref t5, g4, g5, g6, g7);
                x = Vector512.Load(xp + 6 * sa);
                Fma4(x, ref t13, ref t12, ref t11, ref t10, g0, g1, g2, g3);
                Fma4(x, ref t9, ref t8, ref t7, ref t6, g4, g5, g6, g7);
                x = Vector512.Load(xp + 7 * sa);
                Fma4(x, ref t14, ref t13, ref t12, ref t11, g0, g1, g2, g3);
                Fma4(x, ref t10, ref t9, ref t8, ref t7, g4, g5, g6, g7);
            }
            t0.Store(t); t1.Store(t + wa); t2.Store(t + 2 * wa); t3.Store(t + 3 * wa);
            t4.Store(t + 4 * wa); t5.Store(t + 5 * wa); t6.Store(t + 6 * wa); t7.Store(t + 7 * wa);
            t8.Store(t + 8 * wa); t9.Store(t + 9 * wa); t10.Store(t + 10 * wa); t11.Store(t + 11 * wa);
            t12.Store(t + 12 * wa); t13.Store(t + 13 * wa); t14.Store(t + 14 * wa);
        }
    }

    // Two columns (the second dc floats further in x and g, dw further in acc), L = 4: tap t (0..6) gets
    // x[r'] * g[r] for r' - r + 3 = t, as in Filter8.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Filter4(in Lines lines, float* xc, float* gc, float* acc, nint dc, nint dw, bool pair)
    {
        nint sa = lines.Sa, wa = lines.Wa;
        for (int tb = 0; tb < lines.Kb; tb++)
        {
            int ob0 = Math.Max(0, lines.Pb - tb), ob1 = Math.Min(lines.Lb - 1, lines.Lb - 1 + lines.Pb - tb);
            if (ob0 > ob1) continue;
            float* t = acc + tb * lines.Wb, u = t + dw;
            var t0 = Vector512.Load(t); var t1 = Vector512.Load(t + wa);
            var t2 = Vector512.Load(t + 2 * wa); var t3 = Vector512.Load(t + 3 * wa);
            var t4 = Vector512.Load(t + 4 * wa); var t5 = Vector512.Load(t + 5 * wa);
            var t6 = Vector512.Load(t + 6 * wa);
            var u0 = Vector512.Load(u); var u1 = Vector512.Load(u + wa);
            var u2 = Vector512.Load(u + 2 * wa); var u3 = Vector512.Load(u + 3 * wa);
            var u4 = Vector512.Load(u + 4 * wa); var u5 = Vector512.Load(u + 5 * wa);
            var u6 = Vector512.Load(u + 6 * wa);
            for (int ob = ob0; ob <= ob1; ob++)
            {
                float* gp = gc + ob * lines.Sb, xp = xc + (ob + tb - lines.Pb) * lines.Sb;
                var g0 = Vector512.Load(gp); var g1 = Vector512.Load(gp + sa);
                var g2 = Vector512.Load(gp + 2 * sa); var g3 = Vector512.Load(gp + 3 * sa);
                var h0 = Vector512.Load(gp + dc); var h1 = Vector512.Load(gp + dc + sa);
                var h2 = Vector512.Load(gp + dc + 2 * sa); var h3 = Vector512.Load(gp + dc + 3 * sa);
                Fma4(Vector512.Load(xp), ref t3, ref t2, ref t1, ref t0, g0, g1, g2, g3);
                Fma4(Vector512.Load(xp + dc), ref u3, ref u2, ref u1, ref u0, h0, h1, h2, h3);
                Fma4(Vector512.Load(xp + sa), ref t4, ref t3, ref t2, ref t1, g0, g1, g2, g3);
                Fma4(Vector512.Load(xp + dc + sa), ref u4, ref u3, ref u2, ref u1, h0, h1, h2, h3);
                Fma4(Vector512.Load(xp + 2 * sa), ref t5, ref t4, ref t3, ref t2, g0, g1, g2, g3);
                Fma4(Vector512.Load(xp + dc + 2 * sa), ref u5, ref u4, ref u3, ref u2, h0, h1, h2, h3);
                Fma4(Vector512.Load(xp + 3 * sa), ref t6, ref t5, ref t4, ref t3, g0, g1, g2, g3);
                Fma4(Vector512.Load(xp + dc + 3 * sa), ref u6, ref u5, ref u4, ref u3, h0, h1, h2, h3);
            }
            t0.Store(t); t1.Store(t + wa); t2.Store(t + 2 * wa); t3.Store(t + 3 * wa);
            t4.Store(t + 4 * wa); t5.Store(t + 5 * wa); t6.Store(t + 6 * wa);
            if (!pair) continue;
            u0.Store(u); u1.Store(u + wa); u2.Store(u + 2 * wa); u3.Store(u + 3 * wa);
            u4.Store(u + 4 * wa); u5.Store(u + 5 * wa); u6.Store(u + 6 * wa);
        }
    }

    // One column, lines of 8 or 16, a window 3 taps along them: output pixel r gets input pixels r - 1, r, r + 1 of
    // a line through taps 0, 1, 2 (the edge pixels skip the tap past the line). A 16-long line goes as two blocks of
    // 8, each adding its neighbour block's nearest input pixel.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateNarrow8(in Lines g, float* ic, float* wc, float* oc, bool accumulate)
    {
        nint sa = g.Sa, oa = g.Oa, wa = g.Wa;
        int blocks = g.La / 8;
        for (int ob = 0; ob < g.Lb; ob++)
        for (int ab = 0; ab < blocks; ab++)
        {
            int tb0 = Math.Max(0, g.Pb - ob), tb1 = Math.Min(g.Kb - 1, g.Lb - 1 + g.Pb - ob);
            float* o = oc + ob * g.Ob + 8 * ab * oa;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> a4 = default, a5 = default, a6 = default, a7 = default;
            if (accumulate)
            {
                a0 = Vector512.Load(o); a1 = Vector512.Load(o + oa);
                a2 = Vector512.Load(o + 2 * oa); a3 = Vector512.Load(o + 3 * oa);
                a4 = Vector512.Load(o + 4 * oa); a5 = Vector512.Load(o + 5 * oa);
                a6 = Vector512.Load(o + 6 * oa); a7 = Vector512.Load(o + 7 * oa);
            }
            for (int tb = tb0; tb <= tb1; tb++)
            {
                float* wp = wc + tb * g.Wb;
                var w0 = Vector512.Load(wp); var w1 = Vector512.Load(wp + wa); var w2 = Vector512.Load(wp + 2 * wa);
                float* ip = ic + (ob + tb - g.Pb) * g.Sb + 8 * ab * sa;
                var x0 = Vector512.Load(ip); var x1 = Vector512.Load(ip + sa);
                var x2 = Vector512.Load(ip + 2 * sa); var x3 = Vector512.Load(ip + 3 * sa);
                var x4 = Vector512.Load(ip + 4 * sa); var x5 = Vector512.Load(ip + 5 * sa);
                var x6 = Vector512.Load(ip + 6 * sa); var x7 = Vector512.Load(ip + 7 * sa);
                if (ab > 0) a0 = Vector512.FusedMultiplyAdd(w0, Vector512.Load(ip - sa), a0);
                if (ab < blocks - 1) a7 = Vector512.FusedMultiplyAdd(w2, Vector512.Load(ip + 8 * sa), a7);
                Fma4(w1, ref a0, ref a1, ref a2, ref a3, x0, x1, x2, x3);
                Fma4(w1, ref a4, ref a5, ref a6, ref a7, x4, x5, x6, x7);
                Fma4(w0, ref a1, ref a2, ref a3, ref a4, x0, x1, x2, x3);
                Fma4(w2, ref a0, ref a1, ref a2, ref a3, x1, x2, x3, x4);
                a5 = Vector512.FusedMultiplyAdd(w0, x4, a5);
                a6 = Vector512.FusedMultiplyAdd(w0, x5, a6);
                a7 = Vector512.FusedMultiplyAdd(w0, x6, a7);
                a4 = Vector512.FusedMultiplyAdd(w2, x5, a4);
                a5 = Vector512.FusedMultiplyAdd(w2, x6, a5);
                a6 = Vector512.FusedMultiplyAdd(w2, x7, a6);
            }
            a0.Store(o); a1.Store(o + oa); a2.Store(o + 2 * oa); a3.Store(o + 3 * oa);
            a4.Store(o + 4 * oa); a5.Store(o + 5 * oa); a6.Store(o + 6 * oa); a7.Store(o + 7 * oa);
        }
    }

    // One column, lines of 4 taken two at a time (as Correlate4), a window 3 taps along them (as CorrelateNarrow8).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateNarrow4(in Lines g, float* ic, float* wc, float* oc, bool accumulate)
    {
        nint sa = g.Sa, sb = g.Sb, oa = g.Oa, wa = g.Wa;
        for (int ob = 0; ob < g.Lb; ob += 2)
        {
            bool two = ob + 1 < g.Lb;
            int tb0 = Math.Max(0, g.Pb - ob - 1), tb1 = Math.Min(g.Kb - 1, g.Lb - 1 + g.Pb - ob);
            float* o = oc + ob * g.Ob, p = o + g.Ob;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            if (accumulate)
            {
                a0 = Vector512.Load(o); a1 = Vector512.Load(o + oa);
                a2 = Vector512.Load(o + 2 * oa); a3 = Vector512.Load(o + 3 * oa);
                if (two)
                {
                    b0 = Vector512.Load(p); b1 = Vector512.Load(p + oa);
                    b2 = Vector512.Load(p + 2 * oa); b3 = Vector512.Load(p + 3 * oa);
                }
            }
            for (int tb = tb0; tb <= tb1; tb++)
            {
                float* wp = wc + tb * g.Wb;
                var w0 = Vector512.Load(wp); var w1 = Vector512.Load(wp + wa); var w2 = Vector512.Load(wp + 2 * wa);
                float* ip = ic + (ob + tb - g.Pb) * sb, iq = ip + sb;
                var x0 = Vector512.Load(ip); var x1 = Vector512.Load(ip + sa);
                var x2 = Vector512.Load(ip + 2 * sa); var x3 = Vector512.Load(ip + 3 * sa);
                var y0 = Vector512.Load(iq); var y1 = Vector512.Load(iq + sa);
                var y2 = Vector512.Load(iq + 2 * sa); var y3 = Vector512.Load(iq + 3 * sa);
                Fma4(w1, ref a0, ref a1, ref a2, ref a3, x0, x1, x2, x3);
                Fma4(w1, ref b0, ref b1, ref b2, ref b3, y0, y1, y2, y3);
                a1 = Vector512.FusedMultiplyAdd(w0, x0, a1);
                b1 = Vector512.FusedMultiplyAdd(w0, y0, b1);
                a2 = Vector512.FusedMultiplyAdd(w0, x1, a2);
                b2 = Vector512.FusedMultiplyAdd(w0, y1, b2);
                a3 = Vector512.FusedMultiplyAdd(w0, x2, a3);
                b3 = Vector512.FusedMultiplyAdd(w0, y2, b3);
                a0 = Vector512.FusedMultiplyAdd(w2, x1, a0);
                b0 = Vector512.FusedMultiplyAdd(w2, y1, b0);
                a1 = Vector512.FusedMultiplyAdd(w2, x2, a1);
                b1 = Vector512.FusedMultiplyAdd(w2, y2, b1);
                a2 = Vector512.FusedMultiplyAdd(w2, x3, a2);
                b2 = Vector512.FusedMultiplyAdd(w2, y3, b2);
            }
            a0.Store(o); a1.Store(o + oa); a2.Store(o + 2 * oa); a3.Store(o + 3 * oa);
            if (!two) continue;
            b0.Store(p); b1.Store(p + oa); b2.Store(p + 2 * oa); b3.Store(p + 3 * oa);
        }
    }

    // One column, lines of 16, 8 or 4, a window 3 taps along them: tap t (0..2) of an offset tb along B gets
    // x[line ob + tb - pb, r + t - 1] * g[line ob, r]. The three taps' sums are split by r mod 4 (12 accumulators
    // cover the FMA latency), added in a fixed order at the end. A 16-long line goes as two blocks of 8 and the two
    // pixel pairs across their boundary.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FilterNarrow(in Lines lines, float* xc, float* gc, float* acc)
    {
        nint sa = lines.Sa, wa = lines.Wa;
        bool eight = lines.La >= 8;
        int blocks = Math.Max(1, lines.La / 8);
        for (int tb = 0; tb < lines.Kb; tb++)
        {
            int ob0 = Math.Max(0, lines.Pb - tb), ob1 = Math.Min(lines.Lb - 1, lines.Lb - 1 + lines.Pb - tb);
            if (ob0 > ob1) continue;
            Vector512<float> q00 = default, q01 = default, q02 = default, q03 = default;
            Vector512<float> q10 = default, q11 = default, q12 = default, q13 = default;
            Vector512<float> q20 = default, q21 = default, q22 = default, q23 = default;
            for (int ob = ob0; ob <= ob1; ob++)
            for (int ab = 0; ab < blocks; ab++)
            {
                float* gp = gc + ob * lines.Sb + 8 * ab * sa, xp = xc + (ob + tb - lines.Pb) * lines.Sb + 8 * ab * sa;
                if (ab > 0)
                {
                    // The pairs across the boundary with the previous block: x[r - 1] g[r] (tap 0) and x[r] g[r - 1]
                    // (tap 2) for r = 8 ab.
                    q00 = Vector512.FusedMultiplyAdd(Vector512.Load(xp - sa), Vector512.Load(gp), q00);
                    q20 = Vector512.FusedMultiplyAdd(Vector512.Load(xp), Vector512.Load(gp - sa), q20);
                }
                var x0 = Vector512.Load(xp); var x1 = Vector512.Load(xp + sa);
                var x2 = Vector512.Load(xp + 2 * sa); var x3 = Vector512.Load(xp + 3 * sa);
                var g0 = Vector512.Load(gp); var g1 = Vector512.Load(gp + sa);
                var g2 = Vector512.Load(gp + 2 * sa); var g3 = Vector512.Load(gp + 3 * sa);
                q10 = Vector512.FusedMultiplyAdd(x0, g0, q10);
                q20 = Vector512.FusedMultiplyAdd(x1, g0, q20);
                q01 = Vector512.FusedMultiplyAdd(x0, g1, q01);
                q11 = Vector512.FusedMultiplyAdd(x1, g1, q11);
                q21 = Vector512.FusedMultiplyAdd(x2, g1, q21);
                q02 = Vector512.FusedMultiplyAdd(x1, g2, q02);
                q12 = Vector512.FusedMultiplyAdd(x2, g2, q12);
                q22 = Vector512.FusedMultiplyAdd(x3, g2, q22);
                q03 = Vector512.FusedMultiplyAdd(x2, g3, q03);
                q13 = Vector512.FusedMultiplyAdd(x3, g3, q13);
                if (!eight) continue;
                var x4 = Vector512.Load(xp + 4 * sa); var x5 = Vector512.Load(xp + 5 * sa);
                var x6 = Vector512.Load(xp + 6 * sa); var x7 = Vector512.Load(xp + 7 * sa);
                var g4 = Vector512.Load(gp + 4 * sa); var g5 = Vector512.Load(gp + 5 * sa);
                var g6 = Vector512.Load(gp + 6 * sa); var g7 = Vector512.Load(gp + 7 * sa);
                q23 = Vector512.FusedMultiplyAdd(x4, g3, q23);
                q00 = Vector512.FusedMultiplyAdd(x3, g4, q00);
                q10 = Vector512.FusedMultiplyAdd(x4, g4, q10);
                q20 = Vector512.FusedMultiplyAdd(x5, g4, q20);
                q01 = Vector512.FusedMultiplyAdd(x4, g5, q01);
                q11 = Vector512.FusedMultiplyAdd(x5, g5, q11);
                q21 = Vector512.FusedMultiplyAdd(x6, g5, q21);
                q02 = Vector512.FusedMultiplyAdd(x5, g6, q02);
                q12 = Vector512.FusedMultiplyAdd(x6, g6, q12);
                q22 = Vector512.FusedMultiplyAdd(x7, g6, q22);
                q03 = Vector512.FusedMultiplyAdd(x6, g7, q03);
                q13 = Vector512.FusedMultiplyAdd(x7, g7, q13);
            }
            float* t = acc + tb * lines.Wb;
            (Vector512.Load(t) + ((q00 + q01) + (q02 + q03))).Store(t);
            (Vector512.Load(t + wa) + ((q10 + q11) + (q12 + q13))).Store(t + wa);
            (Vector512.Load(t + 2 * wa) + ((q20 + q21) + (q22 + q23))).Store(t + 2 * wa);
        }
    }
}
