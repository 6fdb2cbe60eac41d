// Patchify convolutions (kernel == stride, no padding: SLaK's 4x4/4 stem and 2x2/2 downsampling layers) as ONE GEMM
// over the whole batch instead of one per image. Per image the GEMM is (Cout x OutH*OutW x Cin*Kh*Kw), and on
// SLaK's small maps OutH*OutW is 64 down to 1: a matrix-vector product per image that re-packs the weight every
// time. Batched, the patches of all images form a (N*P, Cin*Kh*Kw) matrix (space-to-depth, no duplication since
// windows neither overlap nor leave the image), so forward, data gradient and weight gradient are each one
// well-shaped GEMM; the only extra work is a per-image (Cout, P) <-> (P, Cout) transpose, skipped when P == 1.
// Since issue 27 the direct path (CpuConv2d.Direct.cs) is the default; this one stays for machines without AVX-512
// and for side-by-side benchmarks (SLAK_CONV2D_PATCHIFY=batched).
using System.Buffers;

namespace Slak.Backends.Cpu;

internal static partial class CpuConv2d
{
    /// <summary>Patchify forward on the batched-GEMM path (see <see cref="DirectPatchify"/>).</summary>
    internal static void PatchifyForward(Conv2dShape s, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        ReadOnlySpan<float> bias, Span<float> y)
    {
        int p = s.OutH * s.OutW, ckk = s.Cin * s.Kh * s.Kw, rows = s.N * p;
        var cols = ArrayPool<float>.Shared.Rent(rows * ckk);
        var tmp = p == 1 ? null : ArrayPool<float>.Shared.Rent(rows * s.Cout);
        try
        {
            SpaceToDepth(s, x, cols);
            // (N*P, Cout) = patches (N*P, CKK) x W^T; with P == 1 that is already y (N, Cout).
            Span<float> prod = tmp is null ? y : tmp.AsSpan(0, rows * s.Cout);
            CpuGemm.Sgemm(false, true, rows, s.Cout, ckk, 1f, cols.AsSpan(0, rows * ckk), ckk, w, ckk, 0f, prod, s.Cout);
            if (tmp is null)
            {
                if (bias.Length != 0)
                    for (int n = 0; n < s.N; n++)
                    {
                        var yr = y.Slice(n * s.Cout, s.Cout);
                        System.Numerics.Tensors.TensorPrimitives.Add(yr, bias, yr);
                    }
                return;
            }
            TransposeImages(s.N, p, s.Cout, tmp, y, bias);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(cols);
            if (tmp is not null) ArrayPool<float>.Shared.Return(tmp);
        }
    }

    /// <summary>Patchify input gradient on the batched-GEMM path.</summary>
    internal static void PatchifyBackwardData(Conv2dShape s, ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx)
    {
        int p = s.OutH * s.OutW, ckk = s.Cin * s.Kh * s.Kw, rows = s.N * p;
        var dcols = ArrayPool<float>.Shared.Rent(rows * ckk);
        var dyT = p == 1 ? null : ArrayPool<float>.Shared.Rent(rows * s.Cout);
        try
        {
            ReadOnlySpan<float> g = dy;
            if (dyT is not null)
            {
                TransposeImages(s.N, s.Cout, p, dy, dyT, default);
                g = dyT.AsSpan(0, rows * s.Cout);
            }
            // d patches (N*P, CKK) = dY (N*P, Cout) x W (Cout, CKK).
            CpuGemm.Sgemm(false, false, rows, ckk, s.Cout, 1f, g, s.Cout, w, ckk, 0f, dcols.AsSpan(0, rows * ckk), ckk);
            DepthToSpace(s, dcols, dx);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(dcols);
            if (dyT is not null) ArrayPool<float>.Shared.Return(dyT);
        }
    }

    /// <summary>Patchify weight and bias gradients on the batched-GEMM path.</summary>
    internal static void PatchifyBackwardFilter(Conv2dShape s, ReadOnlySpan<float> x, ReadOnlySpan<float> dy,
        Span<float> dw, Span<float> dbias)
    {
        int p = s.OutH * s.OutW, ckk = s.Cin * s.Kh * s.Kw, rows = s.N * p;
        var cols = ArrayPool<float>.Shared.Rent(rows * ckk);
        var dyT = p == 1 ? null : ArrayPool<float>.Shared.Rent(rows * s.Cout);
        try
        {
            SpaceToDepth(s, x, cols);
            ReadOnlySpan<float> g = dy;
            if (dyT is not null)
            {
                TransposeImages(s.N, s.Cout, p, dy, dyT, default);
                g = dyT.AsSpan(0, rows * s.Cout);
            }
            // dW (Cout, CKK) = dY^T (Cout, N*P) x patches (N*P, CKK).
            CpuGemm.Sgemm(true, false, s.Cout, ckk, rows, 1f, g, s.Cout, cols.AsSpan(0, rows * ckk), ckk, 0f, dw, ckk);
            if (dbias.Length == 0) return;
            var sums = new double[s.Cout];
            for (int r = 0; r < rows; r++)
            {
                var gr = g.Slice(r * s.Cout, s.Cout);
                for (int co = 0; co < s.Cout; co++) sums[co] += gr[co];
            }
            for (int co = 0; co < s.Cout; co++) dbias[co] = (float)sums[co];
        }
        finally
        {
            ArrayPool<float>.Shared.Return(cols);
            if (dyT is not null) ArrayPool<float>.Shared.Return(dyT);
        }
    }

