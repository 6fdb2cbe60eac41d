// Dimension permutation (NCHW <-> NHWC and friends) as an explicit copy, for any rank. The output is walked in
// order, in blocks of rows spread over threads; each block decodes its first row index into an odometer over the
// permuted input strides, and the inner loop runs along the last output dimension. NCHW <-> NHWC (every SLaK block
// does both, forward and backward) is a per-image 2-D transpose and takes a cache-blocked transpose instead.
namespace Slak.Backends.Cpu;

/// <summary>Permutation copy kernel.</summary>
internal static class CpuPermute
{
    /// <summary>y = permute(x, perm), y.shape[i] = xShape[perm[i]].</summary>
    public static void Run(Span<float> x, ReadOnlySpan<int> xShape, ReadOnlySpan<int> perm, Span<float> y)
    {
        int rank = xShape.Length;
        if (rank == 0) { y[0] = x[0]; return; }
        var xStrides = new long[rank];
        long total = 1;
        for (int d = rank - 1; d >= 0; d--) { xStrides[d] = total; total *= xShape[d]; }
        var outShape = new int[rank];
        var inStride = new long[rank];
        for (int i = 0; i < rank; i++) { outShape[i] = xShape[perm[i]]; inStride[i] = xStrides[perm[i]]; }
        int inner = outShape[rank - 1];
        if (total == 0) return;
        if (rank == 4 && perm[0] == 0 && TryBatchedTranspose(x, xShape, perm, y)) return;
        long outer = total / inner;
        int blocks = (int)Math.Min(outer, 8L * CpuParallel.Threads);
        long perBlock = (outer + blocks - 1) / blocks;
        unsafe
        {
            fixed (float* xp0 = x, yp0 = y)
            {
                nint xp = (nint)xp0, yp = (nint)yp0;
                CpuParallel.For(0, blocks, b =>
                {
                    long r0 = b * perBlock, r1 = Math.Min(outer, r0 + perBlock);
                    if (r0 >= r1) return;
                    var idx = new int[rank];
                    long rem = r0;
                    for (int d = rank - 2; d >= 0; d--) { idx[d] = (int)(rem % outShape[d]); rem /= outShape[d]; }
                    float* xs = (float*)xp, ys = (float*)yp;
                    long innerStride = inStride[rank - 1];
                    for (long row = r0; row < r1; row++)
                    {
                        long src = 0;
                        for (int d = 0; d < rank - 1; d++) src += idx[d] * inStride[d];
                        float* dst = ys + row * inner;
                        for (int j = 0; j < inner; j++) dst[j] = xs[src + j * innerStride];
                        for (int d = rank - 2; d >= 0; d--)
                        {
                            if (++idx[d] < outShape[d]) break;
                            idx[d] = 0;
                        }
                    }
                });
            }
        }
    }

    /// <summary>Elements below which a batched transpose runs on the calling thread.</summary>
    internal static int SerialBelow { get; set; } = 1 << 16;

    // (0,2,3,1): per image (C, H*W) -> (H*W, C); (0,3,1,2): per image (H*W, C) -> (C, H*W).
    private static bool TryBatchedTranspose(Span<float> x, ReadOnlySpan<int> xShape, ReadOnlySpan<int> perm, Span<float> y)
    {
        int rows, cols;
        if (perm[1] == 2 && perm[2] == 3 && perm[3] == 1) { rows = xShape[1]; cols = xShape[2] * xShape[3]; }
        else if (perm[1] == 3 && perm[2] == 1 && perm[3] == 2) { rows = xShape[1] * xShape[2]; cols = xShape[3]; }
        else return false;
        int n = xShape[0];
        long per = (long)rows * cols;
        int blocks = n * per < SerialBelow ? 1 : Math.Min(n, 4 * CpuParallel.Threads);
        int imagesPerBlock = (n + blocks - 1) / blocks;
        unsafe
        {
            fixed (float* xp0 = x, yp0 = y)
            {
                nint xp = (nint)xp0, yp = (nint)yp0;
                CpuParallel.For(0, blocks, b =>
                {
                    for (int img = b * imagesPerBlock, end = Math.Min(n, img + imagesPerBlock); img < end; img++)
                        Transpose((float*)xp + img * per, (float*)yp + img * per, rows, cols);
                });
            }
        }
        return true;
    }

    /// <summary>dst (cols x rows) = src (rows x cols)^T in 8x8 tiles, so both sides touch whole cache lines.</summary>
    private static unsafe void Transpose(float* src, float* dst, int rows, int cols)
    {
        const int tile = 8;
        for (int i0 = 0; i0 < rows; i0 += tile)
        {
            int i1 = Math.Min(rows, i0 + tile);
            for (int j0 = 0; j0 < cols; j0 += tile)
            {
                int j1 = Math.Min(cols, j0 + tile);
                for (int j = j0; j < j1; j++)
                {
                    float* d = dst + (long)j * rows;
                    for (int i = i0; i < i1; i++) d[i] = src[(long)i * cols + j];
                }
            }
        }
    }
}
