// slak_small.h: the geometry of dwconv_small_kernel (cuda/kernels/dwconv_small.cu), the depthwise forward / input
// gradient / inference sum for small maps (SLaK's stages 3-4: 14 x 14 and 7 x 7 at 224 px), shared by the kernel and
// its plan (slak_plan.h, slak_plan_dwconv_small), so that the register bands the kernel unrolls and the predicate
// that sends a shape to it are one rule.
//
// The kernel's lanes run over images of ONE channel (block = channel c, images n0 .. n0 + blockDim - 1), each thread
// owning a whole plane; a branch is computed along its long axis (rows for kh >= kw, columns otherwise) in bands of
// `band` outputs across it, with the band's inputs and outputs in registers. Plain C++ like slak_params.h (no host
// headers, no namespace); the functions compile for the device too.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define SLAK_SMALL_HD __host__ __device__
#else
#define SLAK_SMALL_HD
#endif

constexpr int kSmallMaxThreads = 128;    // dwconv_small_kernel: __launch_bounds__(128), blocks of 32..128 threads
constexpr int kSmallMaxPixels = 196;     // H x W of the largest map the kernel takes (14 x 14; 16 x 16 is not taken)
constexpr int kSmallMinImages = 16;      // fewer images leave more than half of a warp's lanes idle: fused kernel
constexpr int kSmallSingleBand = 8;      // a short axis up to this is one band (the whole plane in registers)
constexpr int kSmallBand = 2;            // else bands of this many outputs across the long axis
constexpr int kSmallMaxBandRegs = 160;   // registers a band may hold (inputs + accumulators), to stay without spills

// The band width across a branch's long axis, given the short-axis extent of the map (W for tall branches, H for
// wide ones).
SLAK_SMALL_HD constexpr int slak_small_band(int short_extent)
{
    return short_extent <= kSmallSingleBand ? short_extent : kSmallBand;
}

// The floats a band of branch (kh, kw) keeps in registers on an h x w map: the long-axis extent by the band's inputs
// (band + short taps - 1, clamped to the map) plus the long-axis extent by the band's accumulators.
SLAK_SMALL_HD constexpr int slak_small_band_regs(int h, int w, int kh, int kw)
{
    const bool tall = kh >= kw;
    const int extent_long = tall ? h : w, extent_short = tall ? w : h, short_taps = tall ? kw : kh;
    const int band = slak_small_band(extent_short);
    const int inputs = band + short_taps - 1 < extent_short ? band + short_taps - 1 : extent_short;
    return extent_long * (inputs + band);
}

// The odd per-thread plane stride of the shared input and output planes (conflict-free: lanes at the same offset of
// their own planes hit 32 different banks).
SLAK_SMALL_HD constexpr int slak_small_plane_stride(int h, int w) { return (h * w) | 1; }
