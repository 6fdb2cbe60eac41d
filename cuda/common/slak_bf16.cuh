// slak_bf16.cuh: bfloat16 of our own (1 sign, 8 exponent, 7 mantissa bits: the upper half of a float32) for kernels
// that store bf16 and compute in float32 (mixed precision: docs/mixed-precision.md).
//
// Why not cuda_bf16.h: NVRTC 11.8 as Debian packages it has no cuda_bf16.h on its include path, and carrying
// NVIDIA's header would tie the sources to one CUDA version's header. The two conversions a kernel needs are small:
//   - float -> bf16 on the GPU is the PTX instruction cvt.rn.bf16.f32 (round to nearest even; sm_80+, PTX ISA 7.0),
//     identical on every CUDA version from 11.0 on;
//   - in the host emulator (SLAK_EMU) the same rounding in bit arithmetic, bit-identical to the instruction for every
//     non-NaN input (a NaN stays a NaN; its payload may differ), and to ReducedFloat in src/Slak.Cuda/Runtime;
//   - bf16 -> float is exact: the 16 bits shifted into the upper half.
// Every name here is prefixed slak_ (no __nv_bfloat16, __float2bfloat16, __bfloat162float, ...), so the same source
// compiles unchanged where a newer CUDA's headers define NVIDIA's bf16 type and functions.
#pragma once
#ifndef SLAK_BF16_CUH
#define SLAK_BF16_CUH

// A bfloat16 value: its 16 bits (2 bytes, 2-byte aligned, as __nv_bfloat16).
struct __align__(2) slak_bf16
{
    unsigned short bits;
};

// f rounded to the nearest bfloat16, ties to even.
__device__ __forceinline__ slak_bf16 slak_float_to_bf16(float f)
{
    slak_bf16 r;
#if defined(SLAK_EMU)
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        r.bits = static_cast<unsigned short>((u >> 16) | 0x0040u); // NaN: quiet, sign kept
    else
        r.bits = static_cast<unsigned short>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
#else
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r.bits) : "f"(f));
#endif
    return r;
}

// The float32 value of a bfloat16 (exact).
__device__ __forceinline__ float slak_bf16_to_float(slak_bf16 h)
{
    return __uint_as_float(static_cast<unsigned>(h.bits) << 16);
}

// f rounded to bfloat16 and back: the value a bf16 store keeps.
__device__ __forceinline__ float slak_round_bf16(float f) { return slak_bf16_to_float(slak_float_to_bf16(f)); }

#endif // SLAK_BF16_CUH
