// LayerNorm backwards with pixels in the SIMD lanes (the counterpart of the forwards in CpuBackend.Norm.LayoutPlanes.cs):
// the fused NCHW -> NHWC one (IBackend.NormLayout.cs: dy NHWC) and the channels-first one (dy NCHW); dx is NCHW in both.
// A chunk of one or two vectors of pixels of one image (two, a 64-byte line of every plane, on maps of 8 x 8 and more)
// is one or two vectors per channel plane of x (unit stride). For the fused backward the chunk's rows of dy (chunk x C
// contiguous floats) are transposed once into a C x chunk buffer through the row path's 8 x 8 transposes, so the permute
// costs no pass of its own and dx goes straight into its NCHW planes.
// Per chunk, pass 1 runs over the channels in order: xhat = (x - mean) * rstd, gw = g * w (float), and each pixel's two
// sums, of gw and gw * xhat, are vertical float64 adds kept in registers (the row path's horizontal sums per row cost
// more than the arithmetic on rows of 31 or 62 channels). The parameter gradients' sums cannot stay in registers (one
// vector per channel): an earlier try that added them in float64 to per-channel arrays every chunk measured no faster
// than the row path. Here each channel's lanes add g * xhat and g in float into an L1-resident C x chunk array for at
// most FlushChunks chunks (a float sum of at most 16 terms), which are then added in float64 into a C x chunk float64
// array, and the lanes are summed in float64 at the end. Pass 2 writes dx = (gw - mean(gw) - xhat * mean(gw * xhat)) *
// rstd in float, the means rounded to float from float64 as the row path does.
// Where it is the default (UseBackwardPixelLanes, measured with layout-norm-step): the fused backward on maps of 8 x 8
// and more, the channels-first one on 4 x 4 and 8 x 8 maps; smaller maps keep the row and flat paths, 16 x 16 maps the
// channels-first plane path.
// Determinism: the batch is cut into fixed parts of LnLanesImagesPerPart images whatever the thread count, every sum
// runs in a fixed order within its part, and the parts are added in order, so the bits depend only on the inputs (not
// on the thread count). A map whose pixel count is not a multiple of the chunk ends with a chunk that overlaps the one
// before: its overlapped lanes get the same dx again and are masked out of the parameter gradients.
// SLAK_LAYERNORM_BWD_LANES=0 (or LayerNormBackwardPixelLanes = false) runs the row, flat and plane paths instead.
using System.Buffers;
using System.Numerics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether the LayerNorm backwards (fused with the permute, and channels-first) run with pixels in the SIMD
    /// lanes on maps of at least one vector of pixels (the default; SLAK_LAYERNORM_BWD_LANES=0 turns it off) instead of
    /// the row path and the flat / plane paths. Internal so that the bench and the tests can compare both.</summary>
    internal static bool LayerNormBackwardPixelLanes { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_LAYERNORM_BWD_LANES") != "0";

    /// <summary>Images per part of the pixel-lane backwards: a part's parameter-gradient sums are added in part order.</summary>
    private const int LnLanesImagesPerPart = 8;

    /// <summary>Chunks whose g * xhat and g a channel's lanes sum in float before they are added in float64.</summary>
    private const int FlushChunks = 16;

    /// <summary>The pixel counts (H*W) on which the fused backward takes the pixel lanes: from this many. Measured with
    /// layout-norm-step (batch 128, 2 threads, a loaded machine): 0.6-0.8x the row path's time on 8 x 8 and 16 x 16
    /// maps, but 1.1-1.5x on 4 x 4 (two chunks per image, each paying its dy transpose). Internal so that the tests can
    /// run the kernel on every map.</summary>
    internal static int LayerNormBackwardLanesFusedFrom { get; set; } = 64;

    /// <summary>The pixel counts on which the channels-first backward takes the pixel lanes: below this many (and at
    /// least one vector). Measured with layout-norm-step: 0.55-0.65x the flat and plane paths' time on 4 x 4 and 8 x 8
    /// maps, but 1.3-1.6x on 16 x 16, where the plane path reads whole planes in order and the chunks read 3 x C streams
    /// 1 KiB apart; that was before the chunks prefetched their next lines (LnLanesPrefetch) and the next image
    /// (LayoutImagePrefetch). With both, the lanes take 16 x 16 maps too (slak_nano64's stem and first downsampling
    /// layer; SLAK_LAYERNORM_CF_LANES_16=0 keeps them on the plane path): bench/results/layout-norm-groups-cf16.md.
    /// Internal so that the tests can run the kernel on every map.</summary>
    internal static int LayerNormBackwardLanesChannelsFirstBelow { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_LAYERNORM_CF_LANES_16") == "0" ? 128 : 512;

    /// <summary>Whether chunks are two vectors of pixels wide on maps of at least <see cref="LnLanesWideFrom"/> pixels
    /// (the default) instead of one. Measured with layout-norm-step (lanes forced on every map): 0.7-0.9x the time of
    /// one-vector chunks on 8 x 8 and 16 x 16 maps, 1.07-1.16x on 4 x 4. Internal so that the bench and the tests can
    /// compare both.</summary>
    internal static bool LayerNormBackwardLanesWide { get; set; } = true;

    /// <summary>Pixels (H*W) from which chunks are two vectors wide (with <see cref="LayerNormBackwardLanesWide"/>).</summary>
    internal static int LnLanesWideFrom { get; set; } = 64;

    private static bool UseBackwardPixelLanes(int hw, bool nhwc) =>
        LayerNormBackwardPixelLanes && hw >= Vector<float>.Count
        && (nhwc ? hw >= LayerNormBackwardLanesFusedFrom : hw < LayerNormBackwardLanesChannelsFirstBelow);

    /// <summary>Both backwards: dy NHWC (<paramref name="nhwc"/>, the fused permute) or NCHW; x and dx NCHW; mean and
    /// rstd per pixel in (image, position) order; dweight and dbias overwritten.</summary>
    private static void LayerNormBackwardLanes(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
        Tensor dx, Tensor dweight, Tensor dbias, bool nhwc)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3);
        // Pixels per chunk: two vectors (a 64-byte line of every plane) on maps of 8 x 8 and more.
        int span = Vector<float>.Count * (LayerNormBackwardLanesWide && hw >= LnLanesWideFrom ? 2 : 1);
        int parts = (n + LnLanesImagesPerPart - 1) / LnLanesImagesPerPart;
        var partial = new double[parts][];
        try
        {
            CpuParallel.For(0, parts, x.Numel, part =>
            {
                // acc: [0, c * span) the lanes of dweight, [c * span, 2 c * span) those of dbias, float64.
                var acc = ArrayPool<double>.Shared.Rent(2 * c * span);
                var sums = ArrayPool<float>.Shared.Rent(2 * c * span);
                var gbuf = nhwc ? ArrayPool<float>.Shared.Rent(c * span) : null;
                try
                {
                    Array.Clear(acc, 0, 2 * c * span);
                    Array.Clear(sums, 0, 2 * c * span);
                    int pending = 0;
                    bool fetch = UseImagePrefetch(hw);
                    int chunks = (hw + span - 1) / span;
                    for (int img = part * LnLanesImagesPerPart, end = Math.Min(n, img + LnLanesImagesPerPart); img < end; img++)
                    {
                        var xs = S(x).Slice(img * c * hw, c * hw);
                        var dxs = S(dx).Slice(img * c * hw, c * hw);
                        var mu = S(mean).Slice(img * hw, hw);
                        var rs = S(rstd).Slice(img * hw, hw);
                        for (int p0 = 0; p0 < hw; p0 += span)
                        {
                            if (fetch) PrefetchNextImage(x, dy, dx, img, p0 / span, p0 / span + 1, chunks);
                            int p = Math.Min(p0, hw - span); // the last chunk overlaps the one before
                            ReadOnlySpan<float> g;
                            int gStride = hw, gOffset = p;
                            if (gbuf is not null)
                            {
                                // The chunk's NHWC rows of dy into chunk-long channel rows (the 8 x 8 transposes).
                                ScatterPixelRows(S(dy).Slice((img * hw + p) * c, span * c), c, span, 0, span, gbuf);
                                g = gbuf.AsSpan(0, c * span);
                                (gStride, gOffset) = (span, 0);
                            }
                            else
                                g = S(dy).Slice(img * c * hw, c * hw);
                            if (span == Vector<float>.Count)
                                LnLanesChunk(xs, g, gStride, gOffset, hw, p, p0 - p, c, new Vector<float>(mu.Slice(p, span)),
                                    new Vector<float>(rs.Slice(p, span)), S(weight), sums, dxs);
                            else if (UseLanes512)
                                LnLanesChunk512(xs, g, gStride, gOffset, hw, p, p0 - p, c, mu.Slice(p, span),
                                    rs.Slice(p, span), S(weight), sums, dxs);
                            else
                                LnLanesChunk2(xs, g, gStride, gOffset, hw, p, p0 - p, c, mu.Slice(p, span),
                                    rs.Slice(p, span), S(weight), sums, dxs);
                            if (++pending == FlushChunks)
                            {
                                FlushLaneSums(sums, acc, 2 * c * span);
                                pending = 0;
                            }
                        }
                    }
                    if (pending > 0) FlushLaneSums(sums, acc, 2 * c * span);
                    partial[part] = acc;
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(sums);
                    if (gbuf is not null) ArrayPool<float>.Shared.Return(gbuf);
                }
            });
            for (int ch = 0; ch < c; ch++)
            {
                double sw = 0, sb = 0;
                for (int part = 0; part < parts; part++)
                {
                    var a = partial[part];
                    for (int k = 0; k < span; k++)
                    {
                        sw += a[ch * span + k];
                        sb += a[(c + ch) * span + k];
                    }
                }
                S(dweight)[ch] = (float)sw;
                S(dbias)[ch] = (float)sb;
            }
        }
        finally
        {
            foreach (var a in partial)
                if (a is not null) ArrayPool<double>.Shared.Return(a);
        }
    }

    /// <summary>One chunk of W pixels at position <paramref name="p"/> of one image: g of channel ch is
    /// g[ch * gStride + gOffset, + W); the chunk's first <paramref name="skip"/> lanes were done by the chunk before
    /// (they get the same dx again but add nothing to <paramref name="sums"/>); sums gains g * xhat in [0, c * W) and g
    /// in [c * W, 2 c * W), float, channel-major.</summary>
    private static void LnLanesChunk(ReadOnlySpan<float> xs, ReadOnlySpan<float> g, int gStride, int gOffset, int hw,
        int p, int skip, int c, Vector<float> m, Vector<float> r, ReadOnlySpan<float> w, float[] sums, Span<float> dxs)
    {
        int lanes = Vector<float>.Count;
        var keep = skip == 0 ? Vector<int>.AllBitsSet : Vector.GreaterThanOrEqual(LaneIndex, new Vector<int>(skip));
        var sw = sums.AsSpan(0, c * lanes);
        var sb = sums.AsSpan(c * lanes, c * lanes);
        Vector<double> a0 = default, a1 = default, b0 = default, b1 = default;
        for (int ch = 0; ch < c; ch++)
        {
            var xh = (new Vector<float>(xs.Slice(ch * hw + p, lanes)) - m) * r;
            var gv = new Vector<float>(g.Slice(ch * gStride + gOffset, lanes));
            Vector.Widen(gv * new Vector<float>(w[ch]), out var gl, out var gh);
            Vector.Widen(xh, out var xl, out var xu);
            a0 += gl;
            a1 += gh;
            b0 += gl * xl;
            b1 += gh * xu;
            var gk = Vector.ConditionalSelect(keep, gv, Vector<float>.Zero);
            var swc = sw.Slice(ch * lanes, lanes);
            var sbc = sb.Slice(ch * lanes, lanes);
            (new Vector<float>(swc) + gk * xh).CopyTo(swc);
            (new Vector<float>(sbc) + gk).CopyTo(sbc);
        }
        var count = new Vector<double>(c);
        var ma = Vector.Narrow(a0 / count, a1 / count);
        var mb = Vector.Narrow(b0 / count, b1 / count);
        for (int ch = 0; ch < c; ch++)
        {
            var xh = (new Vector<float>(xs.Slice(ch * hw + p, lanes)) - m) * r;
            var gw = new Vector<float>(g.Slice(ch * gStride + gOffset, lanes)) * new Vector<float>(w[ch]);
            ((gw - ma - xh * mb) * r).CopyTo(dxs.Slice(ch * hw + p, lanes));
        }
    }

    /// <summary><see cref="LnLanesChunk"/> for a chunk of two vectors of pixels (2 W): the same operations on each
    /// vector.</summary>
    private static void LnLanesChunk2(ReadOnlySpan<float> xs, ReadOnlySpan<float> g, int gStride, int gOffset, int hw,
        int p, int skip, int c, ReadOnlySpan<float> mu, ReadOnlySpan<float> rs, ReadOnlySpan<float> w, float[] sums,
        Span<float> dxs)
    {
        int lanes = Vector<float>.Count, span = 2 * lanes;
        var m0 = new Vector<float>(mu);
        var m1 = new Vector<float>(mu.Slice(lanes));
        var r0 = new Vector<float>(rs);
        var r1 = new Vector<float>(rs.Slice(lanes));
        var keep0 = Vector.GreaterThanOrEqual(LaneIndex, new Vector<int>(skip));
        var keep1 = Vector.GreaterThanOrEqual(LaneIndex, new Vector<int>(skip - lanes));
        var sw = sums.AsSpan(0, c * span);
        var sb = sums.AsSpan(c * span, c * span);
        Vector<double> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector<double> b0 = default, b1 = default, b2 = default, b3 = default;
        bool fetch = LnLanesPrefetch && hw >= LnLanesPrefetchFrom && Sse.IsSupported;
        for (int ch = 0; ch < c; ch++)
        {
            var xr = xs.Slice(ch * hw + p, span);
            var gr = g.Slice(ch * gStride + gOffset, span);
            if (fetch) PrefetchNextLines(xr, gStride == hw ? gr : default, span);
            var wc = new Vector<float>(w[ch]);
            var xh0 = (new Vector<float>(xr) - m0) * r0;
            var xh1 = (new Vector<float>(xr.Slice(lanes)) - m1) * r1;
            var g0 = new Vector<float>(gr);
            var g1 = new Vector<float>(gr.Slice(lanes));
            Vector.Widen(g0 * wc, out var gl0, out var gh0);
            Vector.Widen(g1 * wc, out var gl1, out var gh1);
            Vector.Widen(xh0, out var xl0, out var xu0);
            Vector.Widen(xh1, out var xl1, out var xu1);
            a0 += gl0;
            a1 += gh0;
            a2 += gl1;
            a3 += gh1;
            b0 += gl0 * xl0;
            b1 += gh0 * xu0;
            b2 += gl1 * xl1;
            b3 += gh1 * xu1;
            var gk0 = Vector.ConditionalSelect(keep0, g0, Vector<float>.Zero);
            var gk1 = Vector.ConditionalSelect(keep1, g1, Vector<float>.Zero);
            var swc = sw.Slice(ch * span, span);
            var sbc = sb.Slice(ch * span, span);
            (new Vector<float>(swc) + gk0 * xh0).CopyTo(swc);
            (new Vector<float>(swc.Slice(lanes)) + gk1 * xh1).CopyTo(swc.Slice(lanes));
            (new Vector<float>(sbc) + gk0).CopyTo(sbc);
            (new Vector<float>(sbc.Slice(lanes)) + gk1).CopyTo(sbc.Slice(lanes));
        }
        var count = new Vector<double>(c);
        var ma0 = Vector.Narrow(a0 / count, a1 / count);
        var ma1 = Vector.Narrow(a2 / count, a3 / count);
        var mb0 = Vector.Narrow(b0 / count, b1 / count);
        var mb1 = Vector.Narrow(b2 / count, b3 / count);
        for (int ch = 0; ch < c; ch++)
        {
            var xr = xs.Slice(ch * hw + p, span);
            var gr = g.Slice(ch * gStride + gOffset, span);
            var dr = dxs.Slice(ch * hw + p, span);
            if (fetch) PrefetchNextLines(dr, default, span);
            var wc = new Vector<float>(w[ch]);
            var xh0 = (new Vector<float>(xr) - m0) * r0;
            var xh1 = (new Vector<float>(xr.Slice(lanes)) - m1) * r1;
            ((new Vector<float>(gr) * wc - ma0 - xh0 * mb0) * r0).CopyTo(dr);
            ((new Vector<float>(gr.Slice(lanes)) * wc - ma1 - xh1 * mb1) * r1).CopyTo(dr.Slice(lanes));
        }
    }

    /// <summary>Whether two-vector chunks on maps of at least <see cref="LnLanesPrefetchFrom"/> pixels ask for the next
    /// chunk's line of every plane they read or write (the default): a chunk reads and writes 3 x C streams 1 KiB apart
    /// on a 16 x 16 map, more than the hardware prefetchers follow. Measured with layout-norm-step (lanes forced on every
    /// map, a loaded machine): 0.8-0.93x on 16 x 16 maps, 0.86-1.06x on 8 x 8. Internal so that the bench can time both.
    /// </summary>
    internal static bool LnLanesPrefetch { get; set; } = true;

    /// <summary>Pixels (H*W) from which <see cref="LnLanesPrefetch"/> applies.</summary>
    private const int LnLanesPrefetchFrom = 128;

    /// <summary>Asks for the line after <paramref name="a"/>'s (and after <paramref name="b"/>'s, unless empty): the next
    /// chunk's, in the same plane. A prefetch never faults, so past the end of a plane is harmless.</summary>
    private static unsafe void PrefetchNextLines(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int span)
    {
        fixed (float* pa = a, pb = b)
        {
            Sse.Prefetch0(pa + span);
            if (pb != null) Sse.Prefetch0(pb + span);
        }
    }

    /// <summary>acc[i] += sums[i] in float64 for i &lt; <paramref name="length"/> (a multiple of the vector width), then
    /// sums cleared.</summary>
    private static void FlushLaneSums(float[] sums, double[] acc, int length)
    {
        int lanes = Vector<float>.Count, h = Vector<double>.Count;
        for (int i = 0; i < length; i += lanes)
        {
            Vector.Widen(new Vector<float>(sums, i), out var lo, out var hi);
            (new Vector<double>(acc, i) + lo).CopyTo(acc, i);
            (new Vector<double>(acc, i + h) + hi).CopyTo(acc, i + h);
        }
        Array.Clear(sums, 0, length);
    }
}
