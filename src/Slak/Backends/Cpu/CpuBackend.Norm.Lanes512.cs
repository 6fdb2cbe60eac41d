// The two-vector chunks of the LayerNorms with pixels in the SIMD lanes (16 pixels: a 64-byte line of every channel
// plane, on maps of 8 x 8 and more; CpuBackend.Norm.LayoutPlanes.cs and CpuBackend.Norm.LayoutPlanesBackward.cs) in
// one 512-bit vector instead of two 256-bit ones (Vector<float> is 256 bits here): half the instructions per chunk for
// the same lines, the float64 sums two 8-lane vectors instead of four 4-lane ones. Every lane runs the 256-bit kernels'
// operations in their order (loads, float products and differences, widening, float64 sums, the same divisions and
// square roots, the narrowing), so every value is the same bits. SLAK_LAYERNORM_LANES512=0 (or LayerNormLanes512 =
// false) runs the 256-bit kernels.
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether the LayerNorms' two-vector chunks run in 512-bit vectors where the hardware has them (the
    /// default; SLAK_LAYERNORM_LANES512=0 turns it off). Internal so that the bench and the tests can compare
    /// both.</summary>
    internal static bool LayerNormLanes512 { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_LAYERNORM_LANES512") != "0";

    private static bool UseLanes512 =>
        LayerNormLanes512 && Vector512.IsHardwareAccelerated && Vector<float>.Count * 2 == Vector512<float>.Count;

    /// <summary>0, 1, ..., 15 in the lanes of a Vector512&lt;int&gt;.</summary>
    private static readonly Vector512<int> LaneIndex512 =
        Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    /// <summary><see cref="LnLanesChunk2"/> in one 512-bit vector per channel plane (the same values).</summary>
    private static void LnLanesChunk512(ReadOnlySpan<float> xs, ReadOnlySpan<float> g, int gStride, int gOffset, int hw,
        int p, int skip, int c, ReadOnlySpan<float> mu, ReadOnlySpan<float> rs, ReadOnlySpan<float> w, float[] sums,
        Span<float> dxs)
    {
        const int span = 16;
        var m = Vector512.Create(mu);
        var r = Vector512.Create(rs);
        var keep = Vector512.GreaterThanOrEqual(LaneIndex512, Vector512.Create(skip)).AsSingle();
        var sw = sums.AsSpan(0, c * span);
        var sb = sums.AsSpan(c * span, c * span);
        Vector512<double> a0 = default, a1 = default, b0 = default, b1 = default;
        bool fetch = LnLanesPrefetch && hw >= LnLanesPrefetchFrom && Sse.IsSupported;
        for (int ch = 0; ch < c; ch++)
        {
            var xr = xs.Slice(ch * hw + p, span);
            var gr = g.Slice(ch * gStride + gOffset, span);
            if (fetch) PrefetchNextLines(xr, gStride == hw ? gr : default, span);
            var xh = (Vector512.Create(xr) - m) * r;
            var gv = Vector512.Create(gr);
            var (gl, gh) = Vector512.Widen(gv * Vector512.Create(w[ch]));
            var (xl, xu) = Vector512.Widen(xh);
            a0 += gl;
            a1 += gh;
            b0 += gl * xl;
            b1 += gh * xu;
            var gk = Vector512.ConditionalSelect(keep, gv, Vector512<float>.Zero);
            var swc = sw.Slice(ch * span, span);
            var sbc = sb.Slice(ch * span, span);
            (Vector512.Create((ReadOnlySpan<float>)swc) + gk * xh).CopyTo(swc);
            (Vector512.Create((ReadOnlySpan<float>)sbc) + gk).CopyTo(sbc);
        }
        var count = Vector512.Create((double)c);
        var ma = Vector512.Narrow(a0 / count, a1 / count);
        var mb = Vector512.Narrow(b0 / count, b1 / count);
        for (int ch = 0; ch < c; ch++)
        {
            var xr = xs.Slice(ch * hw + p, span);
            var gr = g.Slice(ch * gStride + gOffset, span);
            var dr = dxs.Slice(ch * hw + p, span);
            if (fetch) PrefetchNextLines(dr, default, span);
            var xh = (Vector512.Create(xr) - m) * r;
            ((Vector512.Create(gr) * Vector512.Create(w[ch]) - ma - xh * mb) * r).CopyTo(dr);
        }
    }

    /// <summary><see cref="PlaneStatistics2"/> and the two <see cref="NormalizeChunk"/> calls of a 16-pixel chunk in
    /// 512-bit vectors (the same values): mean and rstd of the pixels [p, p + 16) into <paramref name="mu"/> and
    /// <paramref name="rs"/>, y of channel ch into dst[ch * dstStride + dstOffset, + 16).</summary>
    private static void LayerNormChunk512(ReadOnlySpan<float> xs, int c, int hw, int p, float eps,
        ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> mu, Span<float> rs, Span<float> dst, int dstStride,
        int dstOffset)
    {
        const int span = 16;
        Vector512<double> s0 = default, s1 = default;
        for (int ch = 0; ch < c; ch++)
        {
            var (lo, hi) = Vector512.Widen(Vector512.Create(xs.Slice(ch * hw + p, span)));
            s0 += lo;
            s1 += hi;
        }
        var count = Vector512.Create((double)c);
        var m0 = s0 / count;
        var m1 = s1 / count;
        Vector512<double> q0 = default, q1 = default;
        for (int ch = 0; ch < c; ch++)
        {
            var (lo, hi) = Vector512.Widen(Vector512.Create(xs.Slice(ch * hw + p, span)));
            var d0 = lo - m0;
            var d1 = hi - m1;
            q0 += d0 * d0;
            q1 += d1 * d1;
        }
        var e = Vector512.Create((double)eps);
        var one = Vector512<double>.One;
        var m = Vector512.Narrow(m0, m1);
        var r = Vector512.Narrow(one / Vector512.Sqrt(q0 / count + e), one / Vector512.Sqrt(q1 / count + e));
        m.CopyTo(mu);
        r.CopyTo(rs);
        for (int ch = 0; ch < c; ch++)
        {
            var v = (Vector512.Create(xs.Slice(ch * hw + p, span)) - m) * r;
            (v * Vector512.Create(w[ch]) + Vector512.Create(b[ch])).CopyTo(dst.Slice(ch * dstStride + dstOffset, span));
        }
    }
}
