// Whole-column layout moves of the small-map depthwise path (CpuDwConvSmallMap.cs) through one 16 x 16 AVX-512
// register transpose: 16 channel planes x 16 consecutive pixels are 16 row loads of 512 bits, 64 in-register shuffles
// (4 rounds of 16: unpack floats, unpack pairs, two rounds of 128-bit lane selects) and 16 pixel stores of 512 bits.
// The moves they replace (CpuDwConvPixelMajor: a column as two halves of 8 channels, 8 x 8 blocks of 256-bit
// vectors) take 160 instructions for the same 256 floats (8 of them 128-bit inserts, 96 shuffles in all), and on
// slak_nano's and slak_nano64's stages 1-2 the moves were about half of every pass's time
// (bench/results/dwconv-phases.md). They apply where the map's pixel count is a multiple of 16 and its width divides
// 16 (4 x 4, 8 x 8 and 16 x 16 maps): then a block of 16 pixels covers whole rows and lands on a fixed pattern of
// padded rows. They move the same floats to the same places, so every result is bit for bit the one of the previous
// moves. SLAK_DWCONV_MOVES16=0 (or Enabled = false) turns them off.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

/// <summary>16-channel columns to and from channel planes by 16 x 16 register transposes.</summary>
internal static unsafe class CpuDwConvMoves16
{
    private const int L = 16;

    /// <summary>Switch for tests and benchmarks (SLAK_DWCONV_MOVES16=0 restores the 8-channel moves).</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SLAK_DWCONV_MOVES16") != "0";

    /// <summary>True when an H x W map's columns move this way.</summary>
    internal static bool Applies(int h, int w) =>
        Enabled && Avx512F.IsSupported && h * w % L == 0 && L % w == 0;

    /// <summary>dst[(p / w) * rowStride + (p % w) * 16 + k] = planes[k * hw + p] for k &lt; channels, 0 for
    /// channels &lt;= k &lt; 16, every pixel p of the map; <paramref name="planes"/> is the first of
    /// <paramref name="channels"/> (1..16) consecutive planes (as CpuDwConvPixelMajor.ToColumn with a 16-float
    /// pixel stride, both halves at once).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ToColumn(float* planes, int channels, int h, int w, float* dst, int rowStride)
    {
        int hw = h * w;
        // Without a border (or with 16-pixel rows) a block's 16 pixels are consecutive in dst; otherwise pixel j of
        // a block lands at row j / w, column j % w from the block's first pixel, the same for every block (a block
        // is whole rows), stepped once per call here (no divisions: a 4 x 4 map is a single block).
        bool consecutive = w == L || rowStride == w * L;
        nint* off = stackalloc nint[L];
        for (int j = 0, r = 0, q = 0; j < L; j++)
        {
            off[j] = (nint)r * rowStride + (nint)q * L;
            if (++q == w) (r, q) = (r + 1, 0);
        }
        // A block of 16 pixels is 16 / w map rows.
        nint blockStride = (nint)(L / w) * rowStride;
        float* b = dst;
        for (int p0 = 0; p0 < hw; p0 += L, b += blockStride)
        {
            float* s = planes + p0;
            Transpose(
                Row(s, 0, channels, hw), Row(s, 1, channels, hw), Row(s, 2, channels, hw), Row(s, 3, channels, hw),
                Row(s, 4, channels, hw), Row(s, 5, channels, hw), Row(s, 6, channels, hw), Row(s, 7, channels, hw),
                Row(s, 8, channels, hw), Row(s, 9, channels, hw), Row(s, 10, channels, hw),
                Row(s, 11, channels, hw), Row(s, 12, channels, hw), Row(s, 13, channels, hw),
                Row(s, 14, channels, hw), Row(s, 15, channels, hw),
                out var d0, out var d1, out var d2, out var d3, out var d4, out var d5, out var d6, out var d7,
                out var d8, out var d9, out var d10, out var d11, out var d12, out var d13, out var d14, out var d15);
            if (consecutive)
            {
                d0.Store(b); d1.Store(b + L); d2.Store(b + 2 * L); d3.Store(b + 3 * L);
                d4.Store(b + 4 * L); d5.Store(b + 5 * L); d6.Store(b + 6 * L); d7.Store(b + 7 * L);
                d8.Store(b + 8 * L); d9.Store(b + 9 * L); d10.Store(b + 10 * L); d11.Store(b + 11 * L);
                d12.Store(b + 12 * L); d13.Store(b + 13 * L); d14.Store(b + 14 * L); d15.Store(b + 15 * L);
                continue;
            }
            d0.Store(b); d1.Store(b + off[1]); d2.Store(b + off[2]); d3.Store(b + off[3]);
            d4.Store(b + off[4]); d5.Store(b + off[5]); d6.Store(b + off[6]); d7.Store(b + off[7]);
            d8.Store(b + off[8]); d9.Store(b + off[9]); d10.Store(b + off[10]); d11.Store(b + off[11]);
            d12.Store(b + off[12]); d13.Store(b + off[13]); d14.Store(b + off[14]); d15.Store(b + off[15]);
        }
    }

