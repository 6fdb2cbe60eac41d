// norm.cu: LayerNorm over the last dimension (block LN, head LN), LayerNorm over the channels of NCHW tensors
// (stem / downsampling LN, "channels_first"), and BatchNorm2d (one per large-kernel branch): forward, backward and
// BatchNorm's running-statistics update. LayerNorm statistics use two passes (mean, then centred squares); BatchNorm's
// use float64 sums (see the BatchNorm section).
//
// Parameter gradients (dweight, dbias) of the last-dim LayerNorm are column sums: the per-chunk partials are
// written here and summed by column_sum_finalize_kernel (reduce.cu), which keeps the result deterministic.
// Launchers: src/Slak.Cuda/Kernels/NormKernels.cs.
#include "slak_common.cuh"

// ---- LayerNorm over the last dimension: one block per row ----

extern "C" __global__ void layernorm_fwd_kernel(float* __restrict__ y, float* __restrict__ mean,
                                                float* __restrict__ rstd, const float* __restrict__ x,
                                                const float* __restrict__ w, const float* __restrict__ b, float eps,
                                                int c)
{
    const long long row = blockIdx.x;
    const float* xr = x + row * c;
    float s = 0.0f;
    for (int j = threadIdx.x; j < c; j += blockDim.x) s += xr[j];
    const float mu = slak::block_reduce_sum(s) / c;
    float sq = 0.0f;
    for (int j = threadIdx.x; j < c; j += blockDim.x)
    {
        const float d = xr[j] - mu;
        sq += d * d;
    }
    const float rs = rsqrtf(slak::block_reduce_sum(sq) / c + eps);
    float* yr = y + row * c;
    for (int j = threadIdx.x; j < c; j += blockDim.x) yr[j] = (xr[j] - mu) * rs * w[j] + b[j];
    if (threadIdx.x == 0)
    {
        mean[row] = mu;
        rstd[row] = rs;
    }
}

// dx = rstd * (dy*w - mean(dy*w) - xhat * mean(dy*w*xhat)), one block per row
extern "C" __global__ void layernorm_bwd_data_kernel(float* __restrict__ dx, const float* __restrict__ x,
                                                     const float* __restrict__ w, const float* __restrict__ mean,
                                                     const float* __restrict__ rstd, const float* __restrict__ dy,
                                                     int c)
{
    const long long row = blockIdx.x;
    const float* xr = x + row * c;
    const float* gr = dy + row * c;
    const float mu = mean[row], rs = rstd[row];
    float a = 0.0f, bsum = 0.0f;
    for (int j = threadIdx.x; j < c; j += blockDim.x)
    {
        const float gh = gr[j] * w[j];
        a += gh;
        bsum += gh * (xr[j] - mu) * rs;
    }
    const float ma = slak::block_reduce_sum(a) / c;
    const float mb = slak::block_reduce_sum(bsum) / c;
    float* dr = dx + row * c;
    for (int j = threadIdx.x; j < c; j += blockDim.x)
        dr[j] = rs * (gr[j] * w[j] - ma - (xr[j] - mu) * rs * mb);
}

// Per-chunk partial column sums of dy*xhat (-> dweight) and dy (-> dbias); grid (ceil(c/blockDim.x), chunks).
extern "C" __global__ void layernorm_bwd_param_partial_kernel(float* __restrict__ dw_partial,
                                                              float* __restrict__ db_partial,
                                                              const float* __restrict__ x,
                                                              const float* __restrict__ mean,
                                                              const float* __restrict__ rstd,
                                                              const float* __restrict__ dy, long long rows, int c,
                                                              long long rows_per_chunk)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= c) return;
    const long long r0 = static_cast<long long>(blockIdx.y) * rows_per_chunk;
    long long r1 = r0 + rows_per_chunk;
    if (r1 > rows) r1 = rows;
    float aw = 0.0f, ab = 0.0f;
    for (long long r = r0; r < r1; ++r)
    {
        const float g = dy[r * c + j];
        aw += g * (x[r * c + j] - mean[r]) * rstd[r];
        ab += g;
    }
    dw_partial[static_cast<long long>(blockIdx.y) * c + j] = aw;
    db_partial[static_cast<long long>(blockIdx.y) * c + j] = ab;
}

