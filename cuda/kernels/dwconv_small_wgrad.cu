// dwconv_small_wgrad.cu: the weight gradient of the fused decomposed depthwise convolution on small maps (SLaK's
// stages 3-4: 14x14 and 7x7), every branch of one channel in one block, "same" zero padding, stride 1, NCHW.
// dw_b[i, j] = sum over images n and outputs (r, q) of x[n, c, r + i - ph, q + j - pw] * dy_b[n, c, r, q].
//
// The map (H, W) and the branches (Kh, Kw) are compile-time (NVRTC definitions SLAK_DWS_H, SLAK_DWS_W, SLAK_DWS_NB,
// SLAK_DWS_KH{b}, SLAK_DWS_KW{b}; the launcher's specialisation and kernel-cache key), so every loop below is fully
// unrolled and each tap's sum runs over its in-bounds products only: a 47-tap axis on a 14-wide map computes the
// 27 offsets that reach the image, never the 20 that cannot.
// Grid (C, chunks of images), block 128 = 4 warps. Each branch is read in "line form": a wide or square branch by
// rows (lines are image rows, the long axis along them), a tall branch by columns (lines are image columns). A lane is
// (image slot, line p): 32 / lines images per warp (2 at 14x14, 4 at 7x7). For a group of G line offsets di, a lane
// loads its dy line (L values) and the G x lines p + di into registers straight from global memory (the x lines of
// an image are shared by its lanes through L1) and adds every in-bounds product d[q] * x[q + dj] to one accumulator per
// tap (G x NJ accumulators; each dy value feeds G x NJ taps). A warp walks its images (image steps w, w + 4, ... of
// the chunk) before reducing, so the reduction is paid once per (group, block). Reduction: a transposing butterfly over
// the warp (fixed order), then per tap the four warps' sums in warp order; one partial per (chunk, channel, tap),
// summed over chunks in order by column_sum_finalize_kernel (reduce.cu), as the general wgrad does. Deterministic.
// Masks: a pruned tap gets exactly 0 (as dwconv_fused_wgrad_kernel); live taps are computed from all products.
// Without the definitions the file holds a kernel that traps (the emulator library registers it; the launcher only
// launches a specialised instance, DwConvSmallWgradKernels.Applies).
// Launcher: src/Slak.Cuda/Kernels/DwConvSmallWgradKernels.cs. Model: bench/Slak.Bench/KernelModel/
// DwConvSmallWgradModel.cs.
#include "slak_common.cuh"

// Storage type of x (dy stays float32: gradients are never stored in bf16): float, or the 16-bit slak_bf16 when
// SLAK_DW_BF16=1 (the activation held as bf16 under --precision bf16, read directly and widened exactly on load;
// the accumulation is float32 either way, so the instance computes what the float32 one does on the widened copy).
#if defined(SLAK_DW_BF16) && SLAK_DW_BF16
#include "slak_bf16.cuh"
typedef slak_bf16 dws_x_t;
__device__ __forceinline__ float dws_load_x(const dws_x_t* p) { return slak_bf16_to_float(*p); }
#else
typedef float dws_x_t;
__device__ __forceinline__ float dws_load_x(const dws_x_t* p) { return *p; }
#endif

#define SLAK_DWS_THREADS 128 // the __launch_bounds__ below (a literal kernel-model reads)
constexpr int kDwsWarps = SLAK_DWS_THREADS / 32;
// The most accumulators a lane holds per group (with up to 2 x 16 line values beside them).
constexpr int kDwsMaxAcc = 96;

#if defined(SLAK_DWS_H) && defined(SLAK_DWS_W) && defined(SLAK_DWS_NB)

#ifndef SLAK_DWS_KH1
#define SLAK_DWS_KH1 1
#define SLAK_DWS_KW1 1
#endif
#ifndef SLAK_DWS_KH2
#define SLAK_DWS_KH2 1
#define SLAK_DWS_KW2 1
#endif

