// Packing routines of CpuGemm: copy a block of op(A) into MR-row strips and a block of op(B) into NR-column slivers,
// both k-major, so the micro-kernel reads them with unit stride whatever the transposes of the caller. Ragged
// edges are zero-padded, which lets the micro-kernel always run a full MR x NR tile.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

internal static unsafe partial class CpuGemm
{
    /// <summary>True (the default): a ragged sliver of a row-major B is packed with masked vector loads on AVX-512,
    /// and a ragged strip of a transposed A on AVX; false (SLAK_GEMM_MASKED_PACK=0): element by element, as before
    /// (the same floats either way). Internal and
    /// settable so that the bench (mlp-ab) can time both in one run and tests can compare them.</summary>
    internal static bool MaskedPackB { get; set; } = Environment.GetEnvironmentVariable("SLAK_GEMM_MASKED_PACK") != "0";

    // One strip: op(A)[i0 .. i0+rows, p0 .. p0+kc] -> dst[p * mr + ii].
    private static void PackA(bool transA, float* a, int lda, int i0, int p0, int rows, int kc, int mr, float* dst)
    {
        if (transA)
        {
            // A stored (k, m): each k step reads `rows` contiguous floats; a ragged strip as one masked load and a
            // full store (zeros past `rows`) where MaskedPackB allows.
            if (rows < 8 && mr == 8 && MaskedPackB && Avx.IsSupported)
            {
                var mask = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(rows)).AsSingle();
                for (int p = 0; p < kc; p++)
                    Vector256.Store(Avx.MaskLoad(a + (long)(p0 + p) * lda + i0, mask), dst + p * mr);
                return;
            }
            for (int p = 0; p < kc; p++)
            {
                float* src = a + (long)(p0 + p) * lda + i0;
                float* d = dst + p * mr;
                if (rows == 8 && mr == 8)
                    Vector256.Store(Vector256.Load(src), d);
                else
                {
                    int ii = 0;
                    for (; ii < rows; ii++) d[ii] = src[ii];
                    for (; ii < mr; ii++) d[ii] = 0f;
                }
            }
            return;
        }

