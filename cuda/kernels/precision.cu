// precision.cu: conversions between float32 and bfloat16 for mixed precision (docs/mixed-precision.md): rounding a
// float32 tensor to bf16 values in place or into another float32 buffer (what the bf16 path of the CUDA backend
// stores, kept in float32 storage), and packing/unpacking real 16-bit bf16 buffers.
//   - one 1-D grid-stride loop over `long long n` per kernel; outputs first, then inputs, then sizes;
//   - the conversions are slak_bf16.cuh's: cvt.rn.bf16.f32 on the GPU, the same rounding in the emulator;
//   - the typed launchers are in src/Slak.Cuda/Kernels/PrecisionKernels.cs, the reference is ReducedFloat.
#include "slak_common.cuh"
#include "slak_bf16.cuh"

// out[i] = round_bf16(in[i]) as float32 (out may alias in)
extern "C" __global__ void round_bf16_kernel(float* out, const float* in, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) out[i] = slak_round_bf16(in[i]);
}

// out[i] = bf16(in[i]): pack float32 into 16-bit bf16 (round to nearest even)
extern "C" __global__ void f32_to_bf16_kernel(slak_bf16* __restrict__ out, const float* __restrict__ in, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) out[i] = slak_float_to_bf16(in[i]);
}

// out[i] = float(in[i]): unpack 16-bit bf16 to float32 (exact)
extern "C" __global__ void bf16_to_f32_kernel(float* __restrict__ out, const slak_bf16* __restrict__ in, long long n)
{
    SLAK_GRID_STRIDE_LOOP(i, n) out[i] = slak_bf16_to_float(in[i]);
}
