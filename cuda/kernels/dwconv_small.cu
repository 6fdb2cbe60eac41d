// dwconv_small.cu: the decomposed depthwise convolution (up to three branches, "same" zero padding per branch, stride
// 1, NCHW, fp32 accumulation) for SMALL maps (SLaK's stages 3-4: 14 x 14 and 7 x 7 at 224 px; at most
// kSmallMaxPixels pixels), the same three modes as dwconv_fused_kernel with the same arguments:
//   forward (sum = 0): every branch reads x, each writes its own output;
//   inference sum (sum = 1, flip = 0): every branch reads x, one summed output;
//   input gradient (sum = 1, flip = 1): branch b reads its own output gradient in_b with the filter rotated by 180
//     degrees, the sum written once as dx.
// Why a kernel of its own: dwconv_fused_kernel's 32 x 32 tiles of one plane leave most lanes idle on these maps
// (7 of 32 at 7 x 7). Here a block is one channel c and blockDim images n0.. (lanes over images), each thread owning
// a whole plane, so every launched lane produces outputs (but those of images >= N in the last block), the weights
// are warp-uniform (broadcast shared loads) and control flow is uniform.
//
// Grid x = channel, y = group of blockDim images; block 32..kSmallMaxThreads threads (plan: slak_plan_dwconv_small).
// Shared memory: the block's weights (flipped for the input gradient, masked taps as zeros), then per thread an input
// plane and an output plane of slak_small_plane_stride floats (odd: conflict-free), the inputs staged cooperatively
// with coalesced global loads and the outputs written back the same way.
//
// The body is specialised through NVRTC defines (part of the kernel-cache key): SLAK_DWS_H, SLAK_DWS_W (the map) and
// SLAK_DW_KH<b>/SLAK_DW_KW<b> (the branches, as in dwconv_fused.cu). A branch is computed along its long axis in
// bands of slak_small_band outputs across it: the band's inputs (long extent x band + short taps - 1) and
// accumulators (long extent x band) live in registers, the long-axis taps run fully unrolled with their short-axis
// weights loaded as broadcasts, and products whose input lies in the padding are never issued: along the long axis by
// the unrolled indices, across it by compiling the edge bands with their start as a constant (the interior bands,
// where every tap is in the image, share one body in a loop). Without the defines (the emulator, a shape nobody
// specialised) a plain per-output loop computes the same sums.
// Storage type: dw_store_t with dw_load/dw_store as in dwconv_fused.cu (float; bfloat16 when SLAK_DW_BF16=1).
// Launchers: src/Slak.Cuda/Kernels/DwConvSmallKernels.cs.
#include "slak_common.cuh"
#include "slak/slak_params.h"
#include "slak/slak_small.h"

#if defined(SLAK_DW_BF16) && SLAK_DW_BF16
#include "slak_bf16.cuh"
typedef slak_bf16 dw_store_t;
__device__ __forceinline__ float dw_load(const dw_store_t* p) { return slak_bf16_to_float(*p); }
__device__ __forceinline__ void dw_store(dw_store_t* p, float v) { *p = slak_float_to_bf16(v); }
#else
typedef float dw_store_t;
__device__ __forceinline__ float dw_load(const dw_store_t* p) { return *p; }
__device__ __forceinline__ void dw_store(dw_store_t* p, float v) { *p = v; }
#endif

#ifndef SLAK_DWS_H
#define SLAK_DWS_H 0
#define SLAK_DWS_W 0
#endif
#include "slak_dw_branches.cuh"

static_assert(kSmallMaxThreads == 128, "dwconv_small_kernel's __launch_bounds__ is the largest block of its plan");

