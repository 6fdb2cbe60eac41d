// reduce.cu: deterministic reductions and layout kernels: sums over all elements (two passes through per-block
// partials, so the result does not depend on scheduling), column sums of a (rows, C) matrix (bias and layer-scale
// gradients, BatchNorm/LayerNorm parameter gradients), global average pooling, and dimension permutation.
//
// Launchers: src/Slak.Cuda/Kernels/ReduceKernels.cs.
#include "slak_common.cuh"
#include "slak/slak_params.h"  // PermuteParams

// ---- sum over all elements ----

// partials[blockIdx.x] = sum over this block's grid-stride share of x (of x^2 when squares != 0).
// Launch a fixed grid, then once more with one block over the partials: the order of additions is fixed.
extern "C" __global__ void sum_partial_kernel(float* __restrict__ partials, const float* __restrict__ x, int squares,
                                              long long n)
{
    float acc = 0.0f;
    SLAK_GRID_STRIDE_LOOP(i, n)
    {
        const float v = x[i];
        acc += squares ? v * v : v;
    }
    acc = slak::block_reduce_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// ---- column sums of a (rows, c) row-major matrix ----

// partials[chunk, j] = sum over rows [chunk*rows_per_chunk, ...) of a[r, j] (* b[r, j] when b is not null).
// grid (ceil(c / blockDim.x), chunks); each thread owns one column, so loads are coalesced along the row.
extern "C" __global__ void column_sum_partial_kernel(float* __restrict__ partials, const float* __restrict__ a,
                                                     const float* __restrict__ b, long long rows, int c,
                                                     long long rows_per_chunk)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= c) return;
    const long long r0 = static_cast<long long>(blockIdx.y) * rows_per_chunk;
    long long r1 = r0 + rows_per_chunk;
    if (r1 > rows) r1 = rows;
    float acc = 0.0f;
    for (long long r = r0; r < r1; ++r)
    {
        const float v = a[r * c + j];
        acc += b != nullptr ? v * b[r * c + j] : v;
    }
    partials[static_cast<long long>(blockIdx.y) * c + j] = acc;
}

// out[j] = sum over chunks of partials[chunk, j]
extern "C" __global__ void column_sum_finalize_kernel(float* __restrict__ out, const float* __restrict__ partials,
                                                      int chunks, int c)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= c) return;
    float acc = 0.0f;
    for (int k = 0; k < chunks; ++k) acc += partials[static_cast<long long>(k) * c + j];
    out[j] = acc;
}

// ---- global average pooling over H*W ----

// y[p] = mean of plane p of x (planes = N*C, one block per plane)
extern "C" __global__ void global_avg_pool_kernel(float* __restrict__ y, const float* __restrict__ x, int hw)
{
    const float* plane = x + static_cast<long long>(blockIdx.x) * hw;
    float acc = 0.0f;
    for (int i = threadIdx.x; i < hw; i += blockDim.x) acc += plane[i];
    acc = slak::block_reduce_sum(acc);
    if (threadIdx.x == 0) y[blockIdx.x] = acc / static_cast<float>(hw);
}

// dx[p, i] = dy[p] / hw
extern "C" __global__ void global_avg_pool_bwd_kernel(float* __restrict__ dx, const float* __restrict__ dy, int hw,
                                                      long long n)
{
    const float inv = 1.0f / static_cast<float>(hw);
    SLAK_GRID_STRIDE_LOOP(i, n) dx[i] = dy[i / hw] * inv;
}

// ---- permutation ----

// PermuteParams (slak/slak_params.h): the output's shape and, for each output dimension, the stride of the input
// dimension it reads (rank <= kPermuteMaxRank = 8).
static_assert(kPermuteMaxRank == 8, "permute_kernel unrolls over 8 dimensions");

// y[o] = x[source(o)]: decode the output index digit by digit, accumulate the permuted input strides.
extern "C" __global__ void permute_kernel(float* __restrict__ y, const float* __restrict__ x, PermuteParams p,
                                          long long n)
{
    SLAK_GRID_STRIDE_LOOP(o, n)
    {
        long long rem = o, src = 0;
        // Fully unrolled over the maximum rank so every index into p is a compile-time constant: the parameter
        // struct then stays in constant space instead of being copied to a local-memory stack frame.
#pragma unroll
        for (int d = 7; d >= 0; --d)
        {
            if (d >= p.rank) continue;
            const long long digit = rem % p.out_shape[d];
            rem /= p.out_shape[d];
            src += digit * p.in_stride[d];
        }
        y[o] = x[src];
    }
}
