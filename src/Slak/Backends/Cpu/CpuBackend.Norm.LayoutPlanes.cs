// LayerNorm fused with the NCHW -> NHWC permute (IBackend.NormLayout.cs), forward, on maps of at least one vector of
// pixels (slak_nano's stages 1-2, slak_nano64's stages 1-3): the SIMD lanes are pixels instead of channels. The row
// path (CpuBackend.Norm.Layout.cs) gathers each pixel's channel row and reduces it across the lanes of a vector, two
// horizontal sums per row, which on rows of 31 or 62 channels cost more than the arithmetic. Here a chunk of W pixels
// (W = Vector<float>.Count) of one image is one vector per channel plane (unit stride in NCHW): the statistics are
// vertical adds across the channel planes, and only the normalised chunk goes through the row path's 8 x 8
// transposes into its NHWC rows. Images run in parallel. The arithmetic is the row path's: statistics in float64
// (the sum, then the centred squares, over the channels; only their order differs: by channel, not lane-wise
// partials), y = (x - mean) * rstd * w + b in float. The backward stays on the row path: with its float64
// parameter-gradient sums, a pixel-lane backward measured no faster (norm-step, 2026-12-05).
using System.Buffers;
using System.Numerics;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether the fused LayerNorm + permute runs with pixels in the SIMD lanes on maps of at least one vector
    /// of pixels (the default) instead of the row path. Internal so that the bench and the tests can compare both.</summary>
    internal static bool LayerNormLayoutPixelLanes { get; set; } = true;

    private static bool UsePixelLanes(int hw) => LayerNormLayoutPixelLanes && hw >= Vector<float>.Count;

    /// <summary>Forward: per image, chunk by chunk of W pixels, the statistics across the channel planes, the
    /// normalised chunk into a C x W buffer, transposed into the chunk's NHWC rows.</summary>
    private static void LayerNormNchwToNhwcPixelLanes(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y,
        Tensor mean, Tensor rstd)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3);
        CpuParallel.For(0, n, x.Numel, img =>
        {
            int lanes = Vector<float>.Count;
            var chunk = ArrayPool<float>.Shared.Rent(c * lanes);
            try
            {
                var xs = S(x).Slice(img * c * hw, c * hw);
                var ys = S(y).Slice(img * hw * c, hw * c);
                var w = S(weight); var b = S(bias);
                var mu = S(mean).Slice(img * hw, hw);
                var rs = S(rstd).Slice(img * hw, hw);
                for (int p0 = 0; p0 < hw; p0 += lanes)
                {
                    int p = Math.Min(p0, hw - lanes); // the last chunk overlaps the one before: same values again
                    var (m, r) = PlaneStatistics(xs, c, hw, p, eps);
                    m.CopyTo(mu.Slice(p, lanes));
                    r.CopyTo(rs.Slice(p, lanes));
                    for (int ch = 0; ch < c; ch++)
                    {
                        var v = (new Vector<float>(xs.Slice(ch * hw + p, lanes)) - m) * r;
                        (v * new Vector<float>(w[ch]) + new Vector<float>(b[ch])).CopyTo(chunk.AsSpan(ch * lanes, lanes));
                    }
                    GatherPixelRows(chunk, c, lanes, 0, lanes, ys.Slice(p * c, lanes * c));
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(chunk);
            }
        });
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
