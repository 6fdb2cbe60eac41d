// residual.cu: the SLaK block's epilogue as one tiled transpose (src/Slak/Backends/IBackend.Residual.cs): the MLP's
// channels-last output y (N, H, W, C) times the layer scale gamma (C) and the sample's DropPath factor (N), permuted
// back to NCHW and added to the block's input; and its backward for y (the input's gradient is the output gradient
// itself; gamma's gradient is a column sum of the scaled gradient times y, reduce.cu's column_sum).
//
// Launch (LaunchPlans.Rows: one block of kResidualThreads per tile, grid-stride over tiles): a block owns a tile of
// 32 pixels x 32 channels of one image; 8 warps stage it through shared memory (row stride 33: conflict-free both
// ways), reading the channels-last side along channels and the NCHW side along pixels, so both are coalesced.
// Every element is computed with the float operations of the unfused kernels in their order ((y * gamma) * scale,
// then input + that), so the results are the same bits. Launchers: src/Slak.Cuda/Kernels/ResidualKernels.cs; CPU
// counterpart: src/Slak/Backends/Cpu/CpuBackend.Residual.cs.
#include "slak_common.cuh"

constexpr int kResidualTile = 32;
constexpr int kResidualThreads = 256;
static_assert(kResidualThreads == 256, "the kernels' __launch_bounds__ (a literal: kernel-model reads it) is the block");

// Tile coordinates: tile = (n * c_tiles + ct) * p_tiles + pt.
struct ResidualTile
{
    long long n;
    int c0, p0;
};

__device__ __forceinline__ ResidualTile residual_tile(long long tile, int p_tiles, int c_tiles)
{
    ResidualTile t;
    const long long plane = tile / p_tiles;
    t.p0 = static_cast<int>(tile - plane * p_tiles) * kResidualTile;
    t.n = plane / c_tiles;
    t.c0 = static_cast<int>(plane - t.n * c_tiles) * kResidualTile;
    return t;
}

// out[n, c, p] = in[n, c, p] + (y[n, p, c] * gamma[c]) * scale[n]; gamma and scale may be null (not applied).
extern "C" __global__ void __launch_bounds__(256) channels_last_residual_kernel(
    float* __restrict__ out, const float* __restrict__ in, const float* __restrict__ y,
    const float* __restrict__ gamma, const float* __restrict__ scale, int c, int hw, int p_tiles, int c_tiles,
    long long tiles)
{
    __shared__ float s_t[kResidualTile][kResidualTile + 1];
    const int lane = threadIdx.x & 31, row = threadIdx.x >> 5, rows = kResidualThreads / 32;
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x)
    {
        const ResidualTile t = residual_tile(tile, p_tiles, c_tiles);
        const float f = scale != nullptr ? scale[t.n] : 1.0f;
        // Channels-last side: pixel p0 + j, channel c0 + lane (consecutive lanes, consecutive channels).
        for (int j = row; j < kResidualTile; j += rows)
        {
            const int p = t.p0 + j, ch = t.c0 + lane;
            if (p < hw && ch < c)
            {
                float v = y[(t.n * hw + p) * c + ch];
                if (gamma != nullptr) v = v * gamma[ch];
                if (scale != nullptr) v = v * f;
                s_t[j][lane] = v;
            }
        }
        __syncthreads();
        // NCHW side: channel c0 + j, pixel p0 + lane.
        for (int j = row; j < kResidualTile; j += rows)
        {
            const int ch = t.c0 + j, p = t.p0 + lane;
            if (p < hw && ch < c)
            {
                const long long o = (t.n * c + ch) * hw + p;
                out[o] = in[o] + s_t[lane][j];
            }
        }
        __syncthreads(); // the tile is read before the next one overwrites it
    }
}

// g = dout[n, c, p] * scale[n] written channels-last: dy[n, p, c] = g * gamma[c] and, when gs is not null,
// gs[n, p, c] = g (the operand of gamma's column sum); gamma and scale may be null (not applied).
extern "C" __global__ void __launch_bounds__(256) channels_last_residual_bwd_kernel(
    float* __restrict__ dy, float* __restrict__ gs, const float* __restrict__ dout, const float* __restrict__ gamma,
    const float* __restrict__ scale, int c, int hw, int p_tiles, int c_tiles, long long tiles)
{
    __shared__ float s_t[kResidualTile][kResidualTile + 1];
    const int lane = threadIdx.x & 31, row = threadIdx.x >> 5, rows = kResidualThreads / 32;
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x)
    {
        const ResidualTile t = residual_tile(tile, p_tiles, c_tiles);
        const float f = scale != nullptr ? scale[t.n] : 1.0f;
        for (int j = row; j < kResidualTile; j += rows)
        {
            const int ch = t.c0 + j, p = t.p0 + lane;
            if (p < hw && ch < c)
            {
                const float v = dout[(t.n * c + ch) * hw + p];
                s_t[j][lane] = scale != nullptr ? v * f : v;
            }
        }
        __syncthreads();
        for (int j = row; j < kResidualTile; j += rows)
        {
            const int p = t.p0 + j, ch = t.c0 + lane;
            if (p < hw && ch < c)
            {
                const long long o = (t.n * hw + p) * c + ch;
                const float g = s_t[lane][j];
                if (gs != nullptr) gs[o] = g;
                if (dy != nullptr) dy[o] = gamma != nullptr ? g * gamma[ch] : g;
            }
        }
        __syncthreads();
    }
}