// ---- LayerNorm over rows of at most 1,024: one warp per row, the row held in registers ----
// Lane `lane` holds the row's columns ln_col(k, lane), k < kN: with kVec (c a multiple of 4 and every pointer 16-byte
// aligned) 128-bit loads of float4 number lane + 32 * (k / 4), else the scalar column lane + 32 * k (both coalesced).
// One kernel per row class W = 32 * kN (128, 256, 512, 1024: SLaK-T's 124 / 249 / 499 / 998), so that the narrow
// rows do not pay the wide rows' registers (occupancy). Statistics in fp32, two passes over the registers (mean, then
// centred squares); warp sums use a fixed shuffle tree, so results are deterministic. Wider rows take the
// block-per-row kernels above.

constexpr int kLnWarps = 8;  // rows (forward) or row chunks (backward) per 256-thread block

template <bool kVec>
__device__ __forceinline__ int ln_col(int k, int lane)
{
    return kVec ? 4 * (lane + 32 * (k / 4)) + k % 4 : lane + 32 * k;
}

// v[k] = p[ln_col(k, lane)] for columns below c, 0 elsewhere.
template <int kN, bool kVec>
__device__ __forceinline__ void ln_load(float (&v)[kN], const float* __restrict__ p, int c, int lane)
{
#pragma unroll
    for (int k = 0; k < kN; k += kVec ? 4 : 1)
    {
        const int j = ln_col<kVec>(k, lane);
        if (kVec)
        {
            const float4 q = j < c ? *reinterpret_cast<const float4*>(p + j) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            v[k] = q.x;
            v[k + 1] = q.y;
            v[k + 2] = q.z;
            v[k + 3] = q.w;
        }
        else
        {
            v[k] = j < c ? p[j] : 0.0f;
        }
    }
}

template <int kN, bool kVec>
__device__ __forceinline__ void ln_store(float* __restrict__ p, const float (&v)[kN], int c, int lane)
{
#pragma unroll
    for (int k = 0; k < kN; k += kVec ? 4 : 1)
    {
        const int j = ln_col<kVec>(k, lane);
        if (j >= c) continue;
        if (kVec)
            *reinterpret_cast<float4*>(p + j) = make_float4(v[k], v[k + 1], v[k + 2], v[k + 3]);
        else
            p[j] = v[k];
    }
}

template <int kN, bool kVec>
__device__ __forceinline__ void ln_rows_fwd(float* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd,
                                            const float* __restrict__ x, const float* __restrict__ w,
                                            const float* __restrict__ b, float eps, long long rows, int c)
{
    const int lane = threadIdx.x % 32;
    const long long row = static_cast<long long>(blockIdx.x) * kLnWarps + threadIdx.x / 32;
    if (row >= rows) return;  // whole warps only
    float v[kN];
    ln_load<kN, kVec>(v, x + row * c, c, lane);
    const float inv_c = 1.0f / static_cast<float>(c);
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < kN; ++k) s += v[k];
    const float mu = slak::warp_reduce_sum(s) * inv_c;
    float sq = 0.0f;
#pragma unroll
    for (int k = 0; k < kN; ++k)
    {
        const float d = ln_col<kVec>(k, lane) < c ? v[k] - mu : 0.0f;
        sq += d * d;
    }
    const float rs = rsqrtf(slak::warp_reduce_sum(sq) * inv_c + eps);
    float wv[kN];
    ln_load<kN, kVec>(wv, w, c, lane);
#pragma unroll
    for (int k = 0; k < kN; ++k) v[k] = (v[k] - mu) * rs * wv[k];
    ln_load<kN, kVec>(wv, b, c, lane);
#pragma unroll
    for (int k = 0; k < kN; ++k) v[k] += wv[k];
    ln_store<kN, kVec>(y + row * c, v, c, lane);
    if (lane == 0)
    {
        mean[row] = mu;
        rstd[row] = rs;
    }
}