        // A stored (m, k): read each row contiguously, write with stride mr.
        if (rows == 8 && mr == 8 && Avx.IsSupported)
        {
            PackRows8Transposed(a + (long)i0 * lda + p0, lda, kc, dst);
            return;
        }
        for (int ii = 0; ii < mr; ii++)
        {
            float* d = dst + ii;
            if (ii < rows)
            {
                float* src = a + (long)(i0 + ii) * lda + p0;
                for (int p = 0; p < kc; p++) d[p * mr] = src[p];
            }
            else
                for (int p = 0; p < kc; p++) d[p * mr] = 0f;
        }
    }

    // One sliver: op(B)[p0 .. p0+kc, j0 .. j0+cols] -> dst[p * nr + jj].
    private static void PackB(bool transB, float* b, int ldb, int p0, int j0, int kc, int cols, int nr, float* dst)
    {
        if (!transB)
        {
            // B stored (k, n): each k step copies `cols` contiguous floats; a ragged sliver of the AVX-512 kernel as
            // two masked loads and two full stores per k step (zeros past `cols`), not element by element: the
            // weight gradients of the C = 31 stages pack a 31-column B of 500+ rows per product, and the scalar copy
            // was about a tenth of the product's time there.
            if (cols < nr && nr == 32 && MaskedPackB && Avx512F.IsSupported)
            {
                var m0 = ColumnMask(cols);
                var m1 = ColumnMask(cols - 16);
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(p0 + p) * ldb + j0;
                    float* d = dst + p * nr;
                    Vector512.Store(Avx512F.MaskLoad(src, m0, Vector512<float>.Zero), d);
                    Vector512.Store(Avx512F.MaskLoad(src + 16, m1, Vector512<float>.Zero), d + 16);
                }
                return;
            }
            for (int p = 0; p < kc; p++)
            {
                float* src = b + (long)(p0 + p) * ldb + j0;
                float* d = dst + p * nr;
                if (cols == nr && (nr & 7) == 0)
                {
                    for (int jj = 0; jj < nr; jj += 8) Vector256.Store(Vector256.Load(src + jj), d + jj);
                }
                else
                {
                    int jj = 0;
                    for (; jj < cols; jj++) d[jj] = src[jj];
                    for (; jj < nr; jj++) d[jj] = 0f;
                }
            }
            return;
        }

        // B stored (n, k): column jj of the sliver is row j0+jj of B, contiguous in k.
        if (cols == nr && (nr & 7) == 0 && Avx.IsSupported)
        {
            for (int jj = 0; jj < nr; jj += 8)
                PackRows8Transposed(b + (long)(j0 + jj) * ldb + p0, ldb, kc, dst + jj, nr);
            return;
        }
        for (int jj = 0; jj < nr; jj++)
        {
            float* d = dst + jj;
            if (jj < cols)
            {
                float* src = b + (long)(j0 + jj) * ldb + p0;
                for (int p = 0; p < kc; p++) d[p * nr] = src[p];
            }
            else
                for (int p = 0; p < kc; p++) d[p * nr] = 0f;
        }
    }

    // Eight rows of length kc (row stride ld) -> dst[p * dstStride + r], via 8x8 in-register transposes.
    private static void PackRows8Transposed(float* src, int ld, int kc, float* dst, int dstStride = 8)
    {
        int p = 0;
        for (; p + 8 <= kc; p += 8)
        {
            var r0 = Vector256.Load(src + p);
            var r1 = Vector256.Load(src + ld + p);
            var r2 = Vector256.Load(src + 2L * ld + p);
            var r3 = Vector256.Load(src + 3L * ld + p);
            var r4 = Vector256.Load(src + 4L * ld + p);
            var r5 = Vector256.Load(src + 5L * ld + p);
            var r6 = Vector256.Load(src + 6L * ld + p);
            var r7 = Vector256.Load(src + 7L * ld + p);
            Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
            float* d = dst + (long)p * dstStride;
            Vector256.Store(r0, d);
            Vector256.Store(r1, d + dstStride);
            Vector256.Store(r2, d + 2 * dstStride);
            Vector256.Store(r3, d + 3 * dstStride);
            Vector256.Store(r4, d + 4 * dstStride);
            Vector256.Store(r5, d + 5 * dstStride);
            Vector256.Store(r6, d + 6 * dstStride);
            Vector256.Store(r7, d + 7 * dstStride);
        }
        for (; p < kc; p++)
        {
            float* d = dst + (long)p * dstStride;
            for (int r = 0; r < 8; r++) d[r] = src[(long)r * ld + p];
        }
    }

    private static void Transpose8x8(ref Vector256<float> r0, ref Vector256<float> r1, ref Vector256<float> r2,
        ref Vector256<float> r3, ref Vector256<float> r4, ref Vector256<float> r5, ref Vector256<float> r6,
        ref Vector256<float> r7)
    {
        // Stage 1: interleave 32-bit elements of row pairs, stage 2: 64-bit pairs, stage 3: swap 128-bit lanes.
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Lo64(t0, t2); var u1 = Hi64(t0, t2);
        var u2 = Lo64(t1, t3); var u3 = Hi64(t1, t3);
        var u4 = Lo64(t4, t6); var u5 = Hi64(t4, t6);
        var u6 = Lo64(t5, t7); var u7 = Hi64(t5, t7);
        r0 = Avx.Permute2x128(u0, u4, 0x20); r4 = Avx.Permute2x128(u0, u4, 0x31);
        r1 = Avx.Permute2x128(u1, u5, 0x20); r5 = Avx.Permute2x128(u1, u5, 0x31);
        r2 = Avx.Permute2x128(u2, u6, 0x20); r6 = Avx.Permute2x128(u2, u6, 0x31);
        r3 = Avx.Permute2x128(u3, u7, 0x20); r7 = Avx.Permute2x128(u3, u7, 0x31);
    }

    private static Vector256<float> Lo64(Vector256<float> a, Vector256<float> b)
        => Avx.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle();

    private static Vector256<float> Hi64(Vector256<float> a, Vector256<float> b)
        => Avx.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();
}
