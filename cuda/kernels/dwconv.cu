// dwconv.cu: depthwise "same" convolution, stride 1, NCHW float32, rectangular odd kernels (51x5, 5x51, 5x5, up to
// 151 and dense MxM): forward, input gradient and weight gradient, with an optional 0/1 weight mask.
//
// Forward (tiled): one block per (tile of 32 x 32 outputs, plane n*C + c). The block stages the masked filter and
// the input tile plus its halo in shared memory; each thread owns a column strip of 4 consecutive outputs and
// loops only over the taps whose input lies inside the image (the kernel extent is clipped to the image, so taps
// in the zero padding cost nothing: 27-73% of the long branches' taps at SLaK's stage 3). The input gradient is the
// same computation with the flipped filter. When the staged tile would not fit in 48 KB (huge dense filters), the
// direct kernel reads global memory instead.
// Weight gradient: dw[c, t] = sum_{n, p} x[n, c, p + t - pad] * dy[n, c, p]. Block (channel, chunk of images) walks
// the planes tile by tile (dy tile + x tile with halo in shared memory) and accumulates every tap of the filter in
// shared memory (thread k owns taps k, k + blockDim, ...: no atomics); per-chunk partials are summed by
// column_sum_finalize_kernel (reduce.cu), so the result is deterministic. Masked taps are skipped (written as 0)
// when skip_masked is set.
// Launchers: src/Slak.Cuda/Kernels/DwConvKernels.cs; CPU counterpart: src/Slak/Backends/Cpu/CpuDwConv*.cs.
// Params structs (DwConvParams, DwWgradParams), tile constants and launch plans: slak/slak_params.h, slak/slak_plan.h.
#include "slak_common.cuh"
#include "slak/slak_params.h"

static_assert(kDwFwdThreads == 256, "dwconv_fwd_tiled_kernel's __launch_bounds__ is the block of its plan");

__device__ __forceinline__ float dw_tap(const float* __restrict__ wt, const float* __restrict__ mask, long long base,
                                        int i, int j, const DwConvParams& p)
{
    const int ii = p.flip ? p.kh - 1 - i : i;
    const int jj = p.flip ? p.kw - 1 - j : j;
    const long long k = base + static_cast<long long>(ii) * p.kw + jj;
    return mask != nullptr ? wt[k] * mask[k] : wt[k];
}

// ---- forward / input gradient ----

extern "C" __global__ void __launch_bounds__(256) dwconv_fwd_tiled_kernel(float* __restrict__ y,
                                                                          const float* __restrict__ x,
                                                                          const float* __restrict__ wt,
                                                                          const float* __restrict__ mask,
                                                                          DwConvParams p)
{
    SLAK_DYNAMIC_SHARED(float, smem);
    const int ph = p.kh / 2, pw = p.kw / 2;
    const int tile_x = blockIdx.x * kDwTileW, tile_y = blockIdx.y * kDwTileH;
    const long long plane = blockIdx.z;
    const int ch = static_cast<int>(plane % p.c);
    const int sw = kDwTileW + p.kw - 1, sh = kDwTileH + p.kh - 1;
    float* s_w = smem;
    float* s_x = smem + p.kh * p.kw;
    const int tid = threadIdx.y * blockDim.x + threadIdx.x, nthreads = blockDim.x * blockDim.y;

    const long long wbase = static_cast<long long>(ch) * p.kh * p.kw;
    for (int k = tid; k < p.kh * p.kw; k += nthreads) s_w[k] = dw_tap(wt, mask, wbase, k / p.kw, k % p.kw, p);
    const float* xp = x + plane * p.h * p.w;
    for (int k = tid; k < sh * sw; k += nthreads)
    {
        const int hi = tile_y - ph + k / sw, wi = tile_x - pw + k % sw;
        s_x[k] = (hi >= 0 && hi < p.h && wi >= 0 && wi < p.w) ? xp[static_cast<long long>(hi) * p.w + wi] : 0.0f;
    }
    __syncthreads();

    const int q = tile_x + threadIdx.x;
    if (q >= p.w) return;
    const int j0 = max(0, pw - q), j1 = min(p.kw, p.w + pw - q);
    float* yp = y + plane * p.h * p.w;
#pragma unroll
    for (int k = 0; k < kDwRowsPerThread; ++k)
    {
        const int r = tile_y + threadIdx.y * kDwRowsPerThread + k;
        if (r >= p.h) break;
        const int i0 = max(0, ph - r), i1 = min(p.kh, p.h + ph - r);
        const int ly = threadIdx.y * kDwRowsPerThread + k;
        float acc = 0.0f;
        for (int i = i0; i < i1; ++i)
        {
            const float* srow = s_x + (ly + i) * sw + threadIdx.x;
            const float* wrow = s_w + i * p.kw;
            for (int j = j0; j < j1; ++j) acc = fmaf(srow[j], wrow[j], acc);
        }
        yp[static_cast<long long>(r) * p.w + q] = acc;
    }
}

