// slak_plan.h: the launch plans, the ONLY place where a launch of a cuda/kernels kernel is decided: for a shape and
// the device's limits (slak_limits.h), which kernel of the family, grid, block, dynamic shared bytes, whether the
// launch must opt in to more than the default shared memory, how a grid too large for one launch is split, the tiles
// and chunks of the weight gradients (with the workspace they need), and why a fallback was chosen.
//
// Users: the C ABI (cuda/capi/slak_capi.cpp) includes this header; the C# launchers (src/Slak.Cuda/Kernels) call the
// same functions through libslak_emu.so (cuda/capi/slak_plan_export.cpp exports them as slak_emu_plan_*), so there is
// one implementation of every geometry rule. The tile shapes come from slak_params.h, which the kernels include.
//
// Plain C++ (no system headers, no exceptions, no namespace): host code for any C++ compiler; kernels include only
// slak_params.h. Every function returns 0 and fills *plan, or a negative SlakPlanError when no kernel of the family
// can launch the shape at all.
#pragma once

#include "slak_limits.h"
#include "slak_params.h"
#include "slak_small.h"

// ---- rules shared by several families ----
constexpr int kSlakBlock = 256;                 // threads of a 1-D block (element-wise, grid-stride, reductions)
constexpr int kSlakGridStrideMaxBlocks = 4096;  // grid-stride loops: more blocks add nothing once every SM is full
constexpr int kSlakRowBlock = 128;              // one block per row: last-dim LayerNorm, softmax, average pooling
constexpr int kSlakSumBlocks = 256;             // sum_partial_kernel: first-pass blocks (= second-pass elements)
constexpr int kSlakColumnChunkBlocks = 256;     // column sums: aim for this many (column block, chunk) blocks
constexpr int kSlakColumnMinRows = 16;          // column sums: at least this many rows per chunk
constexpr int kSlakDwWgradTargetBlocks = 2048;  // weight gradients: chunks of images so that C x chunks ~ this
constexpr int kSparseBlock = 256;               // sparse.cu element kernels
constexpr int kSparseMaxBlocks = 1024;          // sparse.cu grid-stride cap (histograms per pass)
constexpr int kSparseScanThreads = 32;          // sparse_select_scan_kernel: one warp

// Which kernel of a family a plan launches.
enum SlakPlanKernel
{
    SLAK_PLAN_KERNEL_GENERIC = 0,        // the only kernel of a generic family (grid-stride, rows, ...)
    SLAK_PLAN_KERNEL_DWCONV_FWD_TILED = 1,
    SLAK_PLAN_KERNEL_DWCONV_FWD_DIRECT = 2,
    SLAK_PLAN_KERNEL_DWCONV_WGRAD_TILED = 3,
    SLAK_PLAN_KERNEL_DWCONV_WGRAD_DIRECT = 4,
    SLAK_PLAN_KERNEL_DWCONV_FUSED = 5,
    SLAK_PLAN_KERNEL_DWCONV_FUSED_WGRAD = 6,
    SLAK_PLAN_KERNEL_PER_BRANCH = 7,     // fused families: run the per-branch kernels (plan each with its own plan)
    SLAK_PLAN_KERNEL_NONE = 8,           // nothing to launch (an empty tensor)
    SLAK_PLAN_KERNEL_DWCONV_SMALL = 9,   // dwconv_small_kernel (small maps; slak_plan_dwconv_small)
};

// Why the plan is not the family's first choice (0: it is).
enum SlakPlanFallback
{
    SLAK_PLAN_PREFERRED = 0,
    SLAK_PLAN_FALLBACK_SHARED = 1,       // the tile does not fit the shared memory budget
    SLAK_PLAN_FALLBACK_GRID = 2,         // a grid dimension would exceed the device limit even when split
    SLAK_PLAN_FALLBACK_BRANCHES = 3,     // more branches than the fused kernels take
};

enum SlakPlanError
{
    SLAK_PLAN_ERROR_INVALID = -1,        // negative size, even kernel, null pointer
    SLAK_PLAN_ERROR_TOO_LARGE = -2,      // no kernel of the family can launch this shape on this device
};

