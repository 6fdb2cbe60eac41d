// slak_params.h: the parameter structs of the kernels and the geometry constants their launch plans are built from,
// defined ONCE for the kernels (device side), the launch plans (slak_plan.h), the C ABI (cuda/capi) and, through the
// layout table exported by libslak_emu.so (slak_plan_export.cpp), the C# mirrors in src/Slak.Cuda/Kernels (checked
// field by field by tests/Slak.Tests/Cuda/PlanStructLayoutTests.cs).
//
// POD only, fixed-width fields of types every compiler agrees on (int, long long, unsigned), no host headers and no
// namespace, so the same definition compiles under NVRTC, nvcc, the host emulator (which includes a kernel file, and
// so this header, inside a namespace of its own) and plain C++. A kernel's block shape and tile constants live here
// too: the kernel uses them for its indexing, its plan for grid, block and shared bytes.
#pragma once

// Shape of an (N, C, H, W) tensor in row-major order.
struct SlakShapeNchw
{
    int n;
    int c;
    int h;
    int w;
};

// ---- dwconv.cu: per-branch depthwise convolution ----

constexpr int kDwTileW = 32;                                 // output tile width (threads along x)
constexpr int kDwRowsPerThread = 4;                          // consecutive output rows per thread
constexpr int kDwThreadsY = 8;                               // threads along y
constexpr int kDwTileH = kDwRowsPerThread * kDwThreadsY;     // output tile height
constexpr int kDwFwdThreads = kDwTileW * kDwThreadsY;        // dwconv_fwd_tiled_kernel: __launch_bounds__(256)
constexpr int kDwWgradThreads = 256;                         // dwconv_wgrad_{tiled,direct}_kernel block
constexpr int kDwWgradMaxTileW = 64;                         // widest dy tile of the weight gradients

struct DwConvParams
{
    int n, c, h, w, kh, kw;
    int flip; // 1: use the filter rotated by 180 degrees (input gradient)
};

struct DwWgradParams
{
    int n, c, h, w, kh, kw;
    int images_per_chunk;
    int tile_h, tile_w; // dy tile staged per step (0, 0 for the direct kernel)
    int skip_masked;
};

// ---- dwconv_fused.cu: all branches (up to 3) in one kernel ----

constexpr int kFusedTileW = 32;                              // output columns per block (threads along x)
constexpr int kFusedRows = 8;                                // consecutive output rows per thread
constexpr int kFusedThreadsY = 4;                            // threads along y
constexpr int kFusedTileH = kFusedRows * kFusedThreadsY;     // output rows per block
constexpr int kFusedThreads = kFusedTileW * kFusedThreadsY;  // dwconv_fused_kernel: __launch_bounds__(128)
constexpr int kFusedMaxBranches = 3;
// Sliding-window kernel (the default body of dwconv_fused_kernel): taps along a branch's long axis are processed in
// unrolled steps of kFusedChunk (the weight rows are zero-padded to a multiple of it, the tile gets kFusedChunk - 1
// extra zero rows and columns for the reads past the last tap); the summing modes add the branches in a shared
// output tile of kFusedTileH rows of kFusedOutStride floats (conflict-free in both thread orientations).
constexpr int kFusedChunk = 8;
constexpr int kFusedOutStride = kFusedTileW + 1;
constexpr int kFusedWgradThreads = 256;                      // dwconv_fused_wgrad_kernel: __launch_bounds__(256)
// Static __shared__ bytes of dwconv_fused_wgrad_kernel (int s_count[kFusedMaxBranches], rounded up to the 16-byte
// granule ptxas reports): the plan budgets dynamic + static <= the per-block limit.
constexpr int kFusedWgradStaticSmem = 16;

struct DwFusedParams
{
    int n, c, h, w;
    int branches;             // 1..3
    int kh0, kw0, kh1, kw1, kh2, kw2;
    int halo_h, halo_w;       // max over branches of kh/2, kw/2
    int flip;                 // 1: use each filter rotated by 180 degrees (input gradient)
    int sum;                  // 1: every branch accumulates into out0 (input gradient, inference)
};

struct DwFusedWgradParams
{
    int n, c, h, w;
    int branches;
    int kh0, kw0, kh1, kw1, kh2, kw2;
    int halo_h, halo_w;
    int images_per_chunk;
    int tile_h, tile_w;
};

// ---- conv2d.cu: dense convolution (stem, downsampling) ----

struct Conv2dParams
{
    int n, cin, h, w, cout, kh, kw, stride_h, stride_w, pad_h, pad_w, out_h, out_w;
};

// ---- reduce.cu ----

constexpr int kPermuteMaxRank = 8;

// Shape of the output and, for each output dimension, the stride of the input dimension it reads.
struct PermuteParams
{
    int rank;
    int out_shape[kPermuteMaxRank];
    long long in_stride[kPermuteMaxRank];
};

// ---- sparse.cu ----

constexpr int kSparseRadixPasses = 8;

// Selection state in device memory (the launcher allocates sizeof(SparseSelectState) bytes for it).
struct SparseSelectState
{
    unsigned long long k;          // requested count, clamped to the eligible count by pass 0
    unsigned long long remaining;  // how many of the smallest are still to be found inside the current prefix
    unsigned long long prefix;     // high bits of the k-th smallest composite fixed so far
    unsigned long long bound;      // exclusive bound: composites below it are selected (valid once done)
    unsigned long long eligible;   // number of eligible keys (set by pass 0)
    unsigned long long done;       // nonzero once bound is final; later passes do nothing
    unsigned long long pad[2];
    unsigned int hist[kSparseRadixPasses * 256]; // one 256-bin histogram per pass
};