// The constants of branch (KH, KW) on an H x W map: long axis L (taps KL, padding PL), short axis S (taps KS, padding
// PS), strides of the two axes in a row-major plane, the band width B, the bands, and the interior bands [KLO, KHI]
// (every short-axis tap of every output of the band in the image).
template <int H, int W, int KH, int KW>
struct DwsShape
{
    static constexpr bool kTall = KH >= KW;
    static constexpr int L = kTall ? H : W, S = kTall ? W : H;
    static constexpr int KL = kTall ? KH : KW, KS = kTall ? KW : KH;
    static constexpr int PL = KL / 2, PS = KS / 2;
    static constexpr int SL = kTall ? W : 1, SS = kTall ? 1 : W;
    static constexpr int B = slak_small_band(S);
    static constexpr int NB = (S + B - 1) / B;
    static constexpr int NX = B + KS - 1;
    static constexpr int KLO = (PS + B - 1) / B;
    static constexpr int KHI = S - B - PS >= 0 ? (S - B - PS) / B : -1;
    static_assert(slak_small_band_regs(H, W, KH, KW) <= kSmallMaxBandRegs,
                  "a band over the register budget spills; slak_plan_dwconv_small must not send this shape here");
};

// One band of branch (KH, KW): outputs (u, v) for u along the long axis and v in [v0, v0 + B) across it, of the
// thread's input plane xs into its output plane os (add: accumulate into os). V0 >= 0: the band's start is the
// constant V0 and taps reaching outside the map across are dropped at compile time; V0 < 0: an interior band starting
// at v0_rt (every tap in the map). ws: the branch's weights, row-major KH x KW.
template <int H, int W, int KH, int KW, int V0>
__device__ __forceinline__ void dws_band(const float* xs, float* os, const float* ws, int v0_rt, bool add)
{
    using Sh = DwsShape<H, W, KH, KW>;
    constexpr int L = Sh::L, S = Sh::S, KL = Sh::KL, KS = Sh::KS, PL = Sh::PL, PS = Sh::PS, B = Sh::B, NX = Sh::NX;
    const int v0 = V0 >= 0 ? V0 : v0_rt;
    // x[u][m]: input (u, v0 - PS + m); columns outside the map are never read (their products are not issued).
    float x[L][NX];
#pragma unroll
    for (int u = 0; u < L; ++u)
    {
#pragma unroll
        for (int m = 0; m < NX; ++m)
        {
            const int v = V0 - PS + m;
            if (V0 < 0 || (v >= 0 && v < S)) x[u][m] = xs[u * Sh::SL + (v0 - PS + m) * Sh::SS];
            else x[u][m] = 0.0f;
        }
    }
    float acc[L][B];
#pragma unroll
    for (int u = 0; u < L; ++u)
    {
#pragma unroll
        for (int b = 0; b < B; ++b) acc[u][b] = 0.0f;
    }
#pragma unroll
    for (int l = 0; l < KL; ++l)
    {
        // Long-axis taps no output reaches (|l - PL| >= L) cost nothing: their loop bodies are empty.
        if (l - PL >= L || PL - l >= L) continue;
        float wv[KS];
#pragma unroll
        for (int s = 0; s < KS; ++s) wv[s] = ws[Sh::kTall ? l * KW + s : s * KW + l];
#pragma unroll
        for (int u = 0; u < L; ++u)
        {
            const int uu = u + l - PL;
            if (uu < 0 || uu >= L) continue;
#pragma unroll
            for (int b = 0; b < B; ++b)
            {
#pragma unroll
                for (int s = 0; s < KS; ++s)
                {
                    const int v = V0 + b + s - PS;
                    if (V0 >= 0 && (v < 0 || v >= S)) continue;
                    acc[u][b] = fmaf(x[uu][b + s], wv[s], acc[u][b]);
                }
            }
        }
    }
#pragma unroll
    for (int u = 0; u < L; ++u)
    {
#pragma unroll
        for (int b = 0; b < B; ++b)
        {
            if (V0 >= 0 && V0 + b >= S) continue; // the last band of an odd extent
            float* o = os + u * Sh::SL + (v0 + b) * Sh::SS;
            *o = add ? *o + acc[u][b] : acc[u][b];
        }
    }
}