struct SlakLaunchPlan
{
    int kernel;                 // SlakPlanKernel
    int fallback;               // SlakPlanFallback
    unsigned grid_x, grid_y, grid_z;   // grid of one launch (of the first one when split)
    unsigned block_x, block_y, block_z;
    int smem_dynamic;           // dynamic shared bytes per block
    int smem_static;            // static __shared__ bytes the plan budgeted for the kernel
    int opt_in;                 // 1: smem_dynamic > the default limit: raise MAX_DYNAMIC_SHARED_SIZE_BYTES first
    int launches;               // > 1: the launch is split along images (dwconv_fwd_tiled: grid.z = images * C)
    long long items_per_launch; // images per launch when split (the last launch takes the rest)
    int tile_h, tile_w;         // weight gradients: the dy tile
    int chunks;                 // weight gradients, column sums: partial chunks (grid.y)
    int per_chunk;              // images (weight gradients) or rows (column sums) per chunk
    long long workspace_bytes;  // partials the launcher allocates (0: none)
    int launch_bound;           // the kernel's __launch_bounds__ (0: none): block_x*block_y*block_z may not exceed it
    int reserved;
};

// ---- helpers ----
inline long long slak_plan_min(long long a, long long b) { return a < b ? a : b; }
inline long long slak_plan_max(long long a, long long b) { return a > b ? a : b; }
inline long long slak_plan_clamp(long long v, long long lo, long long hi) { return v < lo ? lo : v > hi ? hi : v; }
inline long long slak_plan_ceil_div(long long a, long long b) { return (a + b - 1) / b; }

inline void slak_plan_reset(SlakLaunchPlan* p, int kernel, int launch_bound)
{
    p->kernel = kernel;
    p->fallback = SLAK_PLAN_PREFERRED;
    p->grid_x = p->grid_y = p->grid_z = 1;
    p->block_x = p->block_y = p->block_z = 1;
    p->smem_dynamic = p->smem_static = p->opt_in = 0;
    p->launches = 1;
    p->items_per_launch = 0;
    p->tile_h = p->tile_w = 0;
    p->chunks = p->per_chunk = 0;
    p->workspace_bytes = 0;
    p->launch_bound = launch_bound;
    p->reserved = 0;
}

// Sets the shared-memory fields; opt_in when static + dynamic exceed the default per-block limit.
inline void slak_plan_set_smem(SlakLaunchPlan* p, long long dynamic_bytes, int static_bytes, const SlakDeviceLimits* l)
{
    p->smem_dynamic = static_cast<int>(dynamic_bytes);
    p->smem_static = static_cast<int>(static_bytes);
    p->opt_in = dynamic_bytes + static_bytes > l->smem_per_block_default ? 1 : 0;
}

// The shared-memory budget of a plan that does not opt in: the default limit less the kernel's static bytes.
inline long long slak_plan_smem_budget(const SlakDeviceLimits* l, int static_bytes)
{
    return static_cast<long long>(l->smem_per_block_default) - static_bytes;
}

// ---- generic families ----

// A 1-D grid-stride loop over n elements: ceil(n / block) blocks, at most max_blocks (kSlakGridStrideMaxBlocks for
// element-wise, activation, AdamW, permute, BatchNorm apply, dense conv; kSparseMaxBlocks for sparse.cu).
inline int slak_plan_grid_stride(long long n, int block, int max_blocks, const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    if (n < 0 || block < 1 || block > l->max_threads_per_block || max_blocks < 1) return SLAK_PLAN_ERROR_INVALID;
    slak_plan_reset(p, n == 0 ? SLAK_PLAN_KERNEL_NONE : SLAK_PLAN_KERNEL_GENERIC, 0);
    p->grid_x = static_cast<unsigned>(slak_plan_clamp(slak_plan_ceil_div(n, block), 1,
                                                      slak_plan_min(max_blocks, l->max_grid_x)));
    p->block_x = static_cast<unsigned>(block);
    return 0;
}

