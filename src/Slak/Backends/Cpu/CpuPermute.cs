// Dimension permutation (NCHW <-> NHWC and friends) as an explicit copy, for any rank. The output is walked in
// order, in blocks of rows spread over threads; each block decodes its first row index into an odometer over the
// permuted input strides, and the inner loop runs along the last output dimension.
namespace Slak.Backends.Cpu;

/// <summary>Permutation copy kernel.</summary>
public static class CpuPermute
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
}
