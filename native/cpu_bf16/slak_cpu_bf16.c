/* slak_cpu_bf16.c: a bf16 GEMM microkernel for x86-64 CPUs with AVX512-BF16 (VDPBF16PS: pairs of bf16 products
 * accumulated into fp32), loaded at run time by src/Slak/Backends/Cpu/CpuBf16Gemm.cs. .NET 10's hardware intrinsics
 * do not expose VDPBF16PS, hence this small native library (built by CMake: cmake/slak_cpu_bf16.cmake).
 *
 * C(m, n) = A(m, k) * B(k, n) + beta * C, row-major fp32 in memory. A and B are rounded to bf16 (nearest even) while
 * they are packed; products and sums are fp32 (VDPBF16PS flushes denormal inputs and results to zero, as the
 * instruction defines). B is packed once per GEMM (slak_cpu_bf16_pack_b); the caller splits the rows of A over
 * threads and calls slak_cpu_bf16_gemm_packed per block of rows.
 *
 * Packed B: for each group of 32 columns (zero-padded), for each pair of k (k rounded up to even, zero-padded), 32
 * pairs (B[2p][j], B[2p+1][j]) of bf16: two 512-bit vectors of 16 columns each. The microkernel keeps 6 rows x 32
 * columns of C in 12 zmm accumulators and broadcasts one (A[i][2p], A[i][2p+1]) pair per row and step.
 * Every function is compiled for AVX512-BF16 through target attributes; slak_cpu_bf16_supported() says whether the
 * running CPU has it, and the C# side calls nothing else unless it does. */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SLAK_EXPORT __attribute__((visibility("default")))
#define SLAK_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

enum { NR = 32, MR = 6 };

static inline uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* 1 when this CPU executes AVX512-BF16 (and AVX-512 F/BW), else 0. */
SLAK_EXPORT int slak_cpu_bf16_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512bf16");
}

/* Bytes of the packed B of a (k, n) matrix. */
SLAK_EXPORT size_t slak_cpu_bf16_packed_b_bytes(int k, int n)
{
    size_t groups = ((size_t)n + NR - 1) / NR, pairs = ((size_t)k + 1) / 2;
    return groups * pairs * NR * 2 * sizeof(uint16_t);
}

/* packed = B (k, n; row stride ldb) as bf16 pairs, layout above. */
SLAK_EXPORT void slak_cpu_bf16_pack_b(int k, int n, const float* b, int ldb, uint16_t* packed)
{
    int pairs = (k + 1) / 2;
    for (int g = 0; g < n; g += NR)
    {
        uint16_t* dst = packed + (size_t)(g / NR) * pairs * NR * 2;
        for (int p = 0; p < pairs; p++)
            for (int j = 0; j < NR; j++)
            {
                int col = g + j, k0 = 2 * p, k1 = 2 * p + 1;
                dst[(size_t)p * NR * 2 + 2 * j] = col < n ? to_bf16(b[(size_t)k0 * ldb + col]) : 0;
                dst[(size_t)p * NR * 2 + 2 * j + 1] = col < n && k1 < k ? to_bf16(b[(size_t)k1 * ldb + col]) : 0;
            }
    }
}

/* C rows [0, m) = A rows [0, m) (row stride lda) times packed B, + beta * C (beta 0: C is not read). */
SLAK_EXPORT SLAK_BF16_TARGET void slak_cpu_bf16_gemm_packed(int m, int n, int k, const float* a, int lda,
                                                            const uint16_t* packed, float beta, float* c, int ldc)
{
    int pairs = (k + 1) / 2;
    uint32_t apairs[MR][256];
    for (int i0 = 0; i0 < m; i0 += MR)
    {
        int rows = m - i0 < MR ? m - i0 : MR;
        for (int p0 = 0; p0 < pairs; p0 += 256)
        {
            int pn = pairs - p0 < 256 ? pairs - p0 : 256;
            /* A's pairs of this row block and k block, rounded to bf16. */
            for (int r = 0; r < MR; r++)
                for (int p = 0; p < pn; p++)
                {
                    int kk = 2 * (p0 + p);
                    if (r >= rows) { apairs[r][p] = 0; continue; }
                    const float* row = a + (size_t)(i0 + r) * lda;
                    uint32_t lo = to_bf16(row[kk]), hi = kk + 1 < k ? to_bf16(row[kk + 1]) : 0;
                    apairs[r][p] = lo | (hi << 16);
                }
            for (int g = 0; g < n; g += NR)
            {
                const uint16_t* bp = packed + ((size_t)(g / NR) * pairs + p0) * NR * 2;
                __m512 acc[MR][2];
                for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
                for (int p = 0; p < pn; p++)
                {
                    __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void*)(bp + (size_t)p * NR * 2));
                    __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void*)(bp + (size_t)p * NR * 2 + 32));
                    for (int r = 0; r < MR; r++)
                    {
                        __m512bh av = (__m512bh)_mm512_set1_epi32((int)apairs[r][p]);
                        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
                        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
                    }
                }
                int cols = n - g < NR ? n - g : NR;
                __mmask16 m0 = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1u);
                __mmask16 m1 = cols <= 16 ? (__mmask16)0 : cols >= 32 ? (__mmask16)0xffff : (__mmask16)((1u << (cols - 16)) - 1u);
                for (int r = 0; r < rows; r++)
                {
                    float* crow = c + (size_t)(i0 + r) * ldc + g;
                    /* the first k block applies beta; later blocks accumulate */
                    __m512 scale = _mm512_set1_ps(p0 == 0 ? beta : 1.0f);
                    int read = p0 > 0 || beta != 0.0f;
                    __m512 c0 = read ? _mm512_mul_ps(_mm512_maskz_loadu_ps(m0, crow), scale) : _mm512_setzero_ps();
                    __m512 c1 = read ? _mm512_mul_ps(_mm512_maskz_loadu_ps(m1, crow + 16), scale) : _mm512_setzero_ps();
                    _mm512_mask_storeu_ps(crow, m0, _mm512_add_ps(c0, acc[r][0]));
                    _mm512_mask_storeu_ps(crow + 16, m1, _mm512_add_ps(c1, acc[r][1]));
                }
            }
        }
    }
}