// One block per row (or plane, channel, image): grid.x = rows. Rows are ints in every caller and grid.x takes
// 2^31 - 1, so this only fails for a device with a smaller limit.
inline int slak_plan_rows(long long rows, int block, const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    if (rows < 0 || block < 1 || block > l->max_threads_per_block) return SLAK_PLAN_ERROR_INVALID;
    if (rows > l->max_grid_x) return SLAK_PLAN_ERROR_TOO_LARGE;
    slak_plan_reset(p, rows == 0 ? SLAK_PLAN_KERNEL_NONE : SLAK_PLAN_KERNEL_GENERIC, 0);
    p->grid_x = static_cast<unsigned>(slak_plan_max(rows, 1));
    p->block_x = static_cast<unsigned>(block);
    return 0;
}

// One thread per element, no loop: ceil(n / block) blocks (column_sum_finalize_kernel).
inline int slak_plan_elements(long long n, int block, const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    if (n < 0 || block < 1) return SLAK_PLAN_ERROR_INVALID;
    return slak_plan_rows(slak_plan_ceil_div(n, block), block, l, p);
}

// Deterministic column sums of a (rows, c) matrix: per-chunk partials (grid (ceil(c / 256), chunks)), then
// column_sum_finalize_kernel over c. Enough chunks to fill the GPU but at least kSlakColumnMinRows rows per chunk.
inline int slak_plan_column_sum(long long rows, long long c, const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    if (rows < 0 || c < 0) return SLAK_PLAN_ERROR_INVALID;
    const long long column_blocks = slak_plan_ceil_div(c, kSlakBlock);
    if (column_blocks > l->max_grid_x) return SLAK_PLAN_ERROR_TOO_LARGE;
    slak_plan_reset(p, rows == 0 || c == 0 ? SLAK_PLAN_KERNEL_NONE : SLAK_PLAN_KERNEL_GENERIC, 0);
    const long long want = slak_plan_max(1, kSlakColumnChunkBlocks / slak_plan_max(1, column_blocks));
    const long long per = slak_plan_max(kSlakColumnMinRows, slak_plan_ceil_div(rows, want));
    const long long chunks = slak_plan_max(1, slak_plan_ceil_div(rows, per));
    p->grid_x = static_cast<unsigned>(slak_plan_max(column_blocks, 1));
    p->grid_y = static_cast<unsigned>(chunks);
    p->block_x = kSlakBlock;
    p->chunks = static_cast<int>(chunks);
    p->per_chunk = static_cast<int>(per);
    p->workspace_bytes = chunks * c * 4;
    return 0;
}

// ---- dwconv.cu: per-branch depthwise convolution ----

// Dynamic shared bytes of dwconv_fwd_tiled_kernel: the masked filter plus the input tile with its halo.
inline long long slak_dwconv_fwd_tiled_smem(int kh, int kw)
{
    return (1LL * kh * kw + (kDwTileH + kh - 1LL) * (kDwTileW + kw - 1LL)) * 4;
}

