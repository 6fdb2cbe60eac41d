// slak_params.h: the parameter structs of the kernels and the geometry constants their launch plans are built from,
// defined ONCE for the kernels (device side), the launch plans (slak_plan.h), the C ABI (cuda/capi) and, through the
// layout table exported by libslak_emu.so (slak_plan_export.cpp), the C# mirrors in src/Slak.Cuda/Kernels (checked
// field by field by tests/Slak.Tests/Cuda/PlanStructLayoutTests.cs).
//
// POD only (plus the weight gradient's geometry functions, marked for host and device), fixed-width fields of types
// every compiler agrees on (int, long long, unsigned), no host headers and no namespace, so the same definition
// compiles under NVRTC, nvcc, the host emulator (which includes a kernel file, and so this header, inside a namespace
// of its own) and plain C++. A kernel's block shape and tile constants live here
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
// Static __shared__ bytes budgeted for dwconv_fused_wgrad_kernel: the default body has none; the live-tap body kept as
// the benchmark variant (SLAK_DW_WGRAD_TAPS) has int s_count[kFusedMaxBranches], rounded up to the 16-byte granule
// ptxas reports. The plan budgets dynamic + static <= the per-block limit.
constexpr int kFusedWgradStaticSmem = 16;
// The weight gradient's tiles (slak_dw_wgrad_phase below): up to kFusedWgradTileLong outputs along a branch's long
// axis by kFusedWgradTileShort (a warp's lanes) across it; each lane accumulates kFusedWgradLags consecutive taps.
constexpr int kFusedWgradTileLong = 64;
constexpr int kFusedWgradTileShort = 32;
constexpr int kFusedWgradLags = 8;

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
    int tile_h, tile_w;       // outputs per tile along a branch's long axis, and across it (the live-tap variant:
                              // the dy tile's rows and columns)
};

// ---- the one geometry rule that dwconv_fused_wgrad_kernel and its plan (slak_plan.h) share ----
// Functions here compile for the device too (NVRTC, nvcc), and as plain C++ for the host and the emulator.
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define SLAK_PARAMS_HD __host__ __device__
#else
#define SLAK_PARAMS_HD
#endif

// One orientation phase of the weight gradient: the branches with kh >= kw (tall: the long axis is the rows) or the
// others (wide). Its tile is tile_long outputs along by tile_short across, for `planes` images stacked across (small
// maps: planes x tile_short <= tile_w lanes). Shared memory holds x as planes x lines_plane lines of sx floats (one
// line per position across, with the phase's halos hl along and hs across; lines_plane - tile_short is a multiple of
// 8, so stacked planes keep consecutive lanes on consecutive lines mod 8) and each phase branch's dy as planes x
// tile_short lines of sd floats. sx and sd are 4 mod 8 (8 lanes on 8 consecutive lines: 8 different 16-byte bank
// groups) and leave room for the reads of the last 8-output step and of the strip's taps past the kernel.
struct DwWgradPhase
{
    int tall, branches;
    int ext_long, ext_short;
    int tile_long, tile_short, planes;
    int hl, hs;
    int lines_plane, sx, sd;
    int floats;               // shared floats of the staged tile (0: no branch in this phase)
};

// The smallest stride >= v that is 4 mod 8 floats.
SLAK_PARAMS_HD inline int slak_dw_wgrad_stride(int v) { return (v + 3) / 8 * 8 + 4; }

SLAK_PARAMS_HD inline DwWgradPhase slak_dw_wgrad_phase(const DwFusedWgradParams& p, int tall)
{
    const int khs[3] = {p.kh0, p.kh1, p.kh2};
    const int kws[3] = {p.kw0, p.kw1, p.kw2};
    DwWgradPhase g;
    g.tall = tall;
    g.branches = 0;
    g.hl = 0;
    g.hs = 0;
    for (int b = 0; b < p.branches && b < 3; ++b)
        if ((khs[b] >= kws[b]) == (tall != 0))
        {
            const int hl = (tall ? khs[b] : kws[b]) / 2, hs = (tall ? kws[b] : khs[b]) / 2;
            ++g.branches;
            g.hl = g.hl > hl ? g.hl : hl;
            g.hs = g.hs > hs ? g.hs : hs;
        }
    g.ext_long = tall ? p.h : p.w;
    g.ext_short = tall ? p.w : p.h;
    g.tile_long = g.ext_long < p.tile_h ? g.ext_long : p.tile_h;
    g.tile_short = g.ext_short < p.tile_w ? g.ext_short : p.tile_w;
    g.planes = 1;
    if (g.tile_short > 0 && 2 * g.tile_short <= p.tile_w)
    {
        g.planes = p.tile_w / g.tile_short;
        if (g.planes > p.images_per_chunk) g.planes = p.images_per_chunk;
        if (g.planes < 1) g.planes = 1;
    }
    g.lines_plane = g.tile_short + (2 * g.hs + 7) / 8 * 8;
    g.sx = slak_dw_wgrad_stride(g.tile_long + 2 * g.hl + 15);
    g.sd = slak_dw_wgrad_stride(g.tile_long + 7);
    g.floats = g.branches == 0 ? 0 : g.planes * g.lines_plane * g.sx + g.branches * g.planes * g.tile_short * g.sd;
    return g;
}

// Strips of kFusedWgradLags taps along a branch's long axis of kl taps, the first starting delta taps before tap 0.
SLAK_PARAMS_HD inline int slak_dw_wgrad_strips(int kl, int delta)
{
    return (kl + delta + kFusedWgradLags - 1) / kFusedWgradLags;
}

// Dynamic shared memory of the weight gradient, in floats: every branch's kh x kw accumulators (branch b at
// tap_offset[b]), one int per task (branch, short-axis tap, strip; branch b's at task_offset[b]): 0 when no tap of
// the strip is live, else which of its taps the task computes (dw_wg_task_code in dwconv_fused.cu), then the larger
// phase's staged tile (at area_offset, 16-byte aligned).
struct DwWgradLayout
{
    int taps, tasks;
    int tap_offset[3], task_offset[3];
    int live_offset, area_offset;
    long long floats;
};

SLAK_PARAMS_HD inline DwWgradLayout slak_dw_wgrad_layout(const DwFusedWgradParams& p)
{
    const int khs[3] = {p.kh0, p.kh1, p.kh2};
    const int kws[3] = {p.kw0, p.kw1, p.kw2};
    const DwWgradPhase tall = slak_dw_wgrad_phase(p, 1), wide = slak_dw_wgrad_phase(p, 0);
    DwWgradLayout l;
    l.taps = 0;
    l.tasks = 0;
    for (int b = 0; b < 3; ++b)
    {
        l.tap_offset[b] = l.taps;
        l.task_offset[b] = l.tasks;
        if (b >= p.branches) continue;
        const bool t = khs[b] >= kws[b];
        const int kl = t ? khs[b] : kws[b], ks = t ? kws[b] : khs[b];
        l.taps += khs[b] * kws[b];
        l.tasks += ks * slak_dw_wgrad_strips(kl, ((t ? tall.hl : wide.hl) - kl / 2) & 3);
    }
    l.live_offset = (l.taps + 3) & ~3;
    l.area_offset = l.live_offset + ((l.tasks + 3) & ~3);
    l.floats = l.area_offset + static_cast<long long>(tall.floats > wide.floats ? tall.floats : wide.floats);
    return l;
}

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