template <int kN, bool kVec>
__device__ __forceinline__ void ln_rows_bwd(float* __restrict__ dx, float* __restrict__ dw_part,
                                            float* __restrict__ db_part, const float* __restrict__ x,
                                            const float* __restrict__ w, const float* __restrict__ mean,
                                            const float* __restrict__ rstd, const float* __restrict__ dy,
                                            long long rows, int c, int rows_per_chunk, int chunks)
{
    const int lane = threadIdx.x % 32;
    const int chunk = static_cast<int>(blockIdx.x) * kLnWarps + static_cast<int>(threadIdx.x / 32);
    if (chunk >= chunks) return;  // whole warps only
    const long long r0 = static_cast<long long>(chunk) * rows_per_chunk;
    const long long r1 = min(r0 + rows_per_chunk, rows);
    const float inv_c = 1.0f / static_cast<float>(c);
    float aw[kN], ab[kN];
#pragma unroll
    for (int k = 0; k < kN; ++k) aw[k] = ab[k] = 0.0f;
    for (long long row = r0; row < r1; ++row)
    {
        float v[kN], g[kN], wv[kN];
        ln_load<kN, kVec>(v, x + row * c, c, lane);
        ln_load<kN, kVec>(g, dy + row * c, c, lane);
        ln_load<kN, kVec>(wv, w, c, lane);
        const float mu = mean[row], rs = rstd[row];
        float sa = 0.0f, sb = 0.0f;
#pragma unroll
        for (int k = 0; k < kN; ++k)
        {
            v[k] = ln_col<kVec>(k, lane) < c ? (v[k] - mu) * rs : 0.0f;  // xhat
            const float gh = g[k] * wv[k];
            sa += gh;
            sb += gh * v[k];
            aw[k] += g[k] * v[k];
            ab[k] += g[k];
        }
        const float ma = slak::warp_reduce_sum(sa) * inv_c;
        const float mb = slak::warp_reduce_sum(sb) * inv_c;
#pragma unroll
        for (int k = 0; k < kN; ++k) g[k] = rs * (g[k] * wv[k] - ma - v[k] * mb);
        ln_store<kN, kVec>(dx + row * c, g, c, lane);
    }
    ln_store<kN, kVec>(dw_part + static_cast<long long>(chunk) * c, aw, c, lane);
    ln_store<kN, kVec>(db_part + static_cast<long long>(chunk) * c, ab, c, lane);
}

// The row-class kernels: one launch entry per direction that picks the column mapping (vec: c a multiple of 4 and
// every pointer 16-byte aligned, else scalar columns), and one line per class W = 32 * kN. The parameter lists are
// written once (the macros below, local to this section); the kernel names stay literal, because the kernel scanners
// (KernelSources, which NVRTC's kernel lookup and the GPU-check coverage use, and the emulator's gen_registry.cmake)
// read each name from its `extern "C" __global__` declaration.
// layernorm_rowsW_fwd_kernel: one warp per row, grid ceil(rows / kLnWarps) blocks of 32 * kLnWarps threads, c <= W.
// layernorm_rowsW_bwd_kernel: one warp per chunk of rows_per_chunk rows: dx row by row (dx = rstd * (dy*w -
// mean(dy*w) - xhat * mean(dy*w*xhat))) and the chunk's column sums of dy*xhat and dy, written to
// dw_part / db_part[chunk][c] and summed in chunk order by layernorm_param_finalize_kernel. x and dy are read once.
template <int kN>
__device__ __forceinline__ void ln_rows_fwd_entry(float* __restrict__ y, float* __restrict__ mean,
                                                  float* __restrict__ rstd, const float* __restrict__ x,
                                                  const float* __restrict__ w, const float* __restrict__ b, float eps,
                                                  long long rows, int c, int vec)
{
    if (vec)
        ln_rows_fwd<kN, true>(y, mean, rstd, x, w, b, eps, rows, c);
    else
        ln_rows_fwd<kN, false>(y, mean, rstd, x, w, b, eps, rows, c);
}

template <int kN>
__device__ __forceinline__ void ln_rows_bwd_entry(float* __restrict__ dx, float* __restrict__ dw_part,
                                                  float* __restrict__ db_part, const float* __restrict__ x,
                                                  const float* __restrict__ w, const float* __restrict__ mean,
                                                  const float* __restrict__ rstd, const float* __restrict__ dy,
                                                  long long rows, int c, int rows_per_chunk, int chunks, int vec)
{
    if (vec)
        ln_rows_bwd<kN, true>(dx, dw_part, db_part, x, w, mean, rstd, dy, rows, c, rows_per_chunk, chunks);
    else
        ln_rows_bwd<kN, false>(dx, dw_part, db_part, x, w, mean, rstd, dy, rows, c, rows_per_chunk, chunks);
}

#define SLAK_LN_FWD_PARAMS                                                                                             \
    float* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd, const float* __restrict__ x,            \
        const float* __restrict__ w, const float* __restrict__ b, float eps, long long rows, int c, int vec
#define SLAK_LN_FWD_ARGS y, mean, rstd, x, w, b, eps, rows, c, vec
#define SLAK_LN_BWD_PARAMS                                                                                             \
    float* __restrict__ dx, float* __restrict__ dw_part, float* __restrict__ db_part, const float* __restrict__ x,     \
        const float* __restrict__ w, const float* __restrict__ mean, const float* __restrict__ rstd,                   \
        const float* __restrict__ dy, long long rows, int c, int rows_per_chunk, int chunks, int vec