// Forward / input gradient (y = dwconv(x, w * mask), flip for the gradient). The tiled kernel puts the planes
// n * C + c in grid.z (at most 65535): the plan splits the images into launches of items_per_launch images (the
// launcher offsets x and y by the images before and passes n = that launch's images). Falls back to the direct
// kernel (grid-stride) when the staged tile does not fit the default shared memory or one image's C planes alone
// exceed grid.z.
inline int slak_plan_dwconv_fwd(long long n, long long c, long long h, long long w, int kh, int kw,
                                const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    if (n < 0 || c < 0 || h < 0 || w < 0 || kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0)
        return SLAK_PLAN_ERROR_INVALID;
    const long long total = n * c * h * w;
    if (total == 0)
    {
        slak_plan_reset(p, SLAK_PLAN_KERNEL_NONE, kDwFwdThreads);
        return 0;
    }
    const long long smem = slak_dwconv_fwd_tiled_smem(kh, kw);
    const long long tiles_x = slak_plan_ceil_div(w, kDwTileW), tiles_y = slak_plan_ceil_div(h, kDwTileH);
    const bool fits = smem <= slak_plan_smem_budget(l, 0);
    const bool grid_ok = c <= l->max_grid_z && tiles_y <= l->max_grid_y && tiles_x <= l->max_grid_x;
    if (fits && grid_ok)
    {
        slak_plan_reset(p, SLAK_PLAN_KERNEL_DWCONV_FWD_TILED, kDwFwdThreads);
        const long long per = slak_plan_min(n, l->max_grid_z / c);
        p->grid_x = static_cast<unsigned>(tiles_x);
        p->grid_y = static_cast<unsigned>(tiles_y);
        p->grid_z = static_cast<unsigned>(per * c);
        p->block_x = kDwTileW;
        p->block_y = kDwThreadsY;
        slak_plan_set_smem(p, smem, 0, l);
        p->items_per_launch = per;
        p->launches = static_cast<int>(slak_plan_ceil_div(n, per));
        return 0;
    }
    slak_plan_reset(p, SLAK_PLAN_KERNEL_DWCONV_FWD_DIRECT, 0);
    p->fallback = fits ? SLAK_PLAN_FALLBACK_GRID : SLAK_PLAN_FALLBACK_SHARED;
    p->grid_x = static_cast<unsigned>(slak_plan_clamp(slak_plan_ceil_div(total, kSlakBlock), 1, kSlakGridStrideMaxBlocks));
    p->block_x = kSlakBlock;
    return 0;
}

// Images per chunk of a weight gradient: about kSlakDwWgradTargetBlocks blocks (C x chunks) in all.
inline void slak_plan_wgrad_chunks(long long n, long long c, SlakLaunchPlan* p)
{
    long long chunks = slak_plan_clamp(kSlakDwWgradTargetBlocks / slak_plan_max(c, 1), 1, slak_plan_max(n, 1));
    const long long per = slak_plan_ceil_div(slak_plan_max(n, 1), chunks);
    chunks = slak_plan_ceil_div(slak_plan_max(n, 1), per);
    p->chunks = static_cast<int>(chunks);
    p->per_chunk = static_cast<int>(per);
}

// Weight gradient of one branch: block (channel, chunk of images) with a dy tile, its x halo and all taps in shared
// memory (tile_h rows of tile_w <= 64 columns, as many rows as fit the default budget), then
// column_sum_finalize_kernel over the chunks. Falls back to the direct kernel when not even one row fits.
inline int slak_plan_dwconv_wgrad(long long n, long long c, long long h, long long w, int kh, int kw,
                                  const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    if (n < 0 || c < 0 || h < 0 || w < 0 || kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0)
        return SLAK_PLAN_ERROR_INVALID;
    const long long taps = 1LL * kh * kw;
    if (n == 0 || c == 0 || h == 0 || w == 0)
    {
        slak_plan_reset(p, SLAK_PLAN_KERNEL_NONE, 0); // dw is zero: the launcher fills it
        return 0;
    }
    if (c > l->max_grid_x) return SLAK_PLAN_ERROR_TOO_LARGE;
    const long long tile_w = slak_plan_min(w, kDwWgradMaxTileW);
    const long long xw = tile_w + kw - 1;
    const long long budget = slak_plan_smem_budget(l, 0) / 4 - taps - (kh - 1LL) * xw;
    const long long tile_h = budget <= 0 ? 0 : slak_plan_min(h, budget / (tile_w + xw));
    if (tile_h >= 1)
    {
        slak_plan_reset(p, SLAK_PLAN_KERNEL_DWCONV_WGRAD_TILED, 0);
        slak_plan_wgrad_chunks(n, c, p);
        p->tile_h = static_cast<int>(tile_h);
        p->tile_w = static_cast<int>(tile_w);
        p->grid_x = static_cast<unsigned>(c);
        slak_plan_set_smem(p, (taps + tile_h * tile_w + (tile_h + kh - 1) * xw) * 4, 0, l);
    }
    else
    {
        slak_plan_reset(p, SLAK_PLAN_KERNEL_DWCONV_WGRAD_DIRECT, 0);
        p->fallback = SLAK_PLAN_FALLBACK_SHARED;
        slak_plan_wgrad_chunks(n, c, p);
        p->grid_x = static_cast<unsigned>(slak_plan_clamp(slak_plan_ceil_div(c * taps, kDwWgradThreads), 1,
                                                          kSlakGridStrideMaxBlocks));
    }
    p->grid_y = static_cast<unsigned>(p->chunks);
    p->block_x = kDwWgradThreads;
    p->workspace_bytes = 1LL * p->chunks * c * taps * 4;
    return 0;
}