// The edge bands K, K + 1, ... (those outside [KLO, KHI]), each with its start as a constant.
template <int H, int W, int KH, int KW, int K>
__device__ __forceinline__ void dws_edge_bands(const float* xs, float* os, const float* ws, bool add)
{
    using Sh = DwsShape<H, W, KH, KW>;
    if constexpr (K < Sh::NB)
    {
        if constexpr (K < Sh::KLO || K > Sh::KHI) dws_band<H, W, KH, KW, K * Sh::B>(xs, os, ws, 0, add);
        dws_edge_bands<H, W, KH, KW, K + 1>(xs, os, ws, add);
    }
}

// Branch (KH, KW) of the thread's plane: the edge bands unrolled, the interior bands in one loop.
template <int H, int W, int KH, int KW>
__device__ __forceinline__ void dws_branch(const float* xs, float* os, const float* ws, bool add)
{
    using Sh = DwsShape<H, W, KH, KW>;
    dws_edge_bands<H, W, KH, KW, 0>(xs, os, ws, add);
#pragma unroll 1
    for (int k = Sh::KLO; k <= Sh::KHI; ++k) dws_band<H, W, KH, KW, -1>(xs, os, ws, k * Sh::B, add);
}

// The generic body (no defines): out(r, q) (+)= sum over taps of w * x for every output of the thread's plane.
__device__ __forceinline__ void dws_branch_generic(const float* xs, float* os, const float* ws, int h, int w, int kh,
                                                   int kw, bool add)
{
    const int ph = kh / 2, pw = kw / 2;
    for (int r = 0; r < h; ++r)
    {
        for (int q = 0; q < w; ++q)
        {
            float acc = 0.0f;
            const int i0 = r - ph < 0 ? ph - r : 0, i1 = r - ph + kh > h ? h - r + ph : kh;
            const int j0 = q - pw < 0 ? pw - q : 0, j1 = q - pw + kw > w ? w - q + pw : kw;
            for (int i = i0; i < i1; ++i)
                for (int j = j0; j < j1; ++j) acc = fmaf(xs[(r + i - ph) * w + q + j - pw], ws[i * kw + j], acc);
            os[r * w + q] = add ? os[r * w + q] + acc : acc;
        }
    }
}

constexpr bool kDwsSpecialised = SLAK_DWS_H > 0 && SLAK_DWS_W > 0 && SLAK_DW_KH0 > 0;