#define SLAK_LN_BWD_ARGS dx, dw_part, db_part, x, w, mean, rstd, dy, rows, c, rows_per_chunk, chunks, vec

extern "C" __global__ void layernorm_rows128_fwd_kernel(SLAK_LN_FWD_PARAMS) { ln_rows_fwd_entry<4>(SLAK_LN_FWD_ARGS); }
extern "C" __global__ void layernorm_rows128_bwd_kernel(SLAK_LN_BWD_PARAMS) { ln_rows_bwd_entry<4>(SLAK_LN_BWD_ARGS); }
extern "C" __global__ void layernorm_rows256_fwd_kernel(SLAK_LN_FWD_PARAMS) { ln_rows_fwd_entry<8>(SLAK_LN_FWD_ARGS); }
extern "C" __global__ void layernorm_rows256_bwd_kernel(SLAK_LN_BWD_PARAMS) { ln_rows_bwd_entry<8>(SLAK_LN_BWD_ARGS); }
extern "C" __global__ void layernorm_rows512_fwd_kernel(SLAK_LN_FWD_PARAMS) { ln_rows_fwd_entry<16>(SLAK_LN_FWD_ARGS); }
extern "C" __global__ void layernorm_rows512_bwd_kernel(SLAK_LN_BWD_PARAMS) { ln_rows_bwd_entry<16>(SLAK_LN_BWD_ARGS); }
extern "C" __global__ void layernorm_rows1024_fwd_kernel(SLAK_LN_FWD_PARAMS) { ln_rows_fwd_entry<32>(SLAK_LN_FWD_ARGS); }
extern "C" __global__ void layernorm_rows1024_bwd_kernel(SLAK_LN_BWD_PARAMS) { ln_rows_bwd_entry<32>(SLAK_LN_BWD_ARGS); }

#undef SLAK_LN_FWD_PARAMS
#undef SLAK_LN_FWD_ARGS
#undef SLAK_LN_BWD_PARAMS
#undef SLAK_LN_BWD_ARGS

// dw[j] = sum over chunks of dw_part[chunk][j] (db likewise): one warp per column, lanes over chunks in a fixed
// order, then the fixed shuffle tree (deterministic for a given chunk count).
extern "C" __global__ void layernorm_param_finalize_kernel(float* __restrict__ dw, float* __restrict__ db,
                                                           const float* __restrict__ dw_part,
                                                           const float* __restrict__ db_part, int chunks, int c)
{
    const int j = static_cast<int>(blockIdx.x) * kLnWarps + static_cast<int>(threadIdx.x / 32);
    if (j >= c) return;  // whole warps only
    const int lane = threadIdx.x % 32;
    float sw = 0.0f, sb = 0.0f;
    for (int k = lane; k < chunks; k += 32)
    {
        sw += dw_part[static_cast<long long>(k) * c + j];
        sb += db_part[static_cast<long long>(k) * c + j];
    }
    sw = slak::warp_reduce_sum(sw);
    sb = slak::warp_reduce_sum(sb);
    if (lane == 0)
    {
        dw[j] = sw;
        db[j] = sb;
    }
}

// ---- LayerNorm over channels of (N, C, HW): one thread per pixel, loops over C (coalesced along HW) ----

extern "C" __global__ void layernorm_cf_fwd_kernel(float* __restrict__ y, float* __restrict__ mean,
                                                   float* __restrict__ rstd, const float* __restrict__ x,
                                                   const float* __restrict__ w, const float* __restrict__ b,
                                                   float eps, int c, int hw, long long pixels)
{
    SLAK_GRID_STRIDE_LOOP(pix, pixels)
    {
        const long long n = pix / hw, p = pix % hw;
        const float* xp = x + n * c * hw + p;
        float s = 0.0f;
        for (int ch = 0; ch < c; ++ch) s += xp[static_cast<long long>(ch) * hw];
        const float mu = s / c;
        float sq = 0.0f;
        for (int ch = 0; ch < c; ++ch)
        {
            const float d = xp[static_cast<long long>(ch) * hw] - mu;
            sq += d * d;
        }
        const float rs = rsqrtf(sq / c + eps);
        float* yp = y + n * c * hw + p;
        for (int ch = 0; ch < c; ++ch)
            yp[static_cast<long long>(ch) * hw] = (xp[static_cast<long long>(ch) * hw] - mu) * rs * w[ch] + b[ch];
        mean[pix] = mu;
        rstd[pix] = rs;
    }
}

