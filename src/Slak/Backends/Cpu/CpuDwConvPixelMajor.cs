// Moves between one image's channel planes (C, H*W) and the pixel-major columns of the small-map depthwise path
// (CpuDwConvSmallMap.cs): 8 channels of every pixel, at a given pixel stride (a 16-channel column is two such halves
// side by side, so one Vector512 is one pixel of 16 channels). Full 8 x 8 blocks go through the AVX register transpose
// (with all 8 channels present and CpuDwConvColumns.Enabled: 128-bit halves, one in-lane 4 x 4 transpose, 16 shuffles
// instead of 24); the pixel tail (maps of fewer than 8 pixels, or H*W not a multiple of 8) uses masked loads and
// stores, and channels past C read as zeros and are never written back. Without AVX the moves are scalar.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

/// <summary>Channel planes to and from pixel-major columns, 8 channels per move.</summary>
internal static unsafe class CpuDwConvPixelMajor
{
    /// <summary>Channels per move (one Vector256 of floats).</summary>
    internal const int L = 8;

    // Lanes [8 - t, 16 - t) of this table are a mask of the first t lanes.
    private static readonly int[] TailMask = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

    /// <summary>dst[r * rowStride + q * stride + k] = planes[k * hw + r * w + q] for k &lt; channels, 0 for
    /// channels &lt;= k &lt; 8, every pixel (r, q) of the map (hw pixels, rows of w); <paramref name="planes"/> is the
    /// first of <paramref name="channels"/> (0..8) consecutive planes; stride (floats between pixels of dst) is at
    /// least 8, rowStride at least w * stride (larger: a zero border around the map, left alone here).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ToColumn(float* planes, int channels, int hw, int w, float* dst, int stride, int rowStride)
    {
        if (!Avx.IsSupported)
        {
            for (int p = 0; p < hw; p++)
                for (int k = 0; k < L; k++)
                    dst[(nint)(p / w) * rowStride + (nint)(p % w) * stride + k] = k < channels ? planes[(nint)k * hw + p] : 0f;
            return;
        }
        bool dense = rowStride == w * stride;
        // With a border, a block of 8 pixels is the same pattern of rows at every block when rows are whole blocks
        // or blocks whole rows (w a multiple or a divisor of 8: the 8 x 8 and 4 x 4 maps): then its 8 offsets are
        // computed once instead of stepping (row, column) per pixel (0.83-0.99 times the pass time of the forward and
        // input gradient on those maps; SLAK_DWCONV_COLUMNS=0 turns it off with the line kernels).
        bool regular = CpuDwConvColumns.Enabled && !dense && (w % L == 0 || L % w == 0);
        // All 8 channels present: full blocks by 128-bit halves (ToPixels), 16 shuffles instead of 24.
        bool halves = CpuDwConvColumns.Enabled && channels == L;
        nint* off = stackalloc nint[L];
        if (regular)
            for (int i = 0, r = 0, q = 0; i < L; i++)
            {
                off[i] = r * (nint)rowStride + q * (nint)stride;
                if (++q == w) (r, q) = (r + 1, 0);
            }
        fixed (int* tm = TailMask)
            for (int p0 = 0; p0 < hw; p0 += L)
            {
                int t = Math.Min(L, hw - p0);
                var mask = Vector256.Load(tm + L - t).AsSingle();
                float* s = planes + p0;
                Vector256<float> o0, o1, o2, o3, o4, o5, o6, o7;
                if (halves && t == L)
                {
                    ToPixels(s, hw, out o0, out o1, out o2, out o3);
                    ToPixels(s + 4, hw, out o4, out o5, out o6, out o7);
                }
                else
                {
                    var r0 = Row(s, 0, channels, hw, t, mask);
                    var r1 = Row(s, 1, channels, hw, t, mask);
                    var r2 = Row(s, 2, channels, hw, t, mask);
                    var r3 = Row(s, 3, channels, hw, t, mask);
                    var r4 = Row(s, 4, channels, hw, t, mask);
                    var r5 = Row(s, 5, channels, hw, t, mask);
                    var r6 = Row(s, 6, channels, hw, t, mask);
                    var r7 = Row(s, 7, channels, hw, t, mask);
                    CpuDwConvTranspose.Transpose(r0, r1, r2, r3, r4, r5, r6, r7,
                        out o0, out o1, out o2, out o3, out o4, out o5, out o6, out o7);
                }
                if (regular && t == L)
                {
                    float* b = dst + (nint)(p0 / w) * rowStride + (nint)(p0 % w) * stride;
                    o0.Store(b); o1.Store(b + off[1]); o2.Store(b + off[2]); o3.Store(b + off[3]);
                    o4.Store(b + off[4]); o5.Store(b + off[5]); o6.Store(b + off[6]); o7.Store(b + off[7]);
                    continue;
                }
                if (!dense)
                {
                    int r = p0 / w, q = p0 - r * w;
                    Put(o0, dst, ref r, ref q, w, stride, rowStride);
                    if (t > 1) Put(o1, dst, ref r, ref q, w, stride, rowStride);
                    if (t > 2) Put(o2, dst, ref r, ref q, w, stride, rowStride);
                    if (t > 3) Put(o3, dst, ref r, ref q, w, stride, rowStride);
                    if (t > 4) Put(o4, dst, ref r, ref q, w, stride, rowStride);
                    if (t > 5) Put(o5, dst, ref r, ref q, w, stride, rowStride);
                    if (t > 6) Put(o6, dst, ref r, ref q, w, stride, rowStride);
                    if (t > 7) Put(o7, dst, ref r, ref q, w, stride, rowStride);
                    continue;
                }
                float* d = dst + (nint)p0 * stride;
                o0.Store(d);
                if (t > 1) o1.Store(d + stride);
                if (t > 2) o2.Store(d + 2 * stride);
                if (t > 3) o3.Store(d + 3 * stride);
                if (t > 4) o4.Store(d + 4 * stride);
                if (t > 5) o5.Store(d + 5 * stride);
                if (t > 6) o6.Store(d + 6 * stride);
                if (t > 7) o7.Store(d + 7 * stride);
            }
    }

