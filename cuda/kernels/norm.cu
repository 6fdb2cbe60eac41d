// norm.cu: LayerNorm over the last dimension (block LN, head LN), LayerNorm over the channels of NCHW tensors
// (stem / downsampling LN, "channels_first"), and BatchNorm2d (one per large-kernel branch): forward, backward and
// BatchNorm's running-statistics update. Statistics use two passes (mean, then centred squares) like the CPU backend.
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

// dweight[c] = sum over n, p of dy * xhat; dbias[c] = sum of dy; one block per channel.
extern "C" __global__ void layernorm_cf_bwd_param_kernel(float* __restrict__ dw, float* __restrict__ db,
                                                         const float* __restrict__ x, const float* __restrict__ mean,
                                                         const float* __restrict__ rstd,
                                                         const float* __restrict__ dy, int n, int c, int hw)
{
    const int ch = blockIdx.x;
    float aw = 0.0f, ab = 0.0f;
    const long long count = static_cast<long long>(n) * hw;
    for (long long i = threadIdx.x; i < count; i += blockDim.x)
    {
        const long long img = i / hw, p = i % hw;
        const long long k = (img * c + ch) * hw + p;
        const float g = dy[k];
        aw += g * (x[k] - mean[img * hw + p]) * rstd[img * hw + p];
        ab += g;
    }
    aw = slak::block_reduce_sum(aw);
    ab = slak::block_reduce_sum(ab);
    if (threadIdx.x == 0)
    {
        dw[ch] = aw;
        db[ch] = ab;
    }
}

// ---- BatchNorm2d over (N, C, HW) ----

// Batch statistics, one block per channel: saves mean and 1/sqrt(var + eps), updates the running buffers with
// momentum and the unbiased variance (PyTorch semantics).
extern "C" __global__ void batchnorm_stats_kernel(float* __restrict__ save_mean, float* __restrict__ save_invstd,
                                                  float* __restrict__ running_mean, float* __restrict__ running_var,
                                                  const float* __restrict__ x, float momentum, float eps, int n,
                                                  int c, int hw)
{
    const int ch = blockIdx.x;
    const long long count = static_cast<long long>(n) * hw;
    float s = 0.0f;
    for (long long i = threadIdx.x; i < count; i += blockDim.x)
        s += x[((i / hw) * c + ch) * hw + i % hw];
    const float mu = slak::block_reduce_sum(s) / count;
    float sq = 0.0f;
    for (long long i = threadIdx.x; i < count; i += blockDim.x)
    {
        const float d = x[((i / hw) * c + ch) * hw + i % hw] - mu;
        sq += d * d;
    }
    const float var = slak::block_reduce_sum(sq) / count;
    if (threadIdx.x == 0)
    {
        save_mean[ch] = mu;
        save_invstd[ch] = rsqrtf(var + eps);
        const float unbiased = count > 1 ? var * count / (count - 1) : var;
        running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * mu;
        running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * unbiased;
    }
}

// y = (x - mean[c]) * invstd[c] * w[c] + b[c]  (training: saved batch stats; evaluation: see batchnorm_eval_kernel)
extern "C" __global__ void batchnorm_apply_kernel(float* __restrict__ y, const float* __restrict__ x,
                                                  const float* __restrict__ mean, const float* __restrict__ invstd,
                                                  const float* __restrict__ w, const float* __restrict__ b, int c,
                                                  int hw, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n)
    {
        const int ch = static_cast<int>((i / hw) % c);
        y[i] = (x[i] - mean[ch]) * invstd[ch] * w[ch] + b[ch];
    }
}

// y = (x - running_mean[c]) / sqrt(running_var[c] + eps) * w[c] + b[c]
extern "C" __global__ void batchnorm_eval_kernel(float* __restrict__ y, const float* __restrict__ x,
                                                 const float* __restrict__ running_mean,
                                                 const float* __restrict__ running_var,
                                                 const float* __restrict__ w, const float* __restrict__ b, float eps,
                                                 int c, int hw, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n)
    {
        const int ch = static_cast<int>((i / hw) % c);
        const float scale = w[ch] * rsqrtf(running_var[ch] + eps);
        y[i] = x[i] * scale + (b[ch] - running_mean[ch] * scale);
    }
}

// Training backward, one block per channel: dweight = sum dy*xhat, dbias = sum dy,
// dx = w*invstd * (dy - mean(dy) - xhat * mean(dy*xhat)).
extern "C" __global__ void batchnorm_bwd_kernel(float* __restrict__ dx, float* __restrict__ dw,
                                                float* __restrict__ db, const float* __restrict__ x,
                                                const float* __restrict__ w, const float* __restrict__ save_mean,
                                                const float* __restrict__ save_invstd, const float* __restrict__ dy,
                                                int n, int c, int hw)
{
    const int ch = blockIdx.x;
    const long long count = static_cast<long long>(n) * hw;
    const float mu = save_mean[ch], inv = save_invstd[ch];
    float sdy = 0.0f, sdyx = 0.0f;
    for (long long i = threadIdx.x; i < count; i += blockDim.x)
    {
        const long long k = ((i / hw) * c + ch) * hw + i % hw;
        sdy += dy[k];
        sdyx += dy[k] * (x[k] - mu) * inv;
    }
    sdy = slak::block_reduce_sum(sdy);
    sdyx = slak::block_reduce_sum(sdyx);
    if (threadIdx.x == 0)
    {
        dw[ch] = sdyx;
        db[ch] = sdy;
    }
    const float k_scale = w[ch] * inv, mean_dy = sdy / count, mean_dyx = sdyx / count;
    for (long long i = threadIdx.x; i < count; i += blockDim.x)
    {
        const long long k = ((i / hw) * c + ch) * hw + i % hw;
        dx[k] = k_scale * (dy[k] - mean_dy - (x[k] - mu) * inv * mean_dyx);
    }
}