extern "C" __global__ void layernorm_cf_bwd_data_kernel(float* __restrict__ dx, const float* __restrict__ x,
                                                        const float* __restrict__ w, const float* __restrict__ mean,
                                                        const float* __restrict__ rstd,
                                                        const float* __restrict__ dy, int c, int hw,
                                                        long long pixels)
{
    SLAK_GRID_STRIDE_LOOP(pix, pixels)
    {
        const long long n = pix / hw, p = pix % hw;
        const long long base = n * c * hw + p;
        const float mu = mean[pix], rs = rstd[pix];
        float a = 0.0f, bsum = 0.0f;
        for (int ch = 0; ch < c; ++ch)
        {
            const long long k = base + static_cast<long long>(ch) * hw;
            const float gh = dy[k] * w[ch];
            a += gh;
            bsum += gh * (x[k] - mu) * rs;
        }
        a /= c;
        bsum /= c;
        for (int ch = 0; ch < c; ++ch)
        {
            const long long k = base + static_cast<long long>(ch) * hw;
            dx[k] = rs * (dy[k] * w[ch] - a - (x[k] - mu) * rs * bsum);
        }
    }
}

// ---- Parameter gradients of the channels-first LayerNorm: partials per (image, pixel chunk), then in order ----
// Block `blockIdx.x` = image * pixel_chunks + chunk covers kLnCfChunk pixels of one image; warp w takes channels
// w, w + kLnWarps, ...; lanes run along the pixels (coalesced along HW) with the chunk's mean and 1/std in
// registers, and the warp's sums go through the fixed shuffle tree to dw_part / db_part[blockIdx.x][ch]
// (layernorm_param_finalize_kernel adds them in block order). No 64-bit division: one 32-bit division per block.

constexpr int kLnCfPerLane = 32;
constexpr int kLnCfChunk = 32 * kLnCfPerLane;  // pixels per block

extern "C" __global__ void layernorm_cf_bwd_param_partial_kernel(float* __restrict__ dw_part,
                                                                 float* __restrict__ db_part,
                                                                 const float* __restrict__ x,
                                                                 const float* __restrict__ mean,
                                                                 const float* __restrict__ rstd,
                                                                 const float* __restrict__ dy, int c, int hw,
                                                                 int pixel_chunks)
{
    const int img = static_cast<int>(blockIdx.x) / pixel_chunks;
    const int p0 = (static_cast<int>(blockIdx.x) - img * pixel_chunks) * kLnCfChunk;
    const int lane = threadIdx.x % 32;
    const long long stat = static_cast<long long>(img) * hw;
    float mu[kLnCfPerLane], rs[kLnCfPerLane];
#pragma unroll
    for (int i = 0; i < kLnCfPerLane; ++i)
    {
        const int p = p0 + lane + 32 * i;
        mu[i] = p < hw ? mean[stat + p] : 0.0f;
        rs[i] = p < hw ? rstd[stat + p] : 0.0f;
    }
    for (int ch = static_cast<int>(threadIdx.x / 32); ch < c; ch += kLnWarps)
    {
        const long long base = (static_cast<long long>(img) * c + ch) * hw;
        float aw = 0.0f, ab = 0.0f;
#pragma unroll
        for (int i = 0; i < kLnCfPerLane; ++i)
        {
            const int p = p0 + lane + 32 * i;
            if (p < hw)
            {
                const float g = dy[base + p];
                aw += g * (x[base + p] - mu[i]) * rs[i];
                ab += g;
            }
        }
        aw = slak::warp_reduce_sum(aw);
        ab = slak::warp_reduce_sum(ab);
        if (lane == 0)
        {
            dw_part[static_cast<long long>(blockIdx.x) * c + ch] = aw;
            db_part[static_cast<long long>(blockIdx.x) * c + ch] = ab;
        }
    }
}

// ---- BatchNorm2d over (N, C, HW) ----
// Channel ch's elements are the n planes x[img, ch, :] of hw floats; a channel's n*hw elements are cut into fixed
// chunks of kBnChunk (a constant, so the partial sums and their order depend on the shape only, never on the device or
// the grid). Pass 1 (batchnorm_sums_kernel): one block per (channel, chunk) writes float64 partial sums to a
// workspace. Pass 2 (one thread per channel) adds a channel's partials in chunk order and writes the statistics (or
// the parameter gradients) and four per-channel coefficients; the element pass (batchnorm_affine_kernel /
// batchnorm_bwd_dx_kernel) is then one kernel for apply, eval and dx. The element loops hold no 64-bit division: a
// block finds its first plane once, then walks plane segments (128-bit loads where the segment is 16-byte aligned);
// planes shorter than kBnSmallPlane are walked per element with 32-bit divisions of block-local offsets.