// Fallback for filters whose staged tile exceeds shared memory: one thread per output, global-memory reads.
extern "C" __global__ void dwconv_fwd_direct_kernel(float* __restrict__ y, const float* __restrict__ x,
                                                    const float* __restrict__ wt, const float* __restrict__ mask,
                                                    DwConvParams p)
{
    const int ph = p.kh / 2, pw = p.kw / 2;
    const long long total = static_cast<long long>(p.n) * p.c * p.h * p.w;
    SLAK_GRID_STRIDE_LOOP(o, total)
    {
        const int q = static_cast<int>(o % p.w), r = static_cast<int>((o / p.w) % p.h);
        const long long plane = o / (static_cast<long long>(p.w) * p.h);
        const long long wbase = (plane % p.c) * p.kh * p.kw;
        const float* xp = x + plane * p.h * p.w;
        const int i0 = max(0, ph - r), i1 = min(p.kh, p.h + ph - r);
        const int j0 = max(0, pw - q), j1 = min(p.kw, p.w + pw - q);
        float acc = 0.0f;
        for (int i = i0; i < i1; ++i)
            for (int j = j0; j < j1; ++j)
                acc = fmaf(xp[static_cast<long long>(r - ph + i) * p.w + (q - pw + j)], dw_tap(wt, mask, wbase, i, j, p),
                           acc);
        y[o] = acc;
    }
}

// ---- weight gradient ----

// partials[chunk, c, t]: block (c, chunk); shared = taps accumulators + dy tile + x tile with halo.
extern "C" __global__ void dwconv_wgrad_tiled_kernel(float* __restrict__ partials, const float* __restrict__ x,
                                                     const float* __restrict__ dy, const float* __restrict__ mask,
                                                     DwWgradParams p)
{
    SLAK_DYNAMIC_SHARED(float, smem);
    const int ch = blockIdx.x, chunk = blockIdx.y;
    const int taps = p.kh * p.kw, ph = p.kh / 2, pw = p.kw / 2;
    const int xw = p.tile_w + p.kw - 1, xh = p.tile_h + p.kh - 1;
    float* s_acc = smem;
    float* s_dy = smem + taps;
    float* s_x = s_dy + p.tile_h * p.tile_w;
    const long long mbase = static_cast<long long>(ch) * taps;
    for (int t = threadIdx.x; t < taps; t += blockDim.x) s_acc[t] = 0.0f;

    const int img0 = chunk * p.images_per_chunk;
    const int img1 = min(p.n, img0 + p.images_per_chunk);
    for (int img = img0; img < img1; ++img)
    {
        const long long plane = (static_cast<long long>(img) * p.c + ch) * p.h * p.w;
        for (int ty = 0; ty < p.h; ty += p.tile_h)
            for (int tx = 0; tx < p.w; tx += p.tile_w)
            {
                __syncthreads(); // the previous tile is no longer read
                for (int k = threadIdx.x; k < p.tile_h * p.tile_w; k += blockDim.x)
                {
                    const int r = ty + k / p.tile_w, q = tx + k % p.tile_w;
                    s_dy[k] = (r < p.h && q < p.w) ? dy[plane + static_cast<long long>(r) * p.w + q] : 0.0f;
                }
                for (int k = threadIdx.x; k < xh * xw; k += blockDim.x)
                {
                    const int hi = ty - ph + k / xw, wi = tx - pw + k % xw;
                    s_x[k] = (hi >= 0 && hi < p.h && wi >= 0 && wi < p.w)
                                 ? x[plane + static_cast<long long>(hi) * p.w + wi] : 0.0f;
                }
                __syncthreads();
                for (int t = threadIdx.x; t < taps; t += blockDim.x)
                {
                    if (p.skip_masked && mask != nullptr && mask[mbase + t] == 0.0f) continue;
                    const int i = t / p.kw, j = t % p.kw;
                    float acc = 0.0f;
                    for (int r = 0; r < p.tile_h; ++r)
                    {
                        const float* g = s_dy + r * p.tile_w;
                        const float* xs = s_x + (r + i) * xw + j;
                        for (int q = 0; q < p.tile_w; ++q) acc = fmaf(g[q], xs[q], acc);
                    }
                    s_acc[t] += acc;
                }
            }
    }
    __syncthreads();
    float* out = partials + static_cast<long long>(chunk) * p.c * taps + mbase;
    for (int t = threadIdx.x; t < taps; t += blockDim.x) out[t] = s_acc[t];
}

// Fallback when the taps do not fit in shared memory: one thread per (channel, tap) of this chunk.
extern "C" __global__ void dwconv_wgrad_direct_kernel(float* __restrict__ partials, const float* __restrict__ x,
                                                      const float* __restrict__ dy, const float* __restrict__ mask,
                                                      DwWgradParams p)
{
    const int taps = p.kh * p.kw, ph = p.kh / 2, pw = p.kw / 2, chunk = blockIdx.y;
    const long long total = static_cast<long long>(p.c) * taps;
    for (long long o = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; o < total;
         o += static_cast<long long>(gridDim.x) * blockDim.x)
    {
        float acc = 0.0f;
        if (!(p.skip_masked && mask != nullptr && mask[o] == 0.0f))
        {
            const int ch = static_cast<int>(o / taps), t = static_cast<int>(o % taps);
            const int i = t / p.kw, j = t % p.kw;
            const int r0 = max(0, ph - i), r1 = min(p.h, p.h + ph - i);
            const int q0 = max(0, pw - j), q1 = min(p.w, p.w + pw - j);
            const int img0 = chunk * p.images_per_chunk, img1 = min(p.n, img0 + p.images_per_chunk);
            for (int img = img0; img < img1; ++img)
            {
                const long long plane = (static_cast<long long>(img) * p.c + ch) * p.h * p.w;
                for (int r = r0; r < r1; ++r)
                    for (int q = q0; q < q1; ++q)
                        acc = fmaf(dy[plane + static_cast<long long>(r) * p.w + q],
                                   x[plane + static_cast<long long>(r - ph + i) * p.w + (q - pw + j)], acc);
            }
        }
        partials[static_cast<long long>(chunk) * total + o] = acc;
    }
}