constexpr int kDwsH = SLAK_DWS_H, kDwsW = SLAK_DWS_W, kDwsBranches = SLAK_DWS_NB;
constexpr int kDwsTaps0 = SLAK_DWS_KH0 * SLAK_DWS_KW0;
constexpr int kDwsTaps1 = kDwsBranches > 1 ? SLAK_DWS_KH1 * SLAK_DWS_KW1 : 0;
constexpr int kDwsTaps2 = kDwsBranches > 2 ? SLAK_DWS_KH2 * SLAK_DWS_KW2 : 0;
constexpr int kDwsTaps = kDwsTaps0 + kDwsTaps1 + kDwsTaps2;
static_assert(kDwsH >= 1 && kDwsH <= 16 && kDwsW >= 1 && kDwsW <= 16, "small maps only (lines of <= 16 values)");
static_assert(kDwsBranches >= 1 && kDwsBranches <= 3, "one to three branches");

__host__ __device__ constexpr int dws_min(int a, int b) { return a < b ? a : b; }
__host__ __device__ constexpr int dws_max(int a, int b) { return a > b ? a : b; }

// One stage of the transposing butterfly: lanes with `bit` set keep the upper half of their values and send the lower
// half to their partner (which keeps its lower half), so each value is summed in a fixed order; `off` tracks which
// half a lane kept. HALF is a template argument so that every index is a constant (the array stays in registers).
template <int HALF, int N>
__device__ __forceinline__ void dws_fold(float (&acc)[N], int lane, int bit, int& off)
{
    const bool up = (lane & bit) != 0;
#pragma unroll
    for (int k = 0; k < HALF; ++k)
    {
        const float send = up ? acc[k] : acc[k + HALF];
        const float keep = up ? acc[k + HALF] : acc[k];
        acc[k] = keep + __shfl_xor_sync(0xffffffffu, send, bit);
    }
    if (up) off += HALF;
}

// One branch in line form: R lines of L values (row form: R = H, L = W; column form: R = W, L = H), KS taps across
// the lines and KL along them. s_part receives the warp's sum of each in-bounds tap at its row-major index.
template <int KH, int KW>
__device__ __forceinline__ void dws_branch(float* s_part, const dws_x_t* __restrict__ x, const float* __restrict__ dy,
                                           long long plane_stride, long long ch_off, int img0, int img1, int warp,
                                           int lane)
{
    constexpr bool cols = KH > KW;                     // a tall branch is read by columns
    constexpr int R = cols ? kDwsW : kDwsH, L = cols ? kDwsH : kDwsW;
    constexpr int KS = cols ? KW : KH, KL = cols ? KH : KW;
    constexpr int RS = cols ? 1 : kDwsW, CS = cols ? kDwsW : 1; // element (line p, q) at p * RS + q * CS
    constexpr int S = 32 / R;                          // image slots per warp
    constexpr int DJ = dws_min(KL / 2, L - 1), NJ = 2 * DJ + 1;
    constexpr int DI = dws_min(KS / 2, R - 1), NI = 2 * DI + 1;
    constexpr int G = dws_max(1, dws_min(NI, kDwsMaxAcc / NJ));
    constexpr int NV = G * NJ, NVP = (NV + 31) / 32 * 32;
    const int slot = lane / R, p = lane - slot * R;
    const bool on = slot < S;

#pragma unroll 1
    for (int g0 = -DI; g0 <= DI; g0 += G)
    {
        float acc[NVP];
#pragma unroll
        for (int k = 0; k < NVP; ++k) acc[k] = 0.0f;
#pragma unroll 1
        for (int base = img0 + warp * S; base < img1; base += kDwsWarps * S)
        {
            const int img = base + slot;
            if (!on || img >= img1) continue;
            const dws_x_t* xp = x + img * plane_stride + ch_off;
            const float* dp = dy + img * plane_stride + ch_off + p * RS;
            float d[L];
#pragma unroll
            for (int q = 0; q < L; ++q) d[q] = dp[q * CS];
#pragma unroll
            for (int gi = 0; gi < G; ++gi)
            {
                const int di = g0 + gi, line = p + di;
                if (di > DI || line < 0 || line >= R) continue;
                float xv[L];
#pragma unroll
                for (int q = 0; q < L; ++q) xv[q] = dws_load_x(xp + line * RS + q * CS);
#pragma unroll
                for (int jj = 0; jj < NJ; ++jj)
                {
                    const int dj = jj - DJ;
#pragma unroll
                    for (int q = 0; q < L; ++q)
                        if (q + dj >= 0 && q + dj < L) acc[gi * NJ + jj] = fmaf(d[q], xv[q + dj], acc[gi * NJ + jj]);
                }
            }
        }
        // Transposing butterfly (fixed order): afterwards lane l holds the warp's sums of values off + k, k < NVP / 32.
        int off = 0;
        dws_fold<NVP / 2>(acc, lane, 16, off);
        dws_fold<NVP / 4>(acc, lane, 8, off);
        dws_fold<NVP / 8>(acc, lane, 4, off);
        dws_fold<NVP / 16>(acc, lane, 2, off);
        dws_fold<NVP / 32>(acc, lane, 1, off);
#pragma unroll
        for (int k = 0; k < NVP / 32; ++k)
        {
            const int v = off + k, gi = v / NJ, jj = v - gi * NJ, di = g0 + gi;
            if (v >= NV || di > DI) continue;
            const int i = di + KS / 2, j = jj - DJ + KL / 2; // i across the lines, j along them
            s_part[cols ? j * KW + i : i * KW + j] = acc[k];
        }
    }
}

