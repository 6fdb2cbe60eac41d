// Next-image prefetch for the layout-changing memory operators (the LayerNorms with pixels in the SIMD lanes, fused
// with the NCHW -> NHWC permute or channels-first, and the fused residual). They walk one image at a time in chunks
// of a few pixels, and a chunk touches one line of every channel plane: 2 to 3 x C lines 1 KiB apart on a 16 x 16 map
// (93 for C = 31), more streams than the hardware prefetchers follow, so a tensor that is not in cache arrives at
// DRAM latency, line by line (~5-10 GB/s measured, against ~60 GB/s of DRAM bandwidth). An image is one contiguous
// block of C x H x W floats in every tensor, NCHW or NHWC alike; so while a thread works on image i, each chunk asks
// for its share of image i + 1's block of every tensor, in address order: by the time the thread reaches image i + 1
// its lines are in cache, fetched as sequential streams. A prefetch never faults and changes no value: the results
// are the same bits with or without it. SLAK_LAYOUT_IMAGE_PREFETCH=0 turns it off.
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether the layout LayerNorms and the fused residual prefetch the next image's block of every tensor
    /// while they work on an image (the default; SLAK_LAYOUT_IMAGE_PREFETCH=0 turns it off). Internal so that the
    /// bench and the tests can compare both.</summary>
    internal static bool LayoutImagePrefetch { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_LAYOUT_IMAGE_PREFETCH") != "0";

    /// <summary>Maps (H*W) from which the next-image prefetch applies: smaller images are too few lines per tensor
    /// (a 4 x 4 map of 124 channels is 8 KiB) for the streams to matter.</summary>
    internal static int LayoutImagePrefetchFrom { get; set; } = 64;

    private static bool UseImagePrefetch(int hw) => LayoutImagePrefetch && hw >= LayoutImagePrefetchFrom && Sse.IsSupported;

    /// <summary>Whether the fused residual (forward and backward) prefetches the next image's block of its tensors too,
    /// on maps of at least <see cref="ResidualImagePrefetchFrom"/> pixels (the default; SLAK_RESIDUAL_IMAGE_PREFETCH=0
    /// turns it off). It already asks for the next run's line of every plane; measured with layout-norm-step (batch 128,
    /// 2 threads, a loaded machine), the next-image prefetch on top gave, at (128, 31, 16, 16), a median 0.78x of six
    /// warm runs and 0.50x cold (forward), 1.02x warm and 0.67x cold (backward), but 1.07-1.23x warm on 8 x 8 maps.
    /// Internal so that the bench and the tests can compare both.</summary>
    internal static bool ResidualImagePrefetch { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_RESIDUAL_IMAGE_PREFETCH") != "0";

    /// <summary>Maps (H*W) from which <see cref="ResidualImagePrefetch"/> applies.</summary>
    internal static int ResidualImagePrefetchFrom { get; set; } = 256;

    private static bool UseResidualImagePrefetch(int hw) =>
        ResidualImagePrefetch && hw >= ResidualImagePrefetchFrom && UseImagePrefetch(hw);

    /// <summary>Bytes per cache line.</summary>
    private const int PrefetchLine = 64;

    /// <summary>Asks for the lines of [<paramref name="from"/>, <paramref name="to"/>) bytes (whole lines: the first
    /// that begins at or after from, up to to) of the block that starts at <paramref name="block"/>.</summary>
    private static unsafe void PrefetchBytes(float* block, long from, long to)
    {
        byte* b = (byte*)block;
        long first = (from + PrefetchLine - 1) / PrefetchLine * PrefetchLine;
        for (long o = first; o < to; o += PrefetchLine) Sse.Prefetch0(b + o);
    }

    /// <summary><see cref="PrefetchNextImage(bool, long, int, int, int, float*, float*, float*, long)"/> for batch
    /// tensors of one element count (dimension 0 the image): share [<paramref name="from"/>, <paramref name="to"/>) of
    /// <paramref name="parts"/> of image <paramref name="image"/> + 1's block of each non-null tensor.</summary>
    private static unsafe void PrefetchNextImage(Tensor a, Tensor? b, Tensor? c, int image, int from, int to, int parts)
    {
        int n = a.Size(0);
        fixed (float* pa = S(a), pb = b is null ? default : S(b), pc = c is null ? default : S(c))
            PrefetchNextImage(image + 1 < n, a.Numel / n, from, to, parts, pa, pb, pc, image);
    }

    /// <summary>Asks for the share [<paramref name="from"/>, <paramref name="to"/>) of <paramref name="parts"/> of the
    /// next image's block (the <paramref name="imageFloats"/> floats after <paramref name="image"/>'s) in each non-null
    /// tensor: over shares that tile [0, parts), every line of the next image's blocks once, in address order.
    /// <paramref name="next"/> false (the last image of the batch): nothing.</summary>
    private static unsafe void PrefetchNextImage(bool next, long imageFloats, int from, int to, int parts, float* a,
        float* b, float* c, long image)
    {
        if (!next) return;
        long bytes = imageFloats * sizeof(float);
        long lo = bytes * from / parts, hi = bytes * to / parts;
        long start = (image + 1) * imageFloats;
        if (a != null) PrefetchBytes(a + start, lo, hi);
        if (b != null) PrefetchBytes(b + start, lo, hi);
        if (c != null) PrefetchBytes(c + start, lo, hi);
    }
}
