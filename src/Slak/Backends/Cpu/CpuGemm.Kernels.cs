// Micro-kernels of CpuGemm: each multiplies one MR-row strip of A (kc x MR, k-major: packed, or read in place from a
// transposed A with a row stride) by one packed NR-column
// sliver of B (kc x NR, k-major) into an MR x NR register tile, then writes C = alpha*tile + beta*C. The register
// tile is sized so the accumulators fill the vector register file without spilling: 8x32 = 16 zmm on AVX-512,
// 6x16 = 12 ymm on AVX2 (plus two B vectors and one broadcast A value).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

/// <summary>Which GEMM micro-kernel to run (Auto = the widest this CPU supports).</summary>
internal enum GemmKernel
{
    Auto,
    Avx512,
    Avx2,
    Scalar,
}

internal static unsafe partial class CpuGemm
{
    /// <summary>Register-tile shape, cache-blocking sizes and entry point of one micro-kernel.</summary>
    internal sealed class KernelInfo(
        string name, int mr, int nr, int mc, int kc, int nc,
        delegate*<int, float*, int, float*, float*, int, float, float, int, int, void> run,
        delegate*<int, float*, int, float*, float*, int, float, float, int, int, void> runRowA = null)
    {
        /// <summary>True when the kernel can read a full strip of a row-major A in place
        /// (<see cref="RunRowA"/>).</summary>
        public bool HasRowA => runRowA != null;

        /// <summary>A full Mr-row strip read in place from a row-major A (row stride lda): step p of row r is
        /// pa[r * lda + p]. Only where <see cref="HasRowA"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void RunRowA(int kc, float* pa, int lda, float* pb, float* c, int ldc, float alpha, float beta, int cols)
            => runRowA(kc, pa, lda, pb, c, ldc, alpha, beta, Mr, cols);

        public string Name { get; } = name;
        public int Mr { get; } = mr;
        public int Nr { get; } = nr;
        public int Mc { get; } = mc;
        public int Kc { get; } = kc;
        public int Nc { get; } = nc;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Run(int kc, float* pa, float* pb, float* c, int ldc, float alpha, float beta, int rows, int cols)
            => run(kc, pa, Mr, pb, c, ldc, alpha, beta, rows, cols);

        /// <summary>The same with A read in place: step p of the strip is the Mr floats at pa + p * aStride (a
        /// transposed A stored (k, m) with row stride aStride, so no packed copy is needed).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void RunStrided(int kc, float* pa, int aStride, float* pb, float* c, int ldc, float alpha, float beta,
            int rows, int cols)
            => run(kc, pa, aStride, pb, c, ldc, alpha, beta, rows, cols);
    }

    // Kc x Nr floats of B (32 KiB at 256 x 32) stay in L1 while the Mc x Kc block of A (192 KiB) streams from L2.
    private static readonly KernelInfo Avx512Kernel = new("avx512-8x32", 8, 32, 192, 256, 4096, &KernelAvx512,
        &KernelAvx512RowA);
    private static readonly KernelInfo Avx2Kernel = new("avx2-6x16", 6, 16, 144, 256, 4096, &KernelAvx2);
    private static readonly KernelInfo ScalarKernel = new("scalar-4x8", 4, 8, 128, 256, 4096, &KernelScalar);

    /// <summary>True when this CPU can run <paramref name="kernel"/>.</summary>
    internal static bool IsSupported(GemmKernel kernel) => kernel switch
    {
        GemmKernel.Auto or GemmKernel.Scalar => true,
        GemmKernel.Avx512 => Avx512F.IsSupported,
        GemmKernel.Avx2 => Fma.IsSupported && Avx2.IsSupported,
        _ => false,
    };

    /// <summary>Name of the micro-kernel <see cref="GemmKernel.Auto"/> resolves to on this CPU.</summary>
    internal static string AutoKernelName => SelectKernel(GemmKernel.Auto).Name;

    private static KernelInfo SelectKernel(GemmKernel kernel)
    {
        if (!IsSupported(kernel))
            throw new PlatformNotSupportedException($"GEMM kernel {kernel} is not supported by this CPU");
        return kernel switch
        {
            GemmKernel.Avx512 => Avx512Kernel,
            GemmKernel.Avx2 => Avx2Kernel,
            GemmKernel.Scalar => ScalarKernel,
            _ => Avx512F.IsSupported ? Avx512Kernel : Fma.IsSupported && Avx2.IsSupported ? Avx2Kernel : ScalarKernel,
        };
    }

    private static void KernelAvx512(int kc, float* pa, int aStride, float* pb, float* c, int ldc, float alpha, float beta,
        int rows, int cols)
        => KernelAvx512Core(false, kc, pa, aStride, pb, c, ldc, alpha, beta, rows, cols);

    // A read in place from a row-major (m, k) A: step p of the strip is pa[r * lda + p] for its 8 rows r (a full strip
    // only), so a strip multiplied by one or two slivers is not packed first.
    private static void KernelAvx512RowA(int kc, float* pa, int lda, float* pb, float* c, int ldc, float alpha, float beta,
        int rows, int cols)
        => KernelAvx512Core(true, kc, pa, lda, pb, c, ldc, alpha, beta, rows, cols);

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void KernelAvx512Core(bool rowMajorA, int kc, float* pa, int aStride, float* pb, float* c, int ldc,
        float alpha, float beta, int rows, int cols)
    {
        if (Sse.IsSupported)
        {
            for (int r = 0; r < rows; r++)
            {
                Sse.Prefetch0(c + (long)r * ldc);
                Sse.Prefetch0(c + (long)r * ldc + 16);
            }
        }
        Vector512<float> c00 = default, c01 = default;
        Vector512<float> c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default;
        Vector512<float> c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default;
        Vector512<float> c70 = default, c71 = default;
        if (rowMajorA)
        {
            float* a0 = pa, a1 = pa + aStride, a2 = a1 + aStride, a3 = a2 + aStride;
            float* a4 = a3 + aStride, a5 = a4 + aStride, a6 = a5 + aStride, a7 = a6 + aStride;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector512.LoadAligned(pb);
                var b1 = Vector512.LoadAligned(pb + 16);
                Vector512<float> a;
                a = Vector512.Create(a0[p]);
                c00 = Avx512F.FusedMultiplyAdd(a, b0, c00);
                c01 = Avx512F.FusedMultiplyAdd(a, b1, c01);
                a = Vector512.Create(a1[p]);
                c10 = Avx512F.FusedMultiplyAdd(a, b0, c10);
                c11 = Avx512F.FusedMultiplyAdd(a, b1, c11);
                a = Vector512.Create(a2[p]);
                c20 = Avx512F.FusedMultiplyAdd(a, b0, c20);
                c21 = Avx512F.FusedMultiplyAdd(a, b1, c21);
                a = Vector512.Create(a3[p]);
                c30 = Avx512F.FusedMultiplyAdd(a, b0, c30);
                c31 = Avx512F.FusedMultiplyAdd(a, b1, c31);
                a = Vector512.Create(a4[p]);
                c40 = Avx512F.FusedMultiplyAdd(a, b0, c40);
                c41 = Avx512F.FusedMultiplyAdd(a, b1, c41);
                a = Vector512.Create(a5[p]);
                c50 = Avx512F.FusedMultiplyAdd(a, b0, c50);
                c51 = Avx512F.FusedMultiplyAdd(a, b1, c51);
                a = Vector512.Create(a6[p]);
                c60 = Avx512F.FusedMultiplyAdd(a, b0, c60);
                c61 = Avx512F.FusedMultiplyAdd(a, b1, c61);
                a = Vector512.Create(a7[p]);
                c70 = Avx512F.FusedMultiplyAdd(a, b0, c70);
                c71 = Avx512F.FusedMultiplyAdd(a, b1, c71);
                pb += 32;
            }
        }
        else
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.LoadAligned(pb);
            var b1 = Vector512.LoadAligned(pb + 16);
            Vector512<float> a;
            a = Vector512.Create(pa[0]);
            c00 = Avx512F.FusedMultiplyAdd(a, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(pa[1]);
            c10 = Avx512F.FusedMultiplyAdd(a, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(pa[2]);
            c20 = Avx512F.FusedMultiplyAdd(a, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(pa[3]);
            c30 = Avx512F.FusedMultiplyAdd(a, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(pa[4]);
            c40 = Avx512F.FusedMultiplyAdd(a, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(pa[5]);
            c50 = Avx512F.FusedMultiplyAdd(a, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(a, b1, c51);
            a = Vector512.Create(pa[6]);
            c60 = Avx512F.FusedMultiplyAdd(a, b0, c60);
            c61 = Avx512F.FusedMultiplyAdd(a, b1, c61);
            a = Vector512.Create(pa[7]);
            c70 = Avx512F.FusedMultiplyAdd(a, b0, c70);
            c71 = Avx512F.FusedMultiplyAdd(a, b1, c71);
            pa += aStride;
            pb += 32;
        }

        bool full = rows == 8 && cols == 32;
        if (!full && !LegacyPaths)
        {
            // Edge tiles: masked stores (and masked loads of C when beta != 0) of the first `cols` columns of the
            // first `rows` rows, with the full tile's arithmetic; masked-off lanes are never touched.
            var vAlpha = Vector512.Create(alpha);
            var m0 = ColumnMask(cols);
            var m1 = ColumnMask(cols - 16);
            EdgeRow(c, m0, m1, c00, c01, vAlpha, beta);
            if (rows > 1) EdgeRow(c + (long)1 * ldc, m0, m1, c10, c11, vAlpha, beta);
            if (rows > 2) EdgeRow(c + (long)2 * ldc, m0, m1, c20, c21, vAlpha, beta);
            if (rows > 3) EdgeRow(c + (long)3 * ldc, m0, m1, c30, c31, vAlpha, beta);
            if (rows > 4) EdgeRow(c + (long)4 * ldc, m0, m1, c40, c41, vAlpha, beta);
            if (rows > 5) EdgeRow(c + (long)5 * ldc, m0, m1, c50, c51, vAlpha, beta);
            if (rows > 6) EdgeRow(c + (long)6 * ldc, m0, m1, c60, c61, vAlpha, beta);
            if (rows > 7) EdgeRow(c + (long)7 * ldc, m0, m1, c70, c71, vAlpha, beta);
            return;
        }

        // alpha = 1 (every product of the block MLP and the convolutions): the tile as it is, or added to C when
        // beta = 1 (the weight gradients' k blocks): the same bits as the general form (x * 1 is exact, and
        // fma(x, 1, y * 1) rounds x + y once), without its 16 multiplies per tile, a few % at k = 31.
        if (full && alpha == 1f && !LegacyPaths && (beta == 0f || beta == 1f))
        {
            if (beta == 0f)
            {
                Vector512.Store(c00, c); Vector512.Store(c01, c + 16);
                Vector512.Store(c10, c + ldc); Vector512.Store(c11, c + ldc + 16);
                Vector512.Store(c20, c + 2L * ldc); Vector512.Store(c21, c + 2L * ldc + 16);
                Vector512.Store(c30, c + 3L * ldc); Vector512.Store(c31, c + 3L * ldc + 16);
                Vector512.Store(c40, c + 4L * ldc); Vector512.Store(c41, c + 4L * ldc + 16);
                Vector512.Store(c50, c + 5L * ldc); Vector512.Store(c51, c + 5L * ldc + 16);
                Vector512.Store(c60, c + 6L * ldc); Vector512.Store(c61, c + 6L * ldc + 16);
                Vector512.Store(c70, c + 7L * ldc); Vector512.Store(c71, c + 7L * ldc + 16);
                return;
            }
            AddRow(c, c00, c01);
            AddRow(c + ldc, c10, c11);
            AddRow(c + 2L * ldc, c20, c21);
            AddRow(c + 3L * ldc, c30, c31);
            AddRow(c + 4L * ldc, c40, c41);
            AddRow(c + 5L * ldc, c50, c51);
            AddRow(c + 6L * ldc, c60, c61);
            AddRow(c + 7L * ldc, c70, c71);
            return;
        }

        // Edge tiles (legacy path) go through a stack tile so the stores below never leave C.
        float* tmp = stackalloc float[8 * 32];
        float* t = full ? c : tmp;
        int ldt = full ? ldc : 32;
        var va = Vector512.Create(full ? alpha : 1f);
        if (!full || beta == 0f)
        {
            Vector512.Store(c00 * va, t + 0 * ldt); Vector512.Store(c01 * va, t + 0 * ldt + 16);
            Vector512.Store(c10 * va, t + 1 * ldt); Vector512.Store(c11 * va, t + 1 * ldt + 16);
            Vector512.Store(c20 * va, t + 2 * ldt); Vector512.Store(c21 * va, t + 2 * ldt + 16);
            Vector512.Store(c30 * va, t + 3 * ldt); Vector512.Store(c31 * va, t + 3 * ldt + 16);
            Vector512.Store(c40 * va, t + 4 * ldt); Vector512.Store(c41 * va, t + 4 * ldt + 16);
            Vector512.Store(c50 * va, t + 5 * ldt); Vector512.Store(c51 * va, t + 5 * ldt + 16);
            Vector512.Store(c60 * va, t + 6 * ldt); Vector512.Store(c61 * va, t + 6 * ldt + 16);
            Vector512.Store(c70 * va, t + 7 * ldt); Vector512.Store(c71 * va, t + 7 * ldt + 16);
        }
        else
        {
            var vb = Vector512.Create(beta);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c00, va, Vector512.Load(t + 0 * ldt) * vb), t + 0 * ldt);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c01, va, Vector512.Load(t + 0 * ldt + 16) * vb), t + 0 * ldt + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c10, va, Vector512.Load(t + 1 * ldt) * vb), t + 1 * ldt);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c11, va, Vector512.Load(t + 1 * ldt + 16) * vb), t + 1 * ldt + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c20, va, Vector512.Load(t + 2 * ldt) * vb), t + 2 * ldt);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c21, va, Vector512.Load(t + 2 * ldt + 16) * vb), t + 2 * ldt + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c30, va, Vector512.Load(t + 3 * ldt) * vb), t + 3 * ldt);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c31, va, Vector512.Load(t + 3 * ldt + 16) * vb), t + 3 * ldt + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c40, va, Vector512.Load(t + 4 * ldt) * vb), t + 4 * ldt);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c41, va, Vector512.Load(t + 4 * ldt + 16) * vb), t + 4 * ldt + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c50, va, Vector512.Load(t + 5 * ldt) * vb), t + 5 * ldt);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c51, va, Vector512.Load(t + 5 * ldt + 16) * vb), t + 5 * ldt + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c60, va, Vector512.Load(t + 6 * ldt) * vb), t + 6 * ldt);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c61, va, Vector512.Load(t + 6 * ldt + 16) * vb), t + 6 * ldt + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c70, va, Vector512.Load(t + 7 * ldt) * vb), t + 7 * ldt);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c71, va, Vector512.Load(t + 7 * ldt + 16) * vb), t + 7 * ldt + 16);
        }
        if (!full) MergeEdge(tmp, 32, c, ldc, alpha, beta, rows, cols);
    }

    // One row of a full AVX-512 tile added to C (alpha = beta = 1).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* ci, Vector512<float> lo, Vector512<float> hi)
    {
        Vector512.Store(lo + Vector512.Load(ci), ci);
        Vector512.Store(hi + Vector512.Load(ci + 16), ci + 16);
    }

    // Lanes [0, count) set (none when count <= 0, all when count >= 16).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ColumnMask(int count)
        => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    // One row of an AVX-512 edge tile: C[0..16) under m0 and C[16..32) under m1 = alpha * acc (+ beta * C).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EdgeRow(float* ci, Vector512<float> m0, Vector512<float> m1, Vector512<float> lo,
        Vector512<float> hi, Vector512<float> vAlpha, float beta)
    {
        if (beta == 0f)
        {
            Avx512F.MaskStore(ci, m0, lo * vAlpha);
            Avx512F.MaskStore(ci + 16, m1, hi * vAlpha);
        }
        else
        {
            var vb = Vector512.Create(beta);
            Avx512F.MaskStore(ci, m0,
                Avx512F.FusedMultiplyAdd(lo, vAlpha, Avx512F.MaskLoad(ci, m0, Vector512<float>.Zero) * vb));
            Avx512F.MaskStore(ci + 16, m1,
                Avx512F.FusedMultiplyAdd(hi, vAlpha, Avx512F.MaskLoad(ci + 16, m1, Vector512<float>.Zero) * vb));
        }
    }

    [SkipLocalsInit]
    private static void KernelAvx2(int kc, float* pa, int aStride, float* pb, float* c, int ldc, float alpha, float beta,
        int rows, int cols)
    {
        if (Sse.IsSupported)
        {
            for (int r = 0; r < rows; r++)
            {
                Sse.Prefetch0(c + (long)r * ldc);
                Sse.Prefetch0(c + (long)r * ldc + 15);
            }
        }
        Vector256<float> c00 = default, c01 = default;
        Vector256<float> c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default;
        Vector256<float> c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.LoadAligned(pb);
            var b1 = Vector256.LoadAligned(pb + 8);
            Vector256<float> a;
            a = Vector256.Create(pa[0]);
            c00 = Fma.MultiplyAdd(a, b0, c00);
            c01 = Fma.MultiplyAdd(a, b1, c01);
            a = Vector256.Create(pa[1]);
            c10 = Fma.MultiplyAdd(a, b0, c10);
            c11 = Fma.MultiplyAdd(a, b1, c11);
            a = Vector256.Create(pa[2]);
            c20 = Fma.MultiplyAdd(a, b0, c20);
            c21 = Fma.MultiplyAdd(a, b1, c21);
            a = Vector256.Create(pa[3]);
            c30 = Fma.MultiplyAdd(a, b0, c30);
            c31 = Fma.MultiplyAdd(a, b1, c31);
            a = Vector256.Create(pa[4]);
            c40 = Fma.MultiplyAdd(a, b0, c40);
            c41 = Fma.MultiplyAdd(a, b1, c41);
            a = Vector256.Create(pa[5]);
            c50 = Fma.MultiplyAdd(a, b0, c50);
            c51 = Fma.MultiplyAdd(a, b1, c51);
            pa += aStride;
            pb += 16;
        }

        bool full = rows == 6 && cols == 16;
        float* tmp = stackalloc float[6 * 16];
        float* t = full ? c : tmp;
        int ldt = full ? ldc : 16;
        var va = Vector256.Create(full ? alpha : 1f);
        if (!full || beta == 0f)
        {
            Vector256.Store(c00 * va, t + 0 * ldt); Vector256.Store(c01 * va, t + 0 * ldt + 8);
            Vector256.Store(c10 * va, t + 1 * ldt); Vector256.Store(c11 * va, t + 1 * ldt + 8);
            Vector256.Store(c20 * va, t + 2 * ldt); Vector256.Store(c21 * va, t + 2 * ldt + 8);
            Vector256.Store(c30 * va, t + 3 * ldt); Vector256.Store(c31 * va, t + 3 * ldt + 8);
            Vector256.Store(c40 * va, t + 4 * ldt); Vector256.Store(c41 * va, t + 4 * ldt + 8);
            Vector256.Store(c50 * va, t + 5 * ldt); Vector256.Store(c51 * va, t + 5 * ldt + 8);
        }
        else
        {
            var vb = Vector256.Create(beta);
            Vector256.Store(Fma.MultiplyAdd(c00, va, Vector256.Load(t + 0 * ldt) * vb), t + 0 * ldt);
            Vector256.Store(Fma.MultiplyAdd(c01, va, Vector256.Load(t + 0 * ldt + 8) * vb), t + 0 * ldt + 8);
            Vector256.Store(Fma.MultiplyAdd(c10, va, Vector256.Load(t + 1 * ldt) * vb), t + 1 * ldt);
            Vector256.Store(Fma.MultiplyAdd(c11, va, Vector256.Load(t + 1 * ldt + 8) * vb), t + 1 * ldt + 8);
            Vector256.Store(Fma.MultiplyAdd(c20, va, Vector256.Load(t + 2 * ldt) * vb), t + 2 * ldt);
            Vector256.Store(Fma.MultiplyAdd(c21, va, Vector256.Load(t + 2 * ldt + 8) * vb), t + 2 * ldt + 8);
            Vector256.Store(Fma.MultiplyAdd(c30, va, Vector256.Load(t + 3 * ldt) * vb), t + 3 * ldt);
            Vector256.Store(Fma.MultiplyAdd(c31, va, Vector256.Load(t + 3 * ldt + 8) * vb), t + 3 * ldt + 8);
            Vector256.Store(Fma.MultiplyAdd(c40, va, Vector256.Load(t + 4 * ldt) * vb), t + 4 * ldt);
            Vector256.Store(Fma.MultiplyAdd(c41, va, Vector256.Load(t + 4 * ldt + 8) * vb), t + 4 * ldt + 8);
            Vector256.Store(Fma.MultiplyAdd(c50, va, Vector256.Load(t + 5 * ldt) * vb), t + 5 * ldt);
            Vector256.Store(Fma.MultiplyAdd(c51, va, Vector256.Load(t + 5 * ldt + 8) * vb), t + 5 * ldt + 8);
        }
        if (!full) MergeEdge(tmp, 16, c, ldc, alpha, beta, rows, cols);
    }

    // Portable fallback for CPUs without FMA/AVX2: plain loops over a 4x8 tile (the JIT may auto-vectorise nothing;
    // correctness first, it only runs where no SIMD path exists).
    [SkipLocalsInit]
    private static void KernelScalar(int kc, float* pa, int aStride, float* pb, float* c, int ldc, float alpha, float beta,
        int rows, int cols)
    {
        float* acc = stackalloc float[4 * 8];
        new Span<float>(acc, 4 * 8).Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int i = 0; i < 4; i++)
            {
                float ai = pa[i];
                for (int j = 0; j < 8; j++) acc[i * 8 + j] += ai * pb[j];
            }
            pa += aStride;
            pb += 8;
        }
        MergeEdge(acc, 8, c, ldc, alpha, beta, rows, cols);
    }

    private static void MergeEdge(float* t, int ldt, float* c, int ldc, float alpha, float beta, int rows, int cols)
    {
        var va = Vector256.Create(alpha);
        var vb = Vector256.Create(beta);
        for (int i = 0; i < rows; i++)
        {
            float* ci = c + (long)i * ldc;
            float* ti = t + i * ldt;
            int j = 0;
            if (beta == 0f)
            {
                for (; j + 8 <= cols; j += 8) Vector256.Store(Vector256.Load(ti + j) * va, ci + j);
                for (; j < cols; j++) ci[j] = alpha * ti[j];
            }
            else
            {
                for (; j + 8 <= cols; j += 8)
                    Vector256.Store(Vector256.Load(ti + j) * va + Vector256.Load(ci + j) * vb, ci + j);
                for (; j < cols; j++) ci[j] = alpha * ti[j] + beta * ci[j];
            }
        }
    }
}