    /// <summary>patches[(n*P + oy*OutW + ox), (ci*Kh + kh)*Kw + kw] = x[n, ci, oy*Kh + kh, ox*Kw + kw].</summary>
    private static unsafe void SpaceToDepth(Conv2dShape s, ReadOnlySpan<float> x, float[] cols)
    {
        fixed (float* px = x)
        fixed (float* pc = cols)
            MovePatches(s, px, pc, toPatches: true);
    }

    /// <summary>The inverse scatter of <see cref="SpaceToDepth"/>: every dx entry under a window gets its patch
    /// entry; rows/columns past the last whole window (not read by the forward) get 0.</summary>
    private static unsafe void DepthToSpace(Conv2dShape s, float[] dcols, Span<float> dx)
    {
        fixed (float* px = dx)
        fixed (float* pc = dcols)
            MovePatches(s, px, pc, toPatches: false);
    }

    /// <summary>Copies every window between the image tensor and the patch matrix, image -> patches
    /// (<paramref name="toPatches"/>) or patches -> image (the image's rows/columns past the last whole window are
    /// zeroed first).</summary>
    private static unsafe void MovePatches(Conv2dShape s, float* image, float* patches, bool toPatches)
    {
        int p = s.OutH * s.OutW, ckk = s.Cin * s.Kh * s.Kw;
        bool leftover = !toPatches && (s.OutH * s.Kh != s.H || s.OutW * s.Kw != s.W);
        nint xp = (nint)image, cp = (nint)patches;
        var sh = s;
        CpuParallel.For(0, ImageBlocks(s.N, (long)s.N * p * ckk), blk =>
        {
            var (n0, n1) = BlockRange(blk, sh.N, (long)sh.N * p * ckk);
            for (int n = n0; n < n1; n++)
            {
                if (leftover) new Span<float>((float*)xp + (long)n * sh.Cin * sh.H * sh.W, sh.Cin * sh.H * sh.W).Clear();
                for (int oy = 0; oy < sh.OutH; oy++)
                    for (int ox = 0; ox < sh.OutW; ox++)
                    {
                        float* patch = (float*)cp + ((long)(n * p + oy * sh.OutW + ox)) * ckk;
                        for (int ci = 0; ci < sh.Cin; ci++)
                            for (int kh = 0; kh < sh.Kh; kh++)
                            {
                                float* im = (float*)xp + (((long)n * sh.Cin + ci) * sh.H + oy * sh.Kh + kh) * sh.W + ox * sh.Kw;
                                float* pa = patch + (ci * sh.Kh + kh) * sh.Kw;
                                float* from = toPatches ? im : pa, to = toPatches ? pa : im;
                                for (int kw = 0; kw < sh.Kw; kw++) to[kw] = from[kw];
                            }
                    }
            }
        });
    }

    /// <summary>For each of <paramref name="n"/> images: dst (cols, rows) = src (rows, cols)^T, plus bias[j] on dst
    /// row j when <paramref name="bias"/> (<paramref name="cols"/> entries) is not empty.</summary>
    private static unsafe void TransposeImages(int n, int rows, int cols, ReadOnlySpan<float> src, Span<float> dst,
        ReadOnlySpan<float> bias)
    {
        long per = (long)rows * cols;
        fixed (float* ps = src)
        fixed (float* pd = dst)
        fixed (float* pb = bias)
        {
            nint sp = (nint)ps, dp = (nint)pd, bp = (nint)pb;
            bool hasBias = bias.Length != 0;
            CpuParallel.For(0, ImageBlocks(n, n * per), blk =>
            {
                var (n0, n1) = BlockRange(blk, n, n * per);
                for (int img = n0; img < n1; img++)
                {
                    float* s = (float*)sp + img * per;
                    float* d = (float*)dp + img * per;
                    for (int j = 0; j < cols; j++)
                    {
                        float b = hasBias ? ((float*)bp)[j] : 0f;
                        float* dr = d + (long)j * rows;
                        for (int i = 0; i < rows; i++) dr[i] = s[(long)i * cols + j] + b;
                    }
                }
            });
        }
    }

    // Blocks of whole images for the rearrangement passes: one block below ~64K elements (a fork/join costs more),
    // else up to 4 per thread.
    private static int ImageBlocks(int n, long elements) =>
        elements < (1 << 16) ? 1 : Math.Max(1, Math.Min(n, 4 * CpuParallel.Threads));

    private static (int Start, int End) BlockRange(int block, int n, long elements)
    {
        int blocks = ImageBlocks(n, elements);
        int per = (n + blocks - 1) / blocks;
        return (Math.Min(n, block * per), Math.Min(n, (block + 1) * per));
    }
}
