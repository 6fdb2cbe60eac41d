// elementwise.cu: float32 element-wise kernels (fill, copy, add, axpy, mul, scale, scalar broadcast).
//
// The template every kernel family follows:
//   - only device code and `extern "C" __global__` entry points named <op>_kernel; includes only
//     "slak_common.cuh" and "slak/slak_params.h" (NVRTC named headers, no host headers);
//   - parameters: outputs first, then inputs, then scalars, then sizes (llm.c);
//   - 1-D grid-stride loops over `long long n`, so any launch grid covers any n;
//   - the typed launchers are in src/Slak.Cuda/Kernels/ElementwiseKernels.cs, the CPU reference in the tests.
#include "slak_common.cuh"

// ---- fill / copy ----

// out[i] = value
extern "C" __global__ void fill_kernel(float* __restrict__ out, float value, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) out[i] = value;
}

// out[i] = in[i]
extern "C" __global__ void copy_kernel(float* __restrict__ out, const float* __restrict__ in, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) out[i] = __ldg(in + i);
}

// ---- binary ----

// out[i] = a[i] + b[i]  (out may alias a or b)
extern "C" __global__ void add_kernel(float* out, const float* a, const float* b, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) out[i] = a[i] + b[i];
}

// out[i] = a[i] * b[i]  (out may alias a or b)
extern "C" __global__ void mul_kernel(float* out, const float* a, const float* b, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) out[i] = a[i] * b[i];
}

// ---- scaled ----

// y[i] += alpha * x[i]
extern "C" __global__ void axpy_kernel(float* __restrict__ y, const float* __restrict__ x, float alpha, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) y[i] = fmaf(alpha, __ldg(x + i), y[i]);
}

// out[i] = alpha * in[i]  (out may alias in)
extern "C" __global__ void scale_kernel(float* out, const float* in, float alpha, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) out[i] = alpha * in[i];
}

// ---- broadcast ----

// y[i] = scale * scalar[0]   (broadcast of a device scalar, e.g. the gradient of a sum; no host round trip)
extern "C" __global__ void fill_from_scalar_kernel(float* __restrict__ y, const float* __restrict__ scalar,
                                                   float scale, long long n)
{
    const float v = scale * scalar[0];
    SLAK_GRID_STRIDE_LOOP(i, n) y[i] = v;
}