// ---- dwconv_fused.cu: all branches in one kernel ----

inline int slak_plan_check_branches(int branches, const int* kh, const int* kw)
{
    if (branches < 1 || kh == nullptr || kw == nullptr) return SLAK_PLAN_ERROR_INVALID;
    for (int b = 0; b < branches; ++b)
        if (kh[b] < 1 || kw[b] < 1 || kh[b] % 2 == 0 || kw[b] % 2 == 0) return SLAK_PLAN_ERROR_INVALID;
    return 0;
}

// Dynamic shared bytes of dwconv_fused_kernel's live-tap-list body (SLAK_DW_FUSED_TAPLIST, kept as the benchmark
// variant): the tile with the union halo (rounded to an even float count), then per branch a tap list of kh*kw int2
// and kw + 1 column starts.
inline long long slak_dwconv_fused_taplist_smem(int branches, const int* kh, const int* kw)
{
    long long hh = 0, hw = 0, lists = 0;
    for (int b = 0; b < branches; ++b)
    {
        hh = slak_plan_max(hh, kh[b] / 2);
        hw = slak_plan_max(hw, kw[b] / 2);
        lists += 2LL * kh[b] * kw[b] + kw[b] + 1;
    }
    const long long tile = (kFusedTileH + 2 * hh) * (kFusedTileW + 2 * hw);
    return (((tile + 1) & ~1LL) + lists) * 4;
}

// The sliding-window body's tile: rows and (odd) row stride of the input tile with the union halo plus
// kFusedChunk - 1 zero rows and columns for the reads of the padded last chunk.
inline long long slak_dwconv_fused_tile_rows(long long halo_h) { return kFusedTileH + 2 * halo_h + kFusedChunk - 1; }
inline long long slak_dwconv_fused_tile_stride(long long halo_w) { return (kFusedTileW + 2 * halo_w + kFusedChunk - 1) | 1; }

// Zero-padded weight row length of a branch: its long axis (max(kh, kw)) rounded up to kFusedChunk.
inline long long slak_dwconv_fused_weight_row(int kh, int kw)
{
    const long long l = kh >= kw ? kh : kw;
    return slak_plan_ceil_div(l, kFusedChunk) * kFusedChunk;
}

// Dynamic shared bytes of dwconv_fused_kernel (sliding-window body): the tile (rounded to 4 floats), per branch
// min(kh, kw) zero-padded weight rows, then the shared output tile of the summing modes. The plan budgets the larger
// of this and the live-tap-list body, so that either body runs under the same plan.
inline long long slak_dwconv_fused_smem(int branches, const int* kh, const int* kw)
{
    long long hh = 0, hw = 0, weights = 0;
    for (int b = 0; b < branches; ++b)
    {
        hh = slak_plan_max(hh, kh[b] / 2);
        hw = slak_plan_max(hw, kw[b] / 2);
        weights += (kh[b] >= kw[b] ? kw[b] : kh[b]) * slak_dwconv_fused_weight_row(kh[b], kw[b]);
    }
    const long long tile = slak_dwconv_fused_tile_rows(hh) * slak_dwconv_fused_tile_stride(hw);
    const long long sliding = ((tile + 3) & ~3LL) + weights + 1LL * kFusedTileH * kFusedOutStride;
    return slak_plan_max(sliding * 4, slak_dwconv_fused_taplist_smem(branches, kh, kw));
}

