// LayerNorm backwards with pixels in the SIMD lanes (the counterpart of the forwards in CpuBackend.Norm.LayoutPlanes.cs),
// on maps of at least one vector of pixels: the fused NCHW -> NHWC one (IBackend.NormLayout.cs: dy NHWC) and the
// channels-first one (dy NCHW); dx is NCHW in both. A chunk of W pixels (W = Vector<float>.Count) of one image is one
// vector per channel plane of x (unit stride). For the fused backward the chunk's W rows of dy (W * C contiguous floats)
// are transposed once into a C x W buffer through the row path's 8 x 8 transposes, so the permute costs no pass of its
// own and dx goes straight into its NCHW planes.
// Where it pays (UseBackwardPixelLanes): the fused backward on maps of 8 x 8 and more, the channels-first one on maps
// of 4 x 4 and 8 x 8.
// Per chunk, pass 1 runs over the channels in order: xhat = (x - mean) * rstd, gw = g * w (float), and each pixel's two
// sums, of gw and gw * xhat, are vertical float64 adds kept in registers (the row path's horizontal sums per row cost
// more than the arithmetic on rows of 31 or 62 channels). The parameter gradients' sums cannot stay in registers (one
// vector per channel): an earlier try that added them in float64 to per-channel arrays each chunk measured no faster
// than the row path. Here each channel's W lanes add g * xhat and g in float into an L1-resident C x W array for at
// most FlushChunks chunks (a float sum of at most 16 terms), which are then added in float64 into a C x W float64 array,
// and the lanes are summed in float64 at the end. Pass 2 writes dx = (gw - mean(gw) - xhat * mean(gw * xhat)) * rstd in
// float, the means rounded to float from float64 as the row path does.
// Determinism: the batch is cut into fixed parts of LnLanesImagesPerPart images whatever the thread count, every sum
// runs in a fixed order within its part, and the parts are added in order, so the bits depend only on the inputs (not
// on the thread count). A map whose pixel count is not a multiple of W ends with a chunk that overlaps the one before:
// its overlapped lanes get the same dx again and are masked out of the parameter gradients.
// SLAK_LAYERNORM_BWD_LANES=0 (or LayerNormBackwardPixelLanes = false) runs the row and plane paths instead.
using System.Buffers;
using System.Numerics;

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
    /// 1 KiB apart. Internal so that the tests can run the kernel on every map.</summary>
    internal static int LayerNormBackwardLanesChannelsFirstBelow { get; set; } = 128;

    private static bool UseBackwardPixelLanes(int hw, bool nhwc) =>
        LayerNormBackwardPixelLanes && hw >= Vector<float>.Count
        && (nhwc ? hw >= LayerNormBackwardLanesFusedFrom : hw < LayerNormBackwardLanesChannelsFirstBelow);

    /// <summary>Both backwards: dy NHWC (<paramref name="nhwc"/>, the fused permute) or NCHW; x and dx NCHW; mean and
    /// rstd per pixel in (image, position) order; dweight and dbias overwritten.</summary>
    private static void LayerNormBackwardLanes(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
        Tensor dx, Tensor dweight, Tensor dbias, bool nhwc)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3), lanes = Vector<float>.Count;
        int parts = (n + LnLanesImagesPerPart - 1) / LnLanesImagesPerPart;
        var partial = new double[parts][];
        try
        {
            CpuParallel.For(0, parts, x.Numel, part =>
            {
                // acc: [0, c * lanes) the lanes of dweight, [c * lanes, 2 c * lanes) those of dbias, float64.
                var acc = ArrayPool<double>.Shared.Rent(2 * c * lanes);
                var sums = ArrayPool<float>.Shared.Rent(2 * c * lanes);
                var gbuf = nhwc ? ArrayPool<float>.Shared.Rent(c * lanes) : null;
                try
                {
                    Array.Clear(acc, 0, 2 * c * lanes);
                    Array.Clear(sums, 0, 2 * c * lanes);
                    int pending = 0;
                    for (int img = part * LnLanesImagesPerPart, end = Math.Min(n, img + LnLanesImagesPerPart); img < end; img++)
                    {
                        var xs = S(x).Slice(img * c * hw, c * hw);
                        var dxs = S(dx).Slice(img * c * hw, c * hw);
                        var mu = S(mean).Slice(img * hw, hw);
                        var rs = S(rstd).Slice(img * hw, hw);
                        for (int p0 = 0; p0 < hw; p0 += lanes)
                        {
                            int p = Math.Min(p0, hw - lanes); // the last chunk overlaps the one before
                            ReadOnlySpan<float> g;
                            int gStride = hw, gOffset = p;
                            if (gbuf is not null)
                            {
                                // The chunk's W NHWC rows of dy into W-long channel rows (the 8 x 8 transposes).
                                ScatterPixelRows(S(dy).Slice((img * hw + p) * c, lanes * c), c, lanes, 0, lanes, gbuf);
                                g = gbuf.AsSpan(0, c * lanes);
                                (gStride, gOffset) = (lanes, 0);
                            }
                            else
                                g = S(dy).Slice(img * c * hw, c * hw);
                            LnLanesChunk(xs, g, gStride, gOffset, hw, p, p0 - p, c, new Vector<float>(mu.Slice(p, lanes)),
                                new Vector<float>(rs.Slice(p, lanes)), S(weight), sums, dxs);
                            if (++pending == FlushChunks)
                            {
                                FlushLaneSums(sums, acc, 2 * c * lanes);
                                pending = 0;
                            }
                        }
                    }
                    if (pending > 0) FlushLaneSums(sums, acc, 2 * c * lanes);
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
                    for (int k = 0; k < lanes; k++)
                    {
                        sw += a[ch * lanes + k];
                        sb += a[(c + ch) * lanes + k];
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
