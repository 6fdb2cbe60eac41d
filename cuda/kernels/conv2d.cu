// conv2d.cu: dense (groups = 1) NCHW convolution for SLaK's stem (4x4 stride 4) and downsampling layers
// (2x2 stride 2): forward, input gradient, weight gradient and bias gradient. These layers are ~3% of SLaK's
// FLOPs; the kernels are direct (one thread per output / input / weight element) and favour clarity.
// Launchers: src/Slak.Cuda/Kernels/Conv2dKernels.cs.
#include "slak_common.cuh"
#include "slak/slak_params.h"  // Conv2dParams

// y[n, co, r, q] = bias[co] + sum_{ci, i, j} x[n, ci, r*sh - ph + i, q*sw - pw + j] * w[co, ci, i, j]
extern "C" __global__ void conv2d_fwd_kernel(float* __restrict__ y, const float* __restrict__ x,
                                             const float* __restrict__ wt, const float* __restrict__ bias,
                                             Conv2dParams p)
{
    const long long total = static_cast<long long>(p.n) * p.cout * p.out_h * p.out_w;
    SLAK_GRID_STRIDE_LOOP(o, total)
    {
        const int q = static_cast<int>(o % p.out_w);
        const int r = static_cast<int>((o / p.out_w) % p.out_h);
        const int co = static_cast<int>((o / (static_cast<long long>(p.out_w) * p.out_h)) % p.cout);
        const long long img = o / (static_cast<long long>(p.out_w) * p.out_h * p.cout);
        float acc = bias != nullptr ? bias[co] : 0.0f;
        for (int ci = 0; ci < p.cin; ++ci)
            for (int i = 0; i < p.kh; ++i)
            {
                const int hi = r * p.stride_h - p.pad_h + i;
                if (hi < 0 || hi >= p.h) continue;
                const float* xr = x + ((img * p.cin + ci) * p.h + hi) * p.w;
                const float* wr = wt + ((static_cast<long long>(co) * p.cin + ci) * p.kh + i) * p.kw;
                for (int j = 0; j < p.kw; ++j)
                {
                    const int wi = q * p.stride_w - p.pad_w + j;
                    if (wi >= 0 && wi < p.w) acc = fmaf(xr[wi], wr[j], acc);
                }
            }
        y[o] = acc;
    }
}

// dx[n, ci, hi, wi] = sum over (co, i, j) with hi = r*sh - ph + i, wi = q*sw - pw + j of dy[n, co, r, q] * w[co, ci, i, j]
extern "C" __global__ void conv2d_bwd_data_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                                  const float* __restrict__ wt, Conv2dParams p)
{
    const long long total = static_cast<long long>(p.n) * p.cin * p.h * p.w;
    SLAK_GRID_STRIDE_LOOP(o, total)
    {
        const int wi = static_cast<int>(o % p.w);
        const int hi = static_cast<int>((o / p.w) % p.h);
        const int ci = static_cast<int>((o / (static_cast<long long>(p.w) * p.h)) % p.cin);
        const long long img = o / (static_cast<long long>(p.w) * p.h * p.cin);
        float acc = 0.0f;
        for (int i = 0; i < p.kh; ++i)
        {
            const int rr = hi + p.pad_h - i;
            if (rr < 0 || rr % p.stride_h != 0) continue;
            const int r = rr / p.stride_h;
            if (r >= p.out_h) continue;
            for (int j = 0; j < p.kw; ++j)
            {
                const int qq = wi + p.pad_w - j;
                if (qq < 0 || qq % p.stride_w != 0) continue;
                const int q = qq / p.stride_w;
                if (q >= p.out_w) continue;
                for (int co = 0; co < p.cout; ++co)
                    acc = fmaf(dy[((img * p.cout + co) * p.out_h + r) * p.out_w + q],
                               wt[((static_cast<long long>(co) * p.cin + ci) * p.kh + i) * p.kw + j], acc);
            }
        }
        dx[o] = acc;
    }
}

// dw[co, ci, i, j] = sum over (n, r, q) of dy[n, co, r, q] * x[n, ci, r*sh - ph + i, q*sw - pw + j]
extern "C" __global__ void conv2d_bwd_filter_kernel(float* __restrict__ dw, const float* __restrict__ x,
                                                    const float* __restrict__ dy, Conv2dParams p)
{
    const long long total = static_cast<long long>(p.cout) * p.cin * p.kh * p.kw;
    SLAK_GRID_STRIDE_LOOP(o, total)
    {
        const int j = static_cast<int>(o % p.kw);
        const int i = static_cast<int>((o / p.kw) % p.kh);
        const int ci = static_cast<int>((o / (static_cast<long long>(p.kw) * p.kh)) % p.cin);
        const int co = static_cast<int>(o / (static_cast<long long>(p.kw) * p.kh * p.cin));
        float acc = 0.0f;
        for (int img = 0; img < p.n; ++img)
            for (int r = 0; r < p.out_h; ++r)
            {
                const int hi = r * p.stride_h - p.pad_h + i;
                if (hi < 0 || hi >= p.h) continue;
                const float* g = dy + ((static_cast<long long>(img) * p.cout + co) * p.out_h + r) * p.out_w;
                const float* xr = x + ((static_cast<long long>(img) * p.cin + ci) * p.h + hi) * p.w;
                for (int q = 0; q < p.out_w; ++q)
                {
                    const int wi = q * p.stride_w - p.pad_w + j;
                    if (wi >= 0 && wi < p.w) acc = fmaf(g[q], xr[wi], acc);
                }
            }
        dw[o] = acc;
    }
}

// dbias[co] = sum over n, r, q of dy[n, co, r, q]; one block per output channel
extern "C" __global__ void conv2d_bwd_bias_kernel(float* __restrict__ dbias, const float* __restrict__ dy, int n,
                                                  int cout, int plane)
{
    const int co = blockIdx.x;
    const long long count = static_cast<long long>(n) * plane;
    float acc = 0.0f;
    for (long long k = threadIdx.x; k < count; k += blockDim.x)
        acc += dy[((k / plane) * cout + co) * plane + k % plane];
    acc = slak::block_reduce_sum(acc);
    if (threadIdx.x == 0) dbias[co] = acc;
}