// Fused forward / input gradient / inference sum: grid (planes n * C, tile rows, tile columns), block (32, 4).
// Falls back to the per-branch kernels (SLAK_PLAN_KERNEL_PER_BRANCH, each launch planned by slak_plan_dwconv_fwd)
// for more than 3 branches, a tile over the default shared memory, or a grid over the device's limits.
inline int slak_plan_dwconv_fused(long long n, long long c, long long h, long long w, int branches, const int* kh,
                                  const int* kw, const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    if (n < 0 || c < 0 || h < 0 || w < 0) return SLAK_PLAN_ERROR_INVALID;
    const int bad = slak_plan_check_branches(branches, kh, kw);
    if (bad != 0) return bad;
    if (n * c * h * w == 0)
    {
        slak_plan_reset(p, SLAK_PLAN_KERNEL_NONE, kFusedThreads);
        return 0;
    }
    slak_plan_reset(p, SLAK_PLAN_KERNEL_PER_BRANCH, kFusedThreads);
    if (branches > kFusedMaxBranches)
    {
        p->fallback = SLAK_PLAN_FALLBACK_BRANCHES;
        return 0;
    }
    const long long smem = slak_dwconv_fused_smem(branches, kh, kw);
    if (smem > slak_plan_smem_budget(l, 0))
    {
        p->fallback = SLAK_PLAN_FALLBACK_SHARED;
        return 0;
    }
    const long long planes = n * c, tiles_y = slak_plan_ceil_div(h, kFusedTileH);
    const long long tiles_x = slak_plan_ceil_div(w, kFusedTileW);
    if (planes > l->max_grid_x || tiles_y > l->max_grid_y || tiles_x > l->max_grid_z)
    {
        p->fallback = SLAK_PLAN_FALLBACK_GRID;
        return 0;
    }
    p->kernel = SLAK_PLAN_KERNEL_DWCONV_FUSED;
    p->grid_x = static_cast<unsigned>(planes);
    p->grid_y = static_cast<unsigned>(tiles_y);
    p->grid_z = static_cast<unsigned>(tiles_x);
    p->block_x = kFusedTileW;
    p->block_y = kFusedThreadsY;
    slak_plan_set_smem(p, smem, 0, l);
    return 0;
}

// Fused weight gradient of all branches: block (channel, chunk of images), 8 warps; tiles of up to
// kFusedWgradTileLong outputs along each branch's long axis by kFusedWgradTileShort across it (tile_h x tile_w),
// staged per orientation phase (slak_dw_wgrad_phase in slak_params.h: the kernel derives its shared layout from the
// same functions), with small maps stacking several images per tile. The tile along the long axis is halved while the
// shared memory would exceed the default limit; below 8 outputs the plan falls back to the per-branch weight gradients
// (slak_plan_dwconv_wgrad), as for more than 3 branches. Then column_sum_finalize_kernel over the chunks.
inline int slak_plan_dwconv_fused_wgrad(long long n, long long c, long long h, long long w, int branches,
                                        const int* kh, const int* kw, const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    if (n < 0 || c < 0 || h < 0 || w < 0) return SLAK_PLAN_ERROR_INVALID;
    const int bad = slak_plan_check_branches(branches, kh, kw);
    if (bad != 0) return bad;
    if (n == 0 || c == 0 || h == 0 || w == 0)
    {
        slak_plan_reset(p, SLAK_PLAN_KERNEL_NONE, kFusedWgradThreads);
        return 0;
    }
    slak_plan_reset(p, SLAK_PLAN_KERNEL_PER_BRANCH, kFusedWgradThreads);
    if (branches > kFusedMaxBranches)
    {
        p->fallback = SLAK_PLAN_FALLBACK_BRANCHES;
        return 0;
    }
    if (c > l->max_grid_x) return SLAK_PLAN_ERROR_TOO_LARGE;
    long long hh = 0, hw = 0, total = 0;
    for (int b = 0; b < branches; ++b)
    {
        hh = slak_plan_max(hh, kh[b] / 2);
        hw = slak_plan_max(hw, kw[b] / 2);
        total += 1LL * kh[b] * kw[b];
    }
    slak_plan_wgrad_chunks(n, c, p);
    DwFusedWgradParams q{};
    q.n = static_cast<int>(slak_plan_min(n, 0x7fffffff));
    q.c = static_cast<int>(c);
    q.h = static_cast<int>(h);
    q.w = static_cast<int>(w);
    q.branches = branches;
    int* qkh[kFusedMaxBranches] = {&q.kh0, &q.kh1, &q.kh2};
    int* qkw[kFusedMaxBranches] = {&q.kw0, &q.kw1, &q.kw2};
    for (int b = 0; b < branches; ++b)
    {
        *qkh[b] = kh[b];
        *qkw[b] = kw[b];
    }
    q.halo_h = static_cast<int>(hh);
    q.halo_w = static_cast<int>(hw);
    q.images_per_chunk = p->per_chunk;
    q.tile_w = kFusedWgradTileShort;
    long long bytes = 0;
    for (q.tile_h = kFusedWgradTileLong; q.tile_h >= 8; q.tile_h /= 2)
    {
        bytes = slak_dw_wgrad_layout(q).floats * 4;
        if (bytes <= slak_plan_smem_budget(l, kFusedWgradStaticSmem)) break;
    }
    if (q.tile_h < 8)
    {
        p->fallback = SLAK_PLAN_FALLBACK_SHARED;
        return 0;
    }
    p->kernel = SLAK_PLAN_KERNEL_DWCONV_FUSED_WGRAD;
    p->tile_h = q.tile_h;
    p->tile_w = q.tile_w;
    p->grid_x = static_cast<unsigned>(c);
    p->grid_y = static_cast<unsigned>(p->chunks);
    p->block_x = kFusedWgradThreads;
    slak_plan_set_smem(p, bytes, kFusedWgradStaticSmem, l);
    p->workspace_bytes = 1LL * p->chunks * c * total * 4;
    return 0;
}

