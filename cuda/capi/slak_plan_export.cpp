// slak_plan_export.cpp: exports the launch plans of cuda/include/slak/slak_plan.h from libslak_emu.so (linked into
// the slak_emu target; the names start with slak_emu_ to pass its version script), so that the C# launchers
// (src/Slak.Cuda/Kernels/LaunchPlans.cs) run the very code the C ABI runs instead of a port. Also exports the plan
// constants the launchers need and a layout table (sizeof / offsetof) of every params struct, against which the C#
// mirrors are checked field by field (tests/Slak.Tests/Cuda/PlanStructLayoutTests.cs).
//
// Host code only: nothing here touches the emulator; it is in the emulator's library because that library is built
// by `dotnet build` and ships with Slak.Cuda everywhere (GPU machines included).
#include <cstddef>
#include <cstring>

#include "slak/slak_plan.h"

#define SLAK_PLAN_EXPORT extern "C" __attribute__((visibility("default")))

SLAK_PLAN_EXPORT int slak_emu_plan_limits(int sm, SlakDeviceLimits* out)
{
    return out == nullptr ? SLAK_PLAN_ERROR_INVALID : slak_device_limits_for_sm(sm, out);
}

SLAK_PLAN_EXPORT int slak_emu_plan_grid_stride(long long n, int block, int max_blocks, const SlakDeviceLimits* l,
                                               SlakLaunchPlan* p)
{
    return l == nullptr || p == nullptr ? SLAK_PLAN_ERROR_INVALID : slak_plan_grid_stride(n, block, max_blocks, l, p);
}

SLAK_PLAN_EXPORT int slak_emu_plan_rows(long long rows, int block, const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    return l == nullptr || p == nullptr ? SLAK_PLAN_ERROR_INVALID : slak_plan_rows(rows, block, l, p);
}

SLAK_PLAN_EXPORT int slak_emu_plan_elements(long long n, int block, const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    return l == nullptr || p == nullptr ? SLAK_PLAN_ERROR_INVALID : slak_plan_elements(n, block, l, p);
}

SLAK_PLAN_EXPORT int slak_emu_plan_column_sum(long long rows, long long c, const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    return l == nullptr || p == nullptr ? SLAK_PLAN_ERROR_INVALID : slak_plan_column_sum(rows, c, l, p);
}

SLAK_PLAN_EXPORT int slak_emu_plan_dwconv_fwd(long long n, long long c, long long h, long long w, int kh, int kw,
                                              const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    return l == nullptr || p == nullptr ? SLAK_PLAN_ERROR_INVALID : slak_plan_dwconv_fwd(n, c, h, w, kh, kw, l, p);
}

SLAK_PLAN_EXPORT int slak_emu_plan_dwconv_wgrad(long long n, long long c, long long h, long long w, int kh, int kw,
                                                const SlakDeviceLimits* l, SlakLaunchPlan* p)
{
    return l == nullptr || p == nullptr ? SLAK_PLAN_ERROR_INVALID : slak_plan_dwconv_wgrad(n, c, h, w, kh, kw, l, p);
}

SLAK_PLAN_EXPORT int slak_emu_plan_dwconv_fused(long long n, long long c, long long h, long long w, int branches,
                                                const int* kh, const int* kw, const SlakDeviceLimits* l,
                                                SlakLaunchPlan* p)
{
    return l == nullptr || p == nullptr ? SLAK_PLAN_ERROR_INVALID
                                        : slak_plan_dwconv_fused(n, c, h, w, branches, kh, kw, l, p);
}

SLAK_PLAN_EXPORT int slak_emu_plan_dwconv_fused_wgrad(long long n, long long c, long long h, long long w, int branches,
                                                      const int* kh, const int* kw, const SlakDeviceLimits* l,
                                                      SlakLaunchPlan* p)
{
    return l == nullptr || p == nullptr ? SLAK_PLAN_ERROR_INVALID
                                        : slak_plan_dwconv_fused_wgrad(n, c, h, w, branches, kh, kw, l, p);
}

SLAK_PLAN_EXPORT int slak_emu_plan_dwconv_small(long long n, long long c, long long h, long long w, int branches,
                                                const int* kh, const int* kw, const SlakDeviceLimits* l,
                                                SlakLaunchPlan* p)
{
    return l == nullptr || p == nullptr ? SLAK_PLAN_ERROR_INVALID
                                        : slak_plan_dwconv_small(n, c, h, w, branches, kh, kw, l, p);
}

SLAK_PLAN_EXPORT int slak_emu_plan_violation(const SlakLaunchPlan* p, const SlakDeviceLimits* l)
{
    return l == nullptr || p == nullptr ? SLAK_PLAN_ERROR_INVALID : slak_plan_violation(p, l);
}

