// LayerNorm forwards with pixels in the SIMD lanes, on maps of at least one vector of pixels (slak_nano's stages 1-2,
// slak_nano64's stages 1-3). A chunk of W pixels (W = Vector<float>.Count) of one image is one vector per channel
// plane (unit stride in NCHW), so a pixel's statistics are vertical float64 adds across the channel planes, kept in
// registers: the sum over the channels in order, then the centred squares; y = (x - mean) * rstd * w + b in float.
// - Fused with the NCHW -> NHWC permute (IBackend.NormLayout.cs): the row path (CpuBackend.Norm.Layout.cs) gathers each
//   pixel's channel row and reduces it across the lanes of a vector, two horizontal sums per row, which on rows of 31
//   or 62 channels cost more than the arithmetic. Here only the normalised chunk goes through the row path's 8 x 8
//   transposes into its NHWC rows. The float64 sums run in another order than the row path's lane-wise partials (a
//   float may differ in its last bit). The backwards with pixels in the lanes are in
//   CpuBackend.Norm.LayoutPlanesBackward.cs.
// - Channels-first (NCHW in and out, after the stem and the downsampling convolutions): the plane path already summed
//   position-wise, through float64 arrays of H*W sums; the chunk's sums in registers do the same operations in the
//   same order, so the bits are the same.
// Images run in parallel; every value depends only on its own image.
using System.Buffers;
using System.Numerics;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether the LayerNorm forwards (fused with the permute, and channels-first) run with pixels in the SIMD
    /// lanes on maps of at least one vector of pixels (the default) instead of the row path and the plane path.
    /// Internal so that the bench and the tests can compare both.</summary>
    internal static bool LayerNormLayoutPixelLanes { get; set; } = true;

    private static bool UsePixelLanes(int hw) => LayerNormLayoutPixelLanes && hw >= Vector<float>.Count;

    /// <summary>Both forwards: per image, chunk by chunk of W pixels, the statistics across the channel planes, then
    /// the normalised chunk either transposed into its NHWC rows (<paramref name="nhwc"/>: the fused permute, through a
    /// C x W buffer) or written straight into the output planes (channels-first).</summary>
    private static void LayerNormForwardPixelLanes(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y,
        Tensor mean, Tensor rstd, bool nhwc)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3);
        int lanes = Vector<float>.Count;
        // Pixels per chunk: two vectors (a 64-byte line of every plane) on maps of at least two vectors.
        int span = LayerNormForwardLanesWide && hw >= 2 * lanes ? 2 * lanes : lanes;
        CpuParallel.For(0, n, x.Numel, img =>
        {
            var chunk = nhwc ? ArrayPool<float>.Shared.Rent(c * span) : null;
            try
            {
                var xs = S(x).Slice(img * c * hw, c * hw);
                var ys = S(y).Slice(img * c * hw, c * hw);
                var w = S(weight); var b = S(bias);
                var mu = S(mean).Slice(img * hw, hw);
                var rs = S(rstd).Slice(img * hw, hw);
                bool fetch = UseImagePrefetch(hw);
                int chunks = (hw + span - 1) / span;
                for (int p0 = 0; p0 < hw; p0 += span)
                {
                    if (fetch) PrefetchNextImage(x, y, null, img, p0 / span, p0 / span + 1, chunks);
                    int p = Math.Min(p0, hw - span); // the last chunk overlaps the one before: same values again
                    if (span > lanes && UseLanes512)
                    {
                        LayerNormChunk512(xs, c, hw, p, eps, w, b, mu.Slice(p, span), rs.Slice(p, span),
                            chunk is null ? ys : chunk, chunk is null ? hw : span, chunk is null ? p : 0);
                        if (chunk is not null) GatherPixelRows(chunk, c, span, 0, span, ys.Slice(p * c, span * c));
                        continue;
                    }
                    Vector<float> m, r, m1 = default, r1 = default;
                    if (span == lanes)
                        (m, r) = PlaneStatistics(xs, c, hw, p, eps);
                    else
                        (m, r, m1, r1) = PlaneStatistics2(xs, c, hw, p, eps);
                    m.CopyTo(mu.Slice(p, lanes));
                    r.CopyTo(rs.Slice(p, lanes));
                    if (span > lanes)
                    {
                        m1.CopyTo(mu.Slice(p + lanes, lanes));
                        r1.CopyTo(rs.Slice(p + lanes, lanes));
                    }
                    if (chunk is null)
                    {
                        NormalizeChunk(xs, c, hw, p, m, r, w, b, ys, hw, p);
                        if (span > lanes) NormalizeChunk(xs, c, hw, p + lanes, m1, r1, w, b, ys, hw, p + lanes);
                    }
                    else
                    {
                        NormalizeChunk(xs, c, hw, p, m, r, w, b, chunk, span, 0);
                        if (span > lanes) NormalizeChunk(xs, c, hw, p + lanes, m1, r1, w, b, chunk, span, lanes);
                        GatherPixelRows(chunk, c, span, 0, span, ys.Slice(p * c, span * c));
                    }
                }
            }
            finally
            {
                if (chunk is not null) ArrayPool<float>.Shared.Return(chunk);
            }
        });
    }

    /// <summary>Whether the LayerNorm forwards with pixels in the lanes take chunks of two vectors of pixels (a 64-byte
    /// line of every plane) on maps of at least two vectors (the default; SLAK_LAYERNORM_FWD_WIDE=0 turns it off)
    /// instead of one: the statistics' float64 sums of the two vectors are four independent chains in one pass over
    /// the channels instead of two chains in each of two passes. Every lane runs the same operations in the same order,
    /// so the bits are the same. Internal so that the bench and the tests can compare both.</summary>
    internal static bool LayerNormForwardLanesWide { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_LAYERNORM_FWD_WIDE") != "0";

    /// <summary><see cref="PlaneStatistics"/> of the pixels [p, p + W) and [p + W, p + 2 W) in one pass over the
    /// channels (the same operations on each vector, so the same bits).</summary>
    private static (Vector<float> Mean0, Vector<float> Rstd0, Vector<float> Mean1, Vector<float> Rstd1) PlaneStatistics2(
        ReadOnlySpan<float> xs, int c, int hw, int p, float eps)
    {
        int lanes = Vector<float>.Count;
        Vector<double> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int ch = 0; ch < c; ch++)
        {
            var row = xs.Slice(ch * hw + p, 2 * lanes);
            Vector.Widen(new Vector<float>(row), out var lo, out var hi);
            Vector.Widen(new Vector<float>(row.Slice(lanes)), out var lo1, out var hi1);
            s0 += lo;
            s1 += hi;
            s2 += lo1;
            s3 += hi1;
        }
        var count = new Vector<double>(c);
        var m0 = s0 / count;
        var m1 = s1 / count;
        var m2 = s2 / count;
        var m3 = s3 / count;
        Vector<double> q0 = default, q1 = default, q2 = default, q3 = default;
        for (int ch = 0; ch < c; ch++)
        {
            var row = xs.Slice(ch * hw + p, 2 * lanes);
            Vector.Widen(new Vector<float>(row), out var lo, out var hi);
            Vector.Widen(new Vector<float>(row.Slice(lanes)), out var lo1, out var hi1);
            var d0 = lo - m0;
            var d1 = hi - m1;
            var d2 = lo1 - m2;
            var d3 = hi1 - m3;
            q0 += d0 * d0;
            q1 += d1 * d1;
            q2 += d2 * d2;
            q3 += d3 * d3;
        }
        var e = new Vector<double>(eps);
        var one = Vector<double>.One;
        var r0 = one / Vector.SquareRoot(q0 / count + e);
        var r1 = one / Vector.SquareRoot(q1 / count + e);
        var r2 = one / Vector.SquareRoot(q2 / count + e);
        var r3 = one / Vector.SquareRoot(q3 / count + e);
        return (Vector.Narrow(m0, m1), Vector.Narrow(r0, r1), Vector.Narrow(m2, m3), Vector.Narrow(r2, r3));
    }

    /// <summary>dst[ch * dstStride + dstOffset + lane] = (x - mean) * rstd * w[ch] + b[ch] for the pixels [p, p + W) of
    /// every channel plane (float, as the row and plane paths compute it).</summary>
    private static void NormalizeChunk(ReadOnlySpan<float> xs, int c, int hw, int p, Vector<float> m, Vector<float> r,
        ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> dst, int dstStride, int dstOffset)
    {
        int lanes = Vector<float>.Count;
        for (int ch = 0; ch < c; ch++)
        {
            var v = (new Vector<float>(xs.Slice(ch * hw + p, lanes)) - m) * r;
            (v * new Vector<float>(w[ch]) + new Vector<float>(b[ch])).CopyTo(dst.Slice(ch * dstStride + dstOffset, lanes));
        }
    }

    /// <summary>Mean and 1/sqrt(biased variance + eps) of the pixels [p, p + W) of one image (planes of
    /// <paramref name="hw"/>), each lane a pixel: float64 sums over the channels in order, then the centred
    /// squares.</summary>
    private static (Vector<float> Mean, Vector<float> Rstd) PlaneStatistics(ReadOnlySpan<float> xs, int c, int hw, int p,
        float eps)
    {
        int lanes = Vector<float>.Count;
        Vector<double> s0 = default, s1 = default;
        for (int ch = 0; ch < c; ch++)
        {
            Vector.Widen(new Vector<float>(xs.Slice(ch * hw + p, lanes)), out var lo, out var hi);
            s0 += lo;
            s1 += hi;
        }
        var count = new Vector<double>(c);
        var m0 = s0 / count;
        var m1 = s1 / count;
        Vector<double> q0 = default, q1 = default;
        for (int ch = 0; ch < c; ch++)
        {
            Vector.Widen(new Vector<float>(xs.Slice(ch * hw + p, lanes)), out var lo, out var hi);
            var d0 = lo - m0;
            var d1 = hi - m1;
            q0 += d0 * d0;
            q1 += d1 * d1;
        }
        var e = new Vector<double>(eps);
        var one = Vector<double>.One;
        var r0 = one / Vector.SquareRoot(q0 / count + e);
        var r1 = one / Vector.SquareRoot(q1 / count + e);
        return (Vector.Narrow(m0, m1), Vector.Narrow(r0, r1));
    }
}