constexpr int kBnChunk = 8192;       // elements of one channel per statistics block
constexpr int kBnElemChunk = 8192;   // elements of the tensor per element-pass block
constexpr int kBnSmallPlane = 512;   // planes below this many elements take the per-element path

// Block sum of a double (same contract as slak::block_reduce_sum; fixed shuffle tree: deterministic).
__device__ __forceinline__ double bn_block_sum(double v)
{
    __shared__ double warp_partial[32];
    __shared__ double result;
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    const int warps = blockDim.x / 32;
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    __syncthreads();
    if (lane == 0) warp_partial[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        double w = lane < warps ? warp_partial[lane] : 0.0;
#pragma unroll
        for (int offset = 16; offset > 0; offset /= 2) w += __shfl_xor_sync(0xffffffffu, w, offset);
        if (lane == 0) result = w;
    }
    __syncthreads();
    return result;
}

// Partial sums of chunk `blockIdx.x % chunks` of channel `blockIdx.x / chunks`: s1 = sum b, s2 = sum b*a
// (statistics: a = b = x, kPair false reads x once; backward: a = x, b = dy). part[2 * block + {0, 1}].
template <bool kPair>
__device__ __forceinline__ void bn_sums(double* __restrict__ part, const float* __restrict__ a,
                                        const float* __restrict__ b, int c, int hw, long long count, int chunks)
{
    const int ch = static_cast<int>(blockIdx.x / static_cast<unsigned>(chunks));
    const int chunk = static_cast<int>(blockIdx.x - static_cast<unsigned>(ch) * chunks);
    long long lo = static_cast<long long>(chunk) * kBnChunk;
    const int len = static_cast<int>(min(static_cast<long long>(kBnChunk), count - lo));
    const long long img0 = lo / hw;  // once per block
    const int off0 = static_cast<int>(lo - img0 * hw);
    double s1 = 0.0, s2 = 0.0;
    if (hw < kBnSmallPlane)
    {
        for (int r = threadIdx.x; r < len; r += blockDim.x)
        {
            const unsigned q = static_cast<unsigned>(off0 + r) / static_cast<unsigned>(hw);
            const long long k = ((img0 + q) * c + ch) * hw + (off0 + r - static_cast<int>(q) * hw);
            const float vb = b[k], va = kPair ? a[k] : vb;
            s1 += vb;
            s2 += static_cast<double>(vb) * va;
        }
    }
    else
    {
        const bool aligned = ((reinterpret_cast<unsigned long long>(a) | reinterpret_cast<unsigned long long>(b)) & 15) == 0;
        long long img = img0;
        int off = off0, done = 0;
        while (done < len)
        {
            const int seg = min(hw - off, len - done);
            const long long base = (img * c + ch) * hw + off;
            const float* pa = a + base;
            const float* pb = b + base;
            const int head = aligned ? min(seg, static_cast<int>((4 - (base & 3)) & 3)) : 0;
            const int vecs = aligned ? (seg - head) / 4 : 0;
            if (static_cast<int>(threadIdx.x) < head)
            {
                const float vb = pb[threadIdx.x], va = kPair ? pa[threadIdx.x] : vb;
                s1 += vb;
                s2 += static_cast<double>(vb) * va;
            }
            const float4* va4 = reinterpret_cast<const float4*>(pa + head);
            const float4* vb4 = reinterpret_cast<const float4*>(pb + head);
            for (int v = threadIdx.x; v < vecs; v += blockDim.x)
            {
                const float4 fb = vb4[v];
                const float4 fa = kPair ? va4[v] : fb;
                s1 += static_cast<double>(fb.x) + fb.y + (static_cast<double>(fb.z) + fb.w);
                s2 += static_cast<double>(fb.x) * fa.x + static_cast<double>(fb.y) * fa.y +
                      (static_cast<double>(fb.z) * fa.z + static_cast<double>(fb.w) * fa.w);
            }
            for (int t = head + vecs * 4 + threadIdx.x; t < seg; t += blockDim.x)
            {
                const float vb = pb[t], va = kPair ? pa[t] : vb;
                s1 += vb;
                s2 += static_cast<double>(vb) * va;
            }
            done += seg;
            ++img;
            off = 0;
        }
    }
    s1 = bn_block_sum(s1);
    s2 = bn_block_sum(s2);
    if (threadIdx.x == 0)
    {
        part[2 * static_cast<long long>(blockIdx.x)] = s1;
        part[2 * static_cast<long long>(blockIdx.x) + 1] = s2;
    }
}