// ---- checking a plan against a device ----

enum SlakPlanViolation
{
    SLAK_PLAN_WITHIN_LIMITS = 0,
    SLAK_PLAN_VIOLATES_GRID = 1,         // a grid dimension is 0 or over the device maximum
    SLAK_PLAN_VIOLATES_BLOCK = 2,        // a block dimension or the thread count is over the device maximum
    SLAK_PLAN_VIOLATES_LAUNCH_BOUNDS = 3,// more threads than the kernel's __launch_bounds__
    SLAK_PLAN_VIOLATES_SHARED = 4,       // static + dynamic over the default without opt_in, or over the opt-in max
    SLAK_PLAN_VIOLATES_REGISTERS = 5,    // threads x 255 registers could exceed the registers of a block
};

// Whether a launch of *p fits the device *l (a NONE plan launches nothing and always fits). The register check is
// the worst case (every thread at the 255-register maximum, or at what __launch_bounds__ leaves it).
inline int slak_plan_violation(const SlakLaunchPlan* p, const SlakDeviceLimits* l)
{
    if (p->kernel == SLAK_PLAN_KERNEL_NONE || p->kernel == SLAK_PLAN_KERNEL_PER_BRANCH) return SLAK_PLAN_WITHIN_LIMITS;
    if (p->grid_x < 1 || p->grid_y < 1 || p->grid_z < 1 || p->grid_x > static_cast<unsigned>(l->max_grid_x) ||
        p->grid_y > static_cast<unsigned>(l->max_grid_y) || p->grid_z > static_cast<unsigned>(l->max_grid_z))
        return SLAK_PLAN_VIOLATES_GRID;
    const long long threads = 1LL * p->block_x * p->block_y * p->block_z;
    if (threads < 1 || threads > l->max_threads_per_block || p->block_x > static_cast<unsigned>(l->max_block_x) ||
        p->block_y > static_cast<unsigned>(l->max_block_y) || p->block_z > static_cast<unsigned>(l->max_block_z))
        return SLAK_PLAN_VIOLATES_BLOCK;
    if (p->launch_bound > 0 && threads > p->launch_bound) return SLAK_PLAN_VIOLATES_LAUNCH_BOUNDS;
    const long long smem = 1LL * p->smem_dynamic + p->smem_static;
    if (smem > (p->opt_in ? l->smem_per_block_optin : l->smem_per_block_default)) return SLAK_PLAN_VIOLATES_SHARED;
    // ptxas keeps registers per thread <= min(255, regs per block / launch bound); without a bound a thread may take
    // all 255, so the block's threads x 255 must fit the block's registers (true up to 256 threads).
    const long long regs = p->launch_bound > 0
        ? slak_plan_min(l->max_regs_per_thread, l->max_regs_per_block / p->launch_bound) : l->max_regs_per_thread;
    if (threads * regs > l->max_regs_per_block) return SLAK_PLAN_VIOLATES_REGISTERS;
    return SLAK_PLAN_WITHIN_LIMITS;
}