extern "C" __global__ void __launch_bounds__(128, 1) dwconv_small_kernel(
    dw_store_t* __restrict__ out0, dw_store_t* __restrict__ out1, dw_store_t* __restrict__ out2,
    const dw_store_t* __restrict__ in0, const dw_store_t* __restrict__ in1, const dw_store_t* __restrict__ in2,
    const float* __restrict__ w0, const float* __restrict__ w1, const float* __restrict__ w2,
    const float* __restrict__ m0, const float* __restrict__ m1, const float* __restrict__ m2, DwFusedParams p)
{
    // A specialised module must be launched with exactly its map and branches.
    SLAK_DEVICE_ASSERT(!kDwsSpecialised ||
                       (p.h == SLAK_DWS_H && p.w == SLAK_DWS_W && p.kh0 == SLAK_DW_KH0 && p.kw0 == SLAK_DW_KW0 &&
                        (p.branches < 2 || (p.kh1 == SLAK_DW_KH1 && p.kw1 == SLAK_DW_KW1)) &&
                        (p.branches < 3 || (p.kh2 == SLAK_DW_KH2 && p.kw2 == SLAK_DW_KW2)) &&
                        p.branches == (SLAK_DW_KH2 > 0 ? 3 : SLAK_DW_KH1 > 0 ? 2 : 1)));
    SLAK_DYNAMIC_SHARED(float, smem);
    const int h = kDwsSpecialised ? SLAK_DWS_H : p.h, w = kDwsSpecialised ? SLAK_DWS_W : p.w;
    const int hw = h * w, stride = slak_small_plane_stride(h, w);
    const int ch = blockIdx.x, tid = threadIdx.x, nthreads = blockDim.x;
    const long long n0 = static_cast<long long>(blockIdx.y) * nthreads;
    const int images = static_cast<int>(p.n - n0 < nthreads ? p.n - n0 : nthreads);
    const int khs[kFusedMaxBranches] = {p.kh0, p.kh1, p.kh2};
    const int kws[kFusedMaxBranches] = {p.kw0, p.kw1, p.kw2};
    int woff[kFusedMaxBranches + 1] = {0, 0, 0, 0};
#pragma unroll
    for (int b = 0; b < kFusedMaxBranches; ++b) woff[b + 1] = woff[b] + (b < p.branches ? khs[b] * kws[b] : 0);
    float* s_w = smem;
    float* s_x = smem + ((woff[kFusedMaxBranches] + 3) & ~3);
    float* s_out = s_x + nthreads * stride;
    float* xs = s_x + tid * stride;
    float* os = s_out + tid * stride;

    // Weights of every branch, row-major (flipped for the input gradient), masked taps as zeros.
#pragma unroll
    for (int b = 0; b < kFusedMaxBranches; ++b)
    {
        if (b >= p.branches) break;
        const int taps = khs[b] * kws[b];
        const float* wt = b == 0 ? w0 : b == 1 ? w1 : w2;
        const float* mask = b == 0 ? m0 : b == 1 ? m1 : m2;
        const long long base = static_cast<long long>(ch) * taps;
        for (int t = tid; t < taps; t += nthreads)
        {
            const long long k = base + (p.flip ? taps - 1 - t : t);
            s_w[woff[b] + t] = mask == nullptr ? wt[k] : mask[k] != 0.0f ? wt[k] * mask[k] : 0.0f;
        }
    }

    // Planes (n0 + j, ch) for j < images are contiguous runs of hw values: element e of the block's runs is element
    // e % hw of plane e / hw (coalesced reads and writes).
    const long long plane_elems = static_cast<long long>(p.c) * hw;
    const long long block_off = n0 * plane_elems + static_cast<long long>(ch) * hw;
    const int block_elems = images * hw;

#pragma unroll 1
    for (int b = 0; b < kFusedMaxBranches; ++b)
    {
        if (b >= p.branches) break;
        const dw_store_t* in = b == 0 ? in0 : b == 1 ? in1 : in2;
        // The planes are staged when the branch's input differs from the previous one: once for the forward and the
        // inference sum, once per branch for the input gradient.
        if (b == 0 || (b == 1 ? in1 != in0 : in2 != in1))
        {
            if (b > 0) __syncthreads(); // every thread finished reading the previous branch's planes
            for (int e = tid; e < block_elems; e += nthreads)
            {
                const int j = e / hw, k = e - j * hw;
                s_x[j * stride + k] = dw_load(in + block_off + j * plane_elems + k);
            }
        }
        __syncthreads(); // planes and weights ready; (forward) the previous branch's outputs are written back
        const bool add = p.sum && b > 0;
        if (tid < images)
        {
#if SLAK_DWS_H > 0 && SLAK_DWS_W > 0 && SLAK_DW_KH0 > 0
            if (b == 0) dws_branch<SLAK_DWS_H, SLAK_DWS_W, SLAK_DW_KH0, SLAK_DW_KW0>(xs, os, s_w + woff[0], add);
#if SLAK_DW_KH1 > 0
            else if (b == 1) dws_branch<SLAK_DWS_H, SLAK_DWS_W, SLAK_DW_KH1, SLAK_DW_KW1>(xs, os, s_w + woff[1], add);
#endif
#if SLAK_DW_KH2 > 0
            else dws_branch<SLAK_DWS_H, SLAK_DWS_W, SLAK_DW_KH2, SLAK_DW_KW2>(xs, os, s_w + woff[2], add);
#endif
#else
            dws_branch_generic(xs, os, s_w + woff[b], h, w, khs[b], kws[b], add);
#endif
        }
        if (!p.sum || b == p.branches - 1)
        {
            __syncthreads(); // every thread's output plane is complete
            dw_store_t* out = p.sum ? out0 : b == 0 ? out0 : b == 1 ? out1 : out2;
            for (int e = tid; e < block_elems; e += nthreads)
            {
                const int j = e / hw, k = e - j * hw;
                dw_store(out + block_off + j * plane_elems + k, s_out[j * stride + k]);
            }
        }
    }
}