// ---- constants ----
namespace
{
struct NamedConstant
{
    const char* name;
    long long value;
};

#define SLAK_CONSTANT(x) {#x, static_cast<long long>(x)}
const NamedConstant kConstants[] = {
    SLAK_CONSTANT(kSlakBlock),           SLAK_CONSTANT(kSlakGridStrideMaxBlocks), SLAK_CONSTANT(kSlakRowBlock),
    SLAK_CONSTANT(kSlakSumBlocks),       SLAK_CONSTANT(kSparseBlock),             SLAK_CONSTANT(kSparseMaxBlocks),
    SLAK_CONSTANT(kSparseScanThreads),   SLAK_CONSTANT(kSparseRadixPasses),       SLAK_CONSTANT(kFusedMaxBranches),
    SLAK_CONSTANT(kPermuteMaxRank),      SLAK_CONSTANT(kDwTileW),                 SLAK_CONSTANT(kDwTileH),
    SLAK_CONSTANT(kFusedTileW),          SLAK_CONSTANT(kFusedTileH),              SLAK_CONSTANT(kFusedWgradStaticSmem),
    SLAK_CONSTANT(kFusedRows),           SLAK_CONSTANT(kFusedChunk),
    SLAK_CONSTANT(kSmallMaxThreads),     SLAK_CONSTANT(kSmallMaxPixels),          SLAK_CONSTANT(kSmallMinImages),
};
#undef SLAK_CONSTANT

// ---- layout table: one row per field, then one row per struct with an empty field name and its sizeof ----
struct LayoutRow
{
    const char* type;
    const char* field;
    long long offset;
    long long size;
};

#define SLAK_FIELD(T, f) {#T, #f, static_cast<long long>(offsetof(T, f)), static_cast<long long>(sizeof(T::f))}
#define SLAK_STRUCT(T) {#T, "", 0, static_cast<long long>(sizeof(T))}
const LayoutRow kLayout[] = {
    SLAK_STRUCT(DwConvParams), SLAK_FIELD(DwConvParams, n), SLAK_FIELD(DwConvParams, c), SLAK_FIELD(DwConvParams, h),
    SLAK_FIELD(DwConvParams, w), SLAK_FIELD(DwConvParams, kh), SLAK_FIELD(DwConvParams, kw),
    SLAK_FIELD(DwConvParams, flip),

    SLAK_STRUCT(DwWgradParams), SLAK_FIELD(DwWgradParams, n), SLAK_FIELD(DwWgradParams, c),
    SLAK_FIELD(DwWgradParams, h), SLAK_FIELD(DwWgradParams, w), SLAK_FIELD(DwWgradParams, kh),
    SLAK_FIELD(DwWgradParams, kw), SLAK_FIELD(DwWgradParams, images_per_chunk), SLAK_FIELD(DwWgradParams, tile_h),
    SLAK_FIELD(DwWgradParams, tile_w), SLAK_FIELD(DwWgradParams, skip_masked),

    SLAK_STRUCT(DwFusedParams), SLAK_FIELD(DwFusedParams, n), SLAK_FIELD(DwFusedParams, c),
    SLAK_FIELD(DwFusedParams, h), SLAK_FIELD(DwFusedParams, w), SLAK_FIELD(DwFusedParams, branches),
    SLAK_FIELD(DwFusedParams, kh0), SLAK_FIELD(DwFusedParams, kw0), SLAK_FIELD(DwFusedParams, kh1),
    SLAK_FIELD(DwFusedParams, kw1), SLAK_FIELD(DwFusedParams, kh2), SLAK_FIELD(DwFusedParams, kw2),
    SLAK_FIELD(DwFusedParams, halo_h), SLAK_FIELD(DwFusedParams, halo_w), SLAK_FIELD(DwFusedParams, flip),
    SLAK_FIELD(DwFusedParams, sum),

    SLAK_STRUCT(DwFusedWgradParams), SLAK_FIELD(DwFusedWgradParams, n), SLAK_FIELD(DwFusedWgradParams, c),
    SLAK_FIELD(DwFusedWgradParams, h), SLAK_FIELD(DwFusedWgradParams, w), SLAK_FIELD(DwFusedWgradParams, branches),
    SLAK_FIELD(DwFusedWgradParams, kh0), SLAK_FIELD(DwFusedWgradParams, kw0), SLAK_FIELD(DwFusedWgradParams, kh1),
    SLAK_FIELD(DwFusedWgradParams, kw1), SLAK_FIELD(DwFusedWgradParams, kh2), SLAK_FIELD(DwFusedWgradParams, kw2),
    SLAK_FIELD(DwFusedWgradParams, halo_h), SLAK_FIELD(DwFusedWgradParams, halo_w),
    SLAK_FIELD(DwFusedWgradParams, images_per_chunk), SLAK_FIELD(DwFusedWgradParams, tile_h),
    SLAK_FIELD(DwFusedWgradParams, tile_w),

    SLAK_STRUCT(Conv2dParams), SLAK_FIELD(Conv2dParams, n), SLAK_FIELD(Conv2dParams, cin), SLAK_FIELD(Conv2dParams, h),
    SLAK_FIELD(Conv2dParams, w), SLAK_FIELD(Conv2dParams, cout), SLAK_FIELD(Conv2dParams, kh),
    SLAK_FIELD(Conv2dParams, kw), SLAK_FIELD(Conv2dParams, stride_h), SLAK_FIELD(Conv2dParams, stride_w),
    SLAK_FIELD(Conv2dParams, pad_h), SLAK_FIELD(Conv2dParams, pad_w), SLAK_FIELD(Conv2dParams, out_h),
    SLAK_FIELD(Conv2dParams, out_w),

    SLAK_STRUCT(PermuteParams), SLAK_FIELD(PermuteParams, rank), SLAK_FIELD(PermuteParams, out_shape),
    SLAK_FIELD(PermuteParams, in_stride),

    SLAK_STRUCT(SparseSelectState), SLAK_FIELD(SparseSelectState, k), SLAK_FIELD(SparseSelectState, remaining),
    SLAK_FIELD(SparseSelectState, prefix), SLAK_FIELD(SparseSelectState, bound),
    SLAK_FIELD(SparseSelectState, eligible), SLAK_FIELD(SparseSelectState, done), SLAK_FIELD(SparseSelectState, pad),
    SLAK_FIELD(SparseSelectState, hist),

    SLAK_STRUCT(SlakDeviceLimits), SLAK_FIELD(SlakDeviceLimits, sm), SLAK_FIELD(SlakDeviceLimits, max_threads_per_block),
    SLAK_FIELD(SlakDeviceLimits, max_block_x), SLAK_FIELD(SlakDeviceLimits, max_block_y),
    SLAK_FIELD(SlakDeviceLimits, max_block_z), SLAK_FIELD(SlakDeviceLimits, max_grid_x),
    SLAK_FIELD(SlakDeviceLimits, max_grid_y), SLAK_FIELD(SlakDeviceLimits, max_grid_z),
    SLAK_FIELD(SlakDeviceLimits, max_regs_per_thread), SLAK_FIELD(SlakDeviceLimits, max_regs_per_block),
    SLAK_FIELD(SlakDeviceLimits, smem_per_block_default), SLAK_FIELD(SlakDeviceLimits, smem_per_block_optin),
    SLAK_FIELD(SlakDeviceLimits, smem_per_sm), SLAK_FIELD(SlakDeviceLimits, max_threads_per_sm),
    SLAK_FIELD(SlakDeviceLimits, max_blocks_per_sm), SLAK_FIELD(SlakDeviceLimits, warp_size),

    SLAK_STRUCT(SlakLaunchPlan), SLAK_FIELD(SlakLaunchPlan, kernel), SLAK_FIELD(SlakLaunchPlan, fallback),
    SLAK_FIELD(SlakLaunchPlan, grid_x), SLAK_FIELD(SlakLaunchPlan, grid_y), SLAK_FIELD(SlakLaunchPlan, grid_z),
    SLAK_FIELD(SlakLaunchPlan, block_x), SLAK_FIELD(SlakLaunchPlan, block_y), SLAK_FIELD(SlakLaunchPlan, block_z),
    SLAK_FIELD(SlakLaunchPlan, smem_dynamic), SLAK_FIELD(SlakLaunchPlan, smem_static),
    SLAK_FIELD(SlakLaunchPlan, opt_in), SLAK_FIELD(SlakLaunchPlan, launches),
    SLAK_FIELD(SlakLaunchPlan, items_per_launch), SLAK_FIELD(SlakLaunchPlan, tile_h),
    SLAK_FIELD(SlakLaunchPlan, tile_w), SLAK_FIELD(SlakLaunchPlan, chunks), SLAK_FIELD(SlakLaunchPlan, per_chunk),
    SLAK_FIELD(SlakLaunchPlan, workspace_bytes), SLAK_FIELD(SlakLaunchPlan, launch_bound),
    SLAK_FIELD(SlakLaunchPlan, reserved),
};
#undef SLAK_FIELD
#undef SLAK_STRUCT
}  // namespace

// The value of the plan constant called `name` (e.g. "kSlakBlock") into *value; 0, or -1 for an unknown name.
SLAK_PLAN_EXPORT int slak_emu_plan_constant(const char* name, long long* value)
{
    if (name == nullptr || value == nullptr) return SLAK_PLAN_ERROR_INVALID;
    for (const NamedConstant& c : kConstants)
        if (std::strcmp(c.name, name) == 0)
        {
            *value = c.value;
            return 0;
        }
    return SLAK_PLAN_ERROR_INVALID;
}

// Row `index` of the layout table (struct, field or "" for the struct's sizeof, offset, size); -1 past the end.
SLAK_PLAN_EXPORT int slak_emu_plan_layout(int index, const char** type, const char** field, long long* offset,
                                          long long* size)
{
    if (index < 0 || index >= static_cast<int>(sizeof kLayout / sizeof kLayout[0])) return -1;
    const LayoutRow& r = kLayout[index];
    *type = r.type;
    *field = r.field;
    *offset = r.offset;
    *size = r.size;
    return 0;
}