// ---- dwconv_small.cu: small maps (stages 3-4) ----

// Whether dwconv_small_kernel takes this shape: at most kSmallMaxPixels pixels (14 x 14, 7 x 7, 8 x 8 of 256 px
// inputs; 16 x 16 is not taken: its planes would leave 3 warps per SM), at least kSmallMinImages images (the lanes run
// over images), at most kFusedMaxBranches branches, and every branch's band within kSmallMaxBandRegs registers (a
// dense 13 x 13 on 14 x 14 is not). The ONE predicate of the dispatch: the launchers and kernel-model call
// slak_plan_dwconv_small, which applies it.
inline bool slak_dwconv_small_takes(long long n, long long h, long long w, int branches, const int* kh, const int* kw)
{
    if (n < kSmallMinImages || h * w > kSmallMaxPixels || branches > kFusedMaxBranches) return false;
    for (int b = 0; b < branches; ++b)
        if (slak_small_band_regs(static_cast<int>(h), static_cast<int>(w), kh[b], kw[b]) > kSmallMaxBandRegs)
            return false;
    return true;
}

// Dynamic shared bytes of dwconv_small_kernel with `threads` threads: the weights of every branch (rounded to 4
// floats), then an input and an output plane per thread.
inline long long slak_dwconv_small_smem(long long h, long long w, int branches, const int* kh, const int* kw,
                                        int threads)
{
    long long weights = 0;
    for (int b = 0; b < branches; ++b) weights += 1LL * kh[b] * kw[b];
    return (((weights + 3) & ~3LL) + 2LL * threads * slak_small_plane_stride(static_cast<int>(h), static_cast<int>(w))) * 4;
}

// The plan of the forward / input gradient / inference sum of the decomposed depthwise convolution: dwconv_small_kernel
// (grid (C, image groups), block of 32 x warps threads, up to kSmallMaxThreads, as many warps as the images fill and
// the opt-in shared memory allows) when slak_dwconv_small_takes the shape and its grid fits, else
// slak_plan_dwconv_fused's plan.
inline int slak_plan_dwconv_small(long long n, long long c, long long h, long long w, int branches, const int* kh,
                                  const int* kw, const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    if (n < 0 || c < 0 || h < 0 || w < 0) return SLAK_PLAN_ERROR_INVALID;
    const int bad = slak_plan_check_branches(branches, kh, kw);
    if (bad != 0 || n * c * h * w == 0 || !slak_dwconv_small_takes(n, h, w, branches, kh, kw))
        return slak_plan_dwconv_fused(n, c, h, w, branches, kh, kw, l, p);
    int threads = static_cast<int>(slak_plan_min(kSmallMaxThreads, slak_plan_ceil_div(n, 32) * 32));
    while (threads > 32 && slak_dwconv_small_smem(h, w, branches, kh, kw, threads) > l->smem_per_block_optin)
        threads -= 32;
    const long long smem = slak_dwconv_small_smem(h, w, branches, kh, kw, threads);
    const long long groups = slak_plan_ceil_div(n, threads);
    if (smem > l->smem_per_block_optin || c > l->max_grid_x || groups > l->max_grid_y)
        return slak_plan_dwconv_fused(n, c, h, w, branches, kh, kw, l, p);
    slak_plan_reset(p, SLAK_PLAN_KERNEL_DWCONV_SMALL, kSmallMaxThreads);
    p->grid_x = static_cast<unsigned>(c);
    p->grid_y = static_cast<unsigned>(groups);
    p->block_x = static_cast<unsigned>(threads);
    slak_plan_set_smem(p, smem, 0, l);
    return 0;
}
