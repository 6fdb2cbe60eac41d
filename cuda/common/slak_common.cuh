// slak_common.cuh: device helpers shared by every kernel of cuda/kernels.
//
// NVRTC-safe: no host headers, nothing beyond what NVRTC 11.8, nvcc and the host emulator (cuda/emu/slak_emu.h,
// which defines SLAK_EMU) all provide. Kernels include it as "slak_common.cuh" (include path cuda/common; NVRTC
// named header "slak_common.cuh").
//   - SLAK_DYNAMIC_SHARED(T, name): a T* to the launch's dynamic shared memory;
//   - ceil_div, the global index and grid-stride loop helpers;
//   - warp and block reductions (sum, max) with __shfl_xor_sync;
//   - SLAK_DEVICE_ASSERT(cond): __trap() on the GPU, a message naming the condition in the emulator.
#pragma once

// ---- dynamic shared memory ----
#if !defined(SLAK_EMU)
// All kernels of a module alias the same dynamic shared memory; one byte array declared once, viewed as T.
#define SLAK_DYNAMIC_SHARED(T, name)                                   \
    extern __shared__ __align__(16) unsigned char slak_dynamic_smem_[]; \
    T* name = reinterpret_cast<T*>(slak_dynamic_smem_)
#define SLAK_DEVICE_ASSERT(cond) \
    do { if (!(cond)) __trap(); } while (0)
#else
// SLAK_DYNAMIC_SHARED comes from slak_emu.h (a per-launch buffer).
#define SLAK_DEVICE_ASSERT(cond) \
    do { if (!(cond)) ::slak_emu::device_assert_failed(#cond, __FILE__, __LINE__); } while (0)
#endif

namespace slak
{
// ---- constants ----
constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr float kFltMax = 3.402823466e+38f;

// ---- indexing ----
__host__ __device__ __forceinline__ constexpr long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

// Index of this thread in a 1-D grid of 1-D blocks, in 64 bits (grids may cover more than 2^31 elements).
__device__ __forceinline__ long long global_index_1d()
{
    return static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
}

// Number of threads of a 1-D grid: the step of a grid-stride loop.
__device__ __forceinline__ long long grid_stride_1d() { return static_cast<long long>(gridDim.x) * blockDim.x; }

__device__ __forceinline__ float neg_infinity() { return __int_as_float(static_cast<int>(0xff800000u)); }

// ---- warp reductions (every lane of the warp must call; the result is in every lane) ----
__device__ __forceinline__ float warp_reduce_sum(float v)
{
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
    return v;
}

__device__ __forceinline__ float warp_reduce_max(float v)
{
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
    return v;
}

// ---- block reductions ----
// Contract: 1-D block, blockDim.x a multiple of 32 (<= 1024), every thread of the block calls (no thread has
// returned), and the result is returned to every thread. Consecutive calls are safe (the scratch is guarded).
__device__ __forceinline__ float block_reduce_sum(float v)
{
    __shared__ float warp_partial[kWarpSize];
    __shared__ float result;
    const int lane = threadIdx.x % kWarpSize;
    const int warp = threadIdx.x / kWarpSize;
    const int warps = blockDim.x / kWarpSize;
    v = warp_reduce_sum(v);
    __syncthreads();  // a previous call may still read warp_partial / result
    if (lane == 0) warp_partial[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        float w = lane < warps ? warp_partial[lane] : 0.0f;
        w = warp_reduce_sum(w);
        if (lane == 0) result = w;
    }
    __syncthreads();
    return result;
}

__device__ __forceinline__ float block_reduce_max(float v)
{
    __shared__ float warp_partial[kWarpSize];
    __shared__ float result;
    const int lane = threadIdx.x % kWarpSize;
    const int warp = threadIdx.x / kWarpSize;
    const int warps = blockDim.x / kWarpSize;
    v = warp_reduce_max(v);
    __syncthreads();
    if (lane == 0) warp_partial[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        float w = lane < warps ? warp_partial[lane] : neg_infinity();
        w = warp_reduce_max(w);
        if (lane == 0) result = w;
    }
    __syncthreads();
    return result;
}
}  // namespace slak

// Grid-stride loop over [0, n) of a 1-D launch: SLAK_GRID_STRIDE_LOOP(i, n) { out[i] = ...; }
#define SLAK_GRID_STRIDE_LOOP(i, n) \
    for (long long i = slak::global_index_1d(); i < (n); i += slak::grid_stride_1d())