    /// <summary>planes[k * hw + p] = src[p * 16 + k] for k &lt; channels and every pixel p of hw (a dense column):
    /// the inverse of <see cref="ToColumn"/> without a border (lanes of channels past the count are
    /// dropped).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void FromColumn(float* src, int channels, int hw, float* planes)
    {
        for (int p0 = 0; p0 < hw; p0 += L)
        {
            float* s = src + (nint)p0 * L;
            Transpose(
                Vector512.Load(s), Vector512.Load(s + L), Vector512.Load(s + 2 * L), Vector512.Load(s + 3 * L),
                Vector512.Load(s + 4 * L), Vector512.Load(s + 5 * L), Vector512.Load(s + 6 * L),
                Vector512.Load(s + 7 * L), Vector512.Load(s + 8 * L), Vector512.Load(s + 9 * L),
                Vector512.Load(s + 10 * L), Vector512.Load(s + 11 * L), Vector512.Load(s + 12 * L),
                Vector512.Load(s + 13 * L), Vector512.Load(s + 14 * L), Vector512.Load(s + 15 * L),
                out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7,
                out var c8, out var c9, out var c10, out var c11, out var c12, out var c13, out var c14,
                out var c15);
            // Only the planes that exist (a last column of fewer channels: C = 31, 62, 249).
            float* d = planes + p0;
            c0.Store(d);
            if (channels > 1) c1.Store(d + hw);
            if (channels > 2) c2.Store(d + 2 * hw);
            if (channels > 3) c3.Store(d + 3 * hw);
            if (channels > 4) c4.Store(d + 4 * hw);
            if (channels > 5) c5.Store(d + 5 * hw);
            if (channels > 6) c6.Store(d + 6 * hw);
            if (channels > 7) c7.Store(d + 7 * hw);
            if (channels > 8) c8.Store(d + 8 * hw);
            if (channels > 9) c9.Store(d + 9 * hw);
            if (channels > 10) c10.Store(d + 10 * hw);
            if (channels > 11) c11.Store(d + 11 * hw);
            if (channels > 12) c12.Store(d + 12 * hw);
            if (channels > 13) c13.Store(d + 13 * hw);
            if (channels > 14) c14.Store(d + 14 * hw);
            if (channels > 15) c15.Store(d + 15 * hw);
        }
    }

    // Pixels [0, 16) of channel k's plane (s = plane 0 + p0); zeros for a channel past the count.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Row(float* s, int k, int channels, int hw) =>
        k < channels ? Vector512.Load(s + (nint)k * hw) : default;