// Pass 1 of the training statistics: partial sum x and sum x^2 per (channel, chunk).
extern "C" __global__ void batchnorm_stats_partial_kernel(double* __restrict__ part, const float* __restrict__ x,
                                                          int c, int hw, long long count, int chunks)
{
    bn_sums<false>(part, x, x, c, hw, count, chunks);
}

// Pass 1 of the backward: partial sum dy and sum dy*x per (channel, chunk).
extern "C" __global__ void batchnorm_bwd_partial_kernel(double* __restrict__ part, const float* __restrict__ x,
                                                        const float* __restrict__ dy, int c, int hw, long long count,
                                                        int chunks)
{
    bn_sums<true>(part, x, dy, c, hw, count, chunks);
}

// Pass 2 of the statistics, one thread per channel (partials in chunk order): saves mean and 1/sqrt(var + eps),
// updates the running buffers (momentum, unbiased variance: PyTorch semantics) and writes the apply coefficients
// coef[ch] = (mean, invstd * w, b, 0).
extern "C" __global__ void batchnorm_stats_finalize_kernel(float* __restrict__ save_mean,
                                                           float* __restrict__ save_invstd,
                                                           float* __restrict__ running_mean,
                                                           float* __restrict__ running_var, float4* __restrict__ coef,
                                                           const double* __restrict__ part,
                                                           const float* __restrict__ w, const float* __restrict__ b,
                                                           int chunks, long long count, float momentum, float eps,
                                                           int c)
{
    const long long ch = slak::global_index_1d();
    if (ch >= c) return;
    double s = 0.0, sq = 0.0;
    for (int k = 0; k < chunks; ++k)
    {
        s += part[2 * (ch * chunks + k)];
        sq += part[2 * (ch * chunks + k) + 1];
    }
    const double mu = s / count;
    const double var = max(sq / count - mu * mu, 0.0);
    const float inv = static_cast<float>(1.0 / sqrt(var + eps));
    save_mean[ch] = static_cast<float>(mu);
    save_invstd[ch] = inv;
    const double unbiased = count > 1 ? var * count / (count - 1) : var;
    running_mean[ch] = static_cast<float>((1.0 - momentum) * running_mean[ch] + momentum * mu);
    running_var[ch] = static_cast<float>((1.0 - momentum) * running_var[ch] + momentum * unbiased);
    coef[ch] = make_float4(static_cast<float>(mu), inv * w[ch], b[ch], 0.0f);
}

// Evaluation coefficients: coef[ch] = (running_mean, w / sqrt(running_var + eps), b, 0).
extern "C" __global__ void batchnorm_eval_coef_kernel(float4* __restrict__ coef,
                                                      const float* __restrict__ running_mean,
                                                      const float* __restrict__ running_var,
                                                      const float* __restrict__ w, const float* __restrict__ b,
                                                      float eps, int c)
{
    const long long ch = slak::global_index_1d();
    if (ch >= c) return;
    coef[ch] = make_float4(running_mean[ch], w[ch] * rsqrtf(running_var[ch] + eps), b[ch], 0.0f);
}

// Pass 2 of the backward, one thread per channel: dweight = sum dy*xhat, dbias = sum dy, and the dx coefficients
// coef[ch] = (mean, B, C, A) with dx = A*dy + B*(x - mean) + C, A = w*invstd, B = -A*invstd*mean(dy*xhat),
// C = -A*mean(dy).
extern "C" __global__ void batchnorm_bwd_finalize_kernel(float* __restrict__ dw, float* __restrict__ db,
                                                         float4* __restrict__ coef, const double* __restrict__ part,
                                                         const float* __restrict__ w,
                                                         const float* __restrict__ save_mean,
                                                         const float* __restrict__ save_invstd, int chunks,
                                                         long long count, int c)
{
    const long long ch = slak::global_index_1d();
    if (ch >= c) return;
    double sdy = 0.0, sdyx = 0.0;
    for (int k = 0; k < chunks; ++k)
    {
        sdy += part[2 * (ch * chunks + k)];
        sdyx += part[2 * (ch * chunks + k) + 1];
    }
    const double mu = save_mean[ch], inv = save_invstd[ch];
    const double dyxhat = (sdyx - mu * sdy) * inv;
    dw[ch] = static_cast<float>(dyxhat);
    db[ch] = static_cast<float>(sdy);
    const double a = static_cast<double>(w[ch]) * inv;
    coef[ch] = make_float4(static_cast<float>(mu), static_cast<float>(-a * inv * dyxhat / count),
                           static_cast<float>(-a * sdy / count), static_cast<float>(a));
}

