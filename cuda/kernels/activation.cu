// activation.cu: float32 element-wise kernels of the network body: exact GELU and its derivative, layer scale
// (per-channel multiply on channels-last tensors), per-sample scaling (DropPath), bias add.
//
// All are grid-stride loops over `long long n`; launchers: src/Slak.Cuda/Kernels/ActivationKernels.cs; CPU
// counterparts: src/Slak/Backends/Cpu/CpuBackend.Activation.cs (the oracle they are tested against).
#include "slak_common.cuh"

// ---- GELU (exact, erf form: PyTorch's default nn.GELU) ----

// y = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
extern "C" __global__ void gelu_fwd_kernel(float* __restrict__ y, const float* __restrict__ x, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n)
    {
        const float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    }
}

// dx = dy * (Phi(x) + x * phi(x))
extern "C" __global__ void gelu_bwd_kernel(float* __restrict__ dx, const float* __restrict__ x,
                                           const float* __restrict__ dy, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n)
    {
        const float v = x[i];
        const float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
        const float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

// ---- per-channel and per-row scaling ----

// y[i] = x[i] * gamma[i % c]   (layer scale on an (..., C) tensor; y may alias x)
extern "C" __global__ void mul_last_dim_kernel(float* y, const float* x, const float* __restrict__ gamma, int c,
                                               long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) y[i] = x[i] * gamma[i % c];
}

// y[i] = x[i] * scale[i / row]   (DropPath: one factor per sample; y may alias x)
extern "C" __global__ void mul_rows_kernel(float* y, const float* x, const float* __restrict__ scale, long long row,
                                           long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) y[i] = x[i] * scale[i / row];
}

// y[i] += bias[(i / inner) % c]: inner = 1 adds along the last dimension (Linear), inner = H * W along the channels
// of an (N, C, H, W) tensor (the folded BatchNorm shift of inference)
extern "C" __global__ void add_bias_kernel(float* y, const float* __restrict__ bias, int c, long long inner,
                                           long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) y[i] += bias[(i / inner) % c];
}