#endif

// Without the definitions (the unspecialised module) the kernel traps: it has no shape to compute.
extern "C" __global__ void __launch_bounds__(128) dwconv_small_wgrad_kernel(
    float* __restrict__ part0, float* __restrict__ part1, float* __restrict__ part2, const dws_x_t* __restrict__ x,
    const float* __restrict__ dy0, const float* __restrict__ dy1, const float* __restrict__ dy2,
    const float* __restrict__ m0, const float* __restrict__ m1, const float* __restrict__ m2, int n, int c,
    int images_per_chunk)
{
#if defined(SLAK_DWS_H) && defined(SLAK_DWS_W) && defined(SLAK_DWS_NB)
    __shared__ float s_part[kDwsWarps * kDwsTaps];
    const int ch = blockIdx.x, chunk = blockIdx.y;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    // Taps out of the image's reach keep 0.
    for (int k = tid; k < kDwsWarps * kDwsTaps; k += SLAK_DWS_THREADS) s_part[k] = 0.0f;
    __syncthreads();
    const int img0 = chunk * images_per_chunk, img1 = min(n, img0 + images_per_chunk);
    const long long plane_stride = static_cast<long long>(c) * kDwsH * kDwsW;
    const long long ch_off = static_cast<long long>(ch) * kDwsH * kDwsW;
    float* mine = s_part + warp * kDwsTaps;
    dws_branch<SLAK_DWS_KH0, SLAK_DWS_KW0>(mine, x, dy0, plane_stride, ch_off, img0, img1, warp, lane);
    if (kDwsBranches > 1)
        dws_branch<SLAK_DWS_KH1, SLAK_DWS_KW1>(mine + kDwsTaps0, x, dy1, plane_stride, ch_off, img0, img1, warp, lane);
    if (kDwsBranches > 2)
        dws_branch<SLAK_DWS_KH2, SLAK_DWS_KW2>(mine + kDwsTaps0 + kDwsTaps1, x, dy2, plane_stride, ch_off, img0, img1,
                                               warp, lane);
    __syncthreads();
    for (int t = tid; t < kDwsTaps; t += SLAK_DWS_THREADS)
    {
        float sum = 0.0f;
#pragma unroll
        for (int w = 0; w < kDwsWarps; ++w) sum += s_part[w * kDwsTaps + t];
        const int b = t < kDwsTaps0 ? 0 : t < kDwsTaps0 + kDwsTaps1 ? 1 : 2;
        const int taps = b == 0 ? kDwsTaps0 : b == 1 ? kDwsTaps1 : kDwsTaps2;
        const int k = t - (b == 0 ? 0 : b == 1 ? kDwsTaps0 : kDwsTaps0 + kDwsTaps1);
        const float* mask = b == 0 ? m0 : b == 1 ? m1 : m2;
        float* out = b == 0 ? part0 : b == 1 ? part1 : part2;
        const long long at = static_cast<long long>(ch) * taps + k;
        out[static_cast<long long>(chunk) * c * taps + at] = mask != nullptr && mask[at] == 0.0f ? 0.0f : sum;
    }
#else
    __trap();
#endif
}