    /// <summary>planes[k * hw + p] = src[p * stride + k] for k &lt; channels and every pixel p of hw: the inverse
    /// of <see cref="ToColumn"/> (lanes of channels past the count are dropped).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void FromColumn(float* src, int channels, int hw, float* planes, int stride)
    {
        if (channels <= 0) return;
        if (!Avx.IsSupported)
        {
            for (int k = 0; k < channels; k++)
                for (int p = 0; p < hw; p++) planes[(nint)k * hw + p] = src[(nint)p * stride + k];
            return;
        }
        bool halves = CpuDwConvColumns.Enabled && channels == L;
        fixed (int* tm = TailMask)
            for (int p0 = 0; p0 < hw; p0 += L)
            {
                int t = Math.Min(L, hw - p0);
                float* s = src + (nint)p0 * stride;
                if (halves && t == L)
                {
                    FromPixels(s, stride, planes + p0, hw);
                    FromPixels(s + 4 * stride, stride, planes + p0 + 4, hw);
                    continue;
                }
                var r0 = Vector256.Load(s);
                var r1 = t > 1 ? Vector256.Load(s + stride) : default;
                var r2 = t > 2 ? Vector256.Load(s + 2 * stride) : default;
                var r3 = t > 3 ? Vector256.Load(s + 3 * stride) : default;
                var r4 = t > 4 ? Vector256.Load(s + 4 * stride) : default;
                var r5 = t > 5 ? Vector256.Load(s + 5 * stride) : default;
                var r6 = t > 6 ? Vector256.Load(s + 6 * stride) : default;
                var r7 = t > 7 ? Vector256.Load(s + 7 * stride) : default;
                CpuDwConvTranspose.Transpose(r0, r1, r2, r3, r4, r5, r6, r7,
                    out var o0, out var o1, out var o2, out var o3, out var o4, out var o5, out var o6, out var o7);
                float* d = planes + p0;
                if (t == L)
                {
                    o0.Store(d);
                    if (channels > 1) o1.Store(d + hw);
                    if (channels > 2) o2.Store(d + 2 * hw);
                    if (channels > 3) o3.Store(d + 3 * hw);
                    if (channels > 4) o4.Store(d + 4 * hw);
                    if (channels > 5) o5.Store(d + 5 * hw);
                    if (channels > 6) o6.Store(d + 6 * hw);
                    if (channels > 7) o7.Store(d + 7 * hw);
                    continue;
                }
                var mask = Vector256.Load(tm + L - t).AsSingle();
                Avx.MaskStore(d, mask, o0);
                if (channels > 1) Avx.MaskStore(d + hw, mask, o1);
                if (channels > 2) Avx.MaskStore(d + 2 * hw, mask, o2);
                if (channels > 3) Avx.MaskStore(d + 3 * hw, mask, o3);
                if (channels > 4) Avx.MaskStore(d + 4 * hw, mask, o4);
                if (channels > 5) Avx.MaskStore(d + 5 * hw, mask, o5);
                if (channels > 6) Avx.MaskStore(d + 6 * hw, mask, o6);
                if (channels > 7) Avx.MaskStore(d + 7 * hw, mask, o7);
            }
    }

