// The LayerNorm forwards with pixels in the SIMD lanes on maps smaller than one vector (slak_nano's stage 3 and
// slak_nano64's stage 4 run on 2 x 2 maps: 4 pixels per image, half a vector). The pixel-lane forward of
// CpuBackend.Norm.LayoutPlanes.cs needs a whole vector of pixels per channel plane; here a group of consecutive images
// (W / (H*W) of them: two on a 2 x 2 map) fills one: each image's C x H*W block is interleaved into a C x W buffer (row
// ch = the group's pixels of channel ch, image by image), and the one-vector statistics and normalisation run on that
// buffer as if it were one image of W pixels. The fused permute needs no interleave on the NHWC side: a group's NHWC
// rows are consecutive (pixel q = img * H*W + p), so the normalised chunk is transposed straight into them; the
// channels-first y goes back image by image. The row path (CpuBackend.Norm.Layout.cs) reduced each pixel's row across
// the lanes of a vector, two horizontal sums per row.
// Every lane runs the pixel-lane forward's operations in its order, so a pixel's mean, rstd and y are those of the
// pixel-lane kernels bit for bit; against the row path a float may differ in its last bit (the channels-first plane
// path sums as the lanes do: the same bits). The last group of a batch that is not a multiple of the group repeats its
// last image (its lanes are computed again and not written); every value depends only on its own pixel, so the bits
// do not depend on the thread count.
// The backwards stay on their paths: the same grouping around the pixel-lane backward's chunk measured 1.4-2.5x the row
// path's time on these maps (bench/results/layout-norm-groups-cf16.md).
// SLAK_LAYERNORM_IMAGE_GROUPS=0 (or LayerNormImageGroups = false) runs the row and plane paths instead.
using System.Buffers;
using System.Numerics;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether the LayerNorm forwards (fused with the permute, and channels-first) run 2 x 2 maps with pixels
    /// in the SIMD lanes, a group of images per vector (the default; SLAK_LAYERNORM_IMAGE_GROUPS=0 turns it
    /// off). Internal so that the bench and the tests can compare both.</summary>
    internal static bool LayerNormImageGroups { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_LAYERNORM_IMAGE_GROUPS") != "0";

    /// <summary>Whether the image groups also take the other maps whose pixel count divides the vector width (1 x 1,
    /// 1 x 2; not the default: the presets have none but 1 x 1, whose rows are contiguous for the row path). Internal
    /// so that the tests can run the kernels on them.</summary>
    internal static bool LayerNormImageGroupsAnyMap { get; set; }

    private static bool UseImageGroups(int hw)
    {
        int lanes = Vector<float>.Count;
        return LayerNormImageGroups && Vector<float>.Count == Vector256<float>.Count && hw < lanes && lanes % hw == 0
               && (hw == 4 || LayerNormImageGroupsAnyMap);
    }

    /// <summary>Both forwards on maps of <see cref="UseImageGroups"/>: per group of images, the statistics and the
    /// normalised chunk of the pixel-lane forward on the interleaved C x W buffer, then the chunk transposed into the
    /// group's NHWC rows (<paramref name="nhwc"/>) or written back into each image's planes (channels-first).</summary>
    private static void LayerNormForwardImageGroups(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y,
        Tensor mean, Tensor rstd, bool nhwc)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3);
        int lanes = Vector<float>.Count, k = lanes / hw;
        CpuParallel.For(0, (n + k - 1) / k, x.Numel, grp =>
        {
            var buffer = ArrayPool<float>.Shared.Rent(2 * c * lanes);
            try
            {
                int first = grp * k, valid = Math.Min(k, n - first), pixels = valid * hw;
                var xb = buffer.AsSpan(0, c * lanes);
                var yb = buffer.AsSpan(c * lanes, c * lanes);
                GroupInterleave(S(x), c, hw, first, valid, k, xb);
                var (m, r) = PlaneStatistics(xb, c, lanes, 0, eps);
                Span<float> lane = stackalloc float[lanes];
                // mean and rstd are in (image, position) order: the group's valid pixels are consecutive.
                m.CopyTo(lane);
                lane[..pixels].CopyTo(S(mean).Slice(first * hw, pixels));
                r.CopyTo(lane);
                lane[..pixels].CopyTo(S(rstd).Slice(first * hw, pixels));
                NormalizeChunk(xb, c, lanes, 0, m, r, S(weight), S(bias), yb, lanes, 0);
                if (nhwc) GatherPixelRows(yb, c, lanes, 0, pixels, S(y).Slice(first * hw * c, pixels * c));
                else GroupDeinterleave(yb, c, hw, first, valid, S(y));
            }
            finally
            {
                ArrayPool<float>.Shared.Return(buffer);
            }
        });
    }

    /// <summary>dst[ch * k hw + s hw + j] = src[img_s, ch, j] for the group's k slots s (img_s = first + s, the last
    /// valid image repeated in the slots past <paramref name="valid"/>), every channel ch and position j.</summary>
    private static unsafe void GroupInterleave(ReadOnlySpan<float> src, int c, int hw, int first, int valid, int k,
        Span<float> dst)
    {
        int row = k * hw;
        fixed (float* ps = src, pd = dst) // bounds: images [first, first + valid) of src, c * row floats of dst
        {
            if ((long)(first + valid) * c * hw > src.Length || (long)c * row > dst.Length)
                throw new ArgumentOutOfRangeException(nameof(src), "the group lies outside the tensor or the buffer");
            for (int s = 0; s < k; s++)
            {
                float* from = ps + (long)(first + Math.Min(s, valid - 1)) * c * hw, to = pd + s * hw;
                if (hw == 4)
                    for (int ch = 0; ch < c; ch++) Vector128.Store(Vector128.Load(from + ch * 4), to + (long)ch * row);
                else
                    for (int ch = 0; ch < c; ch++)
                        for (int j = 0; j < hw; j++) to[(long)ch * row + j] = from[ch * hw + j];
            }
        }
    }

    /// <summary>The inverse of <see cref="GroupInterleave"/> for the group's first <paramref name="valid"/> images:
    /// dst[img_s, ch, j] = src[ch * k hw + s hw + j].</summary>
    private static unsafe void GroupDeinterleave(ReadOnlySpan<float> src, int c, int hw, int first, int valid,
        Span<float> dst)
    {
        int row = Vector<float>.Count;
        fixed (float* ps = src, pd = dst) // bounds: checked below
        {
            if ((long)(first + valid) * c * hw > dst.Length || (long)c * row > src.Length)
                throw new ArgumentOutOfRangeException(nameof(dst), "the group lies outside the tensor or the buffer");
            for (int s = 0; s < valid; s++)
            {
                float* from = ps + s * hw, to = pd + (long)(first + s) * c * hw;
                if (hw == 4)
                    for (int ch = 0; ch < c; ch++) Vector128.Store(Vector128.Load(from + (long)ch * row), to + ch * 4);
                else
                    for (int ch = 0; ch < c; ch++)
                        for (int j = 0; j < hw; j++) to[ch * hw + j] = from[(long)ch * row + j];
            }
        }
    }
}