// Element pass over (n, c, hw): out = (x - coef.x) * coef.y + coef.z (+ coef.w * dy when kDy). Block j covers the
// flat elements [j * kBnElemChunk, ...): its first plane is found once; then plane segments with the channel's
// coefficients loaded once per segment and 128-bit accesses where out, x and dy are 16-byte aligned.
template <bool kDy>
__device__ __forceinline__ void bn_elementwise(float* __restrict__ out, const float* __restrict__ x,
                                               const float* __restrict__ dy, const float4* __restrict__ coef, int c,
                                               int hw, long long total)
{
    const long long lo = static_cast<long long>(blockIdx.x) * kBnElemChunk;
    const int len = static_cast<int>(min(static_cast<long long>(kBnElemChunk), total - lo));
    const long long plane0 = lo / hw;  // once per block
    const int off0 = static_cast<int>(lo - plane0 * hw);
    const int ch0 = static_cast<int>(plane0 % c);
    if (hw < kBnSmallPlane)
    {
        for (int r = threadIdx.x; r < len; r += blockDim.x)
        {
            const unsigned q = static_cast<unsigned>(off0 + r) / static_cast<unsigned>(hw);
            const float4 k4 = coef[(static_cast<unsigned>(ch0) + q) % static_cast<unsigned>(c)];
            const long long i = lo + r;
            float v = (x[i] - k4.x) * k4.y + k4.z;
            if (kDy) v += k4.w * dy[i];
            out[i] = v;
        }
        return;
    }
    const bool aligned = ((reinterpret_cast<unsigned long long>(out) | reinterpret_cast<unsigned long long>(x) |
                           reinterpret_cast<unsigned long long>(kDy ? dy : x)) & 15) == 0;
    int ch = ch0, off = off0, done = 0;
    while (done < len)
    {
        const int seg = min(hw - off, len - done);
        const long long base = lo + done;
        const float4 k4 = coef[ch];
        const int head = aligned ? min(seg, static_cast<int>((4 - (base & 3)) & 3)) : 0;
        const int vecs = aligned ? (seg - head) / 4 : 0;
        if (static_cast<int>(threadIdx.x) < head)
        {
            const long long i = base + threadIdx.x;
            float v = (x[i] - k4.x) * k4.y + k4.z;
            if (kDy) v += k4.w * dy[i];
            out[i] = v;
        }
        const float4* x4 = reinterpret_cast<const float4*>(x + base + head);
        const float4* d4 = reinterpret_cast<const float4*>((kDy ? dy : x) + base + head);
        float4* o4 = reinterpret_cast<float4*>(out + base + head);
        for (int v = threadIdx.x; v < vecs; v += blockDim.x)
        {
            const float4 xv = x4[v];
            float4 r = make_float4((xv.x - k4.x) * k4.y + k4.z, (xv.y - k4.x) * k4.y + k4.z,
                                   (xv.z - k4.x) * k4.y + k4.z, (xv.w - k4.x) * k4.y + k4.z);
            if (kDy)
            {
                const float4 g = d4[v];
                r.x += k4.w * g.x;
                r.y += k4.w * g.y;
                r.z += k4.w * g.z;
                r.w += k4.w * g.w;
            }
            o4[v] = r;
        }
        for (int t = head + vecs * 4 + threadIdx.x; t < seg; t += blockDim.x)
        {
            const long long i = base + t;
            float v = (x[i] - k4.x) * k4.y + k4.z;
            if (kDy) v += k4.w * dy[i];
            out[i] = v;
        }
        done += seg;
        off = 0;
        if (++ch == c) ch = 0;
    }
}

// y = (x - m[c]) * s[c] + t[c]: the training apply (saved batch statistics) and the evaluation pass (running ones).
extern "C" __global__ void batchnorm_affine_kernel(float* __restrict__ y, const float* __restrict__ x,
                                                   const float4* __restrict__ coef, int c, int hw, long long total)
{
    bn_elementwise<false>(y, x, nullptr, coef, c, hw, total);
}

// dx = A[c]*dy + B[c]*(x - mean[c]) + C[c] (coefficients from batchnorm_bwd_finalize_kernel).
extern "C" __global__ void batchnorm_bwd_dx_kernel(float* __restrict__ dx, const float* __restrict__ x,
                                                   const float* __restrict__ dy, const float4* __restrict__ coef,
                                                   int c, int hw, long long total)
{
    bn_elementwise<true>(dx, x, dy, coef, c, hw, total);
}