    // Pixels 0..3 (at s, s + 1, ..) of the 8 planes s + k * hw as 4 vectors of 8 channels: each 256-bit row holds
    // planes k and k + 4 (two 128-bit loads), so one 4 x 4 transpose within the 128-bit lanes (8 shuffles) puts
    // channels 0-3 and 4-7 of a pixel side by side. (The 8 x 8 transpose needs a third round, across the lanes.)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ToPixels(float* s, nint hw, out Vector256<float> p0, out Vector256<float> p1,
        out Vector256<float> p2, out Vector256<float> p3)
    {
        var a0 = Vector256.Create(Vector128.Load(s), Vector128.Load(s + 4 * hw));
        var a1 = Vector256.Create(Vector128.Load(s + hw), Vector128.Load(s + 5 * hw));
        var a2 = Vector256.Create(Vector128.Load(s + 2 * hw), Vector128.Load(s + 6 * hw));
        var a3 = Vector256.Create(Vector128.Load(s + 3 * hw), Vector128.Load(s + 7 * hw));
        var t0 = Avx.UnpackLow(a0, a1).AsDouble();
        var t1 = Avx.UnpackHigh(a0, a1).AsDouble();
        var t2 = Avx.UnpackLow(a2, a3).AsDouble();
        var t3 = Avx.UnpackHigh(a2, a3).AsDouble();
        p0 = Avx.UnpackLow(t0, t2).AsSingle();
        p1 = Avx.UnpackHigh(t0, t2).AsSingle();
        p2 = Avx.UnpackLow(t1, t3).AsSingle();
        p3 = Avx.UnpackHigh(t1, t3).AsSingle();
    }

    // The inverse of ToPixels: 4 pixel vectors (s, s + stride, ..) to pixels 0..3 of the 8 planes d + k * hw.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FromPixels(float* s, nint stride, float* d, nint hw)
    {
        var q0 = Vector256.Load(s);
        var q1 = Vector256.Load(s + stride);
        var q2 = Vector256.Load(s + 2 * stride);
        var q3 = Vector256.Load(s + 3 * stride);
        var t0 = Avx.UnpackLow(q0, q1).AsDouble();
        var t1 = Avx.UnpackHigh(q0, q1).AsDouble();
        var t2 = Avx.UnpackLow(q2, q3).AsDouble();
        var t3 = Avx.UnpackHigh(q2, q3).AsDouble();
        var c0 = Avx.UnpackLow(t0, t2).AsSingle();
        var c1 = Avx.UnpackHigh(t0, t2).AsSingle();
        var c2 = Avx.UnpackLow(t1, t3).AsSingle();
        var c3 = Avx.UnpackHigh(t1, t3).AsSingle();
        c0.GetLower().Store(d); c0.GetUpper().Store(d + 4 * hw);
        c1.GetLower().Store(d + hw); c1.GetUpper().Store(d + 5 * hw);
        c2.GetLower().Store(d + 2 * hw); c2.GetUpper().Store(d + 6 * hw);
        c3.GetLower().Store(d + 3 * hw); c3.GetUpper().Store(d + 7 * hw);
    }

    // Stores one pixel's vector at (r, q) and steps to the next pixel of the row-major map.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(Vector256<float> v, float* dst, ref int r, ref int q, int w, int stride, int rowStride)
    {
        v.Store(dst + (nint)r * rowStride + (nint)q * stride);
        if (++q == w)
        {
            q = 0;
            r++;
        }
    }

    // Pixels [p0, p0 + t) of channel k's plane (s = plane 0 + p0); zeros for a channel past the count.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Row(float* s, int k, int channels, int hw, int t, Vector256<float> mask)
    {
        if (k >= channels) return default;
        float* p = s + (nint)k * hw;
        return t == L ? Vector256.Load(p) : Avx.MaskLoad(p, mask);
    }
}