    /// <summary>out_j[i] = in_i[j] for a 16 x 16 block of floats held in 16 vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose(
        Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3,
        Vector512<float> a4, Vector512<float> a5, Vector512<float> a6, Vector512<float> a7,
        Vector512<float> a8, Vector512<float> a9, Vector512<float> a10, Vector512<float> a11,
        Vector512<float> a12, Vector512<float> a13, Vector512<float> a14, Vector512<float> a15,
        out Vector512<float> o0, out Vector512<float> o1, out Vector512<float> o2, out Vector512<float> o3,
        out Vector512<float> o4, out Vector512<float> o5, out Vector512<float> o6, out Vector512<float> o7,
        out Vector512<float> o8, out Vector512<float> o9, out Vector512<float> o10, out Vector512<float> o11,
        out Vector512<float> o12, out Vector512<float> o13, out Vector512<float> o14, out Vector512<float> o15)
    {
        // Round 1, within 128-bit lanes l: b(2m) = [a(2m)[4l], a(2m+1)[4l], a(2m)[4l+1], a(2m+1)[4l+1]],
        // b(2m+1) the same with 4l+2, 4l+3.
        var b0 = Avx512F.UnpackLow(a0, a1); var b1 = Avx512F.UnpackHigh(a0, a1);
        var b2 = Avx512F.UnpackLow(a2, a3); var b3 = Avx512F.UnpackHigh(a2, a3);
        var b4 = Avx512F.UnpackLow(a4, a5); var b5 = Avx512F.UnpackHigh(a4, a5);
        var b6 = Avx512F.UnpackLow(a6, a7); var b7 = Avx512F.UnpackHigh(a6, a7);
        var b8 = Avx512F.UnpackLow(a8, a9); var b9 = Avx512F.UnpackHigh(a8, a9);
        var b10 = Avx512F.UnpackLow(a10, a11); var b11 = Avx512F.UnpackHigh(a10, a11);
        var b12 = Avx512F.UnpackLow(a12, a13); var b13 = Avx512F.UnpackHigh(a12, a13);
        var b14 = Avx512F.UnpackLow(a14, a15); var b15 = Avx512F.UnpackHigh(a14, a15);
        // Round 2: c(4g + q), lane l = column 4l + q of rows 4g .. 4g+3.
        Quad(b0, b1, b2, b3, out var c0, out var c1, out var c2, out var c3);
        Quad(b4, b5, b6, b7, out var c4, out var c5, out var c6, out var c7);
        Quad(b8, b9, b10, b11, out var c8, out var c9, out var c10, out var c11);
        Quad(b12, b13, b14, b15, out var c12, out var c13, out var c14, out var c15);
        // Rounds 3-4: gather lane l of the four row groups into column 4l + q.
        Lanes(c0, c4, c8, c12, out o0, out o4, out o8, out o12);
        Lanes(c1, c5, c9, c13, out o1, out o5, out o9, out o13);
        Lanes(c2, c6, c10, c14, out o2, out o6, out o10, out o14);
        Lanes(c3, c7, c11, c15, out o3, out o7, out o11, out o15);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad(Vector512<float> b0, Vector512<float> b1, Vector512<float> b2, Vector512<float> b3,
        out Vector512<float> c0, out Vector512<float> c1, out Vector512<float> c2, out Vector512<float> c3)
    {
        c0 = Avx512F.UnpackLow(b0.AsDouble(), b2.AsDouble()).AsSingle();
        c1 = Avx512F.UnpackHigh(b0.AsDouble(), b2.AsDouble()).AsSingle();
        c2 = Avx512F.UnpackLow(b1.AsDouble(), b3.AsDouble()).AsSingle();
        c3 = Avx512F.UnpackHigh(b1.AsDouble(), b3.AsDouble()).AsSingle();
    }

    // g0..g3: one column index q of row groups 0..3 (lane l = column 4l + q); out: columns q, 4 + q, 8 + q, 12 + q.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Lanes(Vector512<float> g0, Vector512<float> g1, Vector512<float> g2, Vector512<float> g3,
        out Vector512<float> l0, out Vector512<float> l1, out Vector512<float> l2, out Vector512<float> l3)
    {
        // e = [g0.l0, g0.l2, g1.l0, g1.l2], f = [g0.l1, g0.l3, g1.l1, g1.l3]; likewise g, h from g2, g3.
        var e = Avx512F.Shuffle4x128(g0, g1, 0x88);
        var f = Avx512F.Shuffle4x128(g0, g1, 0xDD);
        var g = Avx512F.Shuffle4x128(g2, g3, 0x88);
        var h = Avx512F.Shuffle4x128(g2, g3, 0xDD);
        l0 = Avx512F.Shuffle4x128(e, g, 0x88); // lane 0 of every group
        l2 = Avx512F.Shuffle4x128(e, g, 0xDD); // lane 2
        l1 = Avx512F.Shuffle4x128(f, h, 0x88); // lane 1
        l3 = Avx512F.Shuffle4x128(f, h, 0xDD); // lane 3
    }
}
