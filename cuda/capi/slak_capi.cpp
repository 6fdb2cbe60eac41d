// slak_capi.cpp: the backend-independent half of the C ABI (include/slak/slak.h): argument validation, workspace
// sizes and the orchestration of the launches. Every kernel choice, grid, block, shared size, split, tile and chunk
// comes from the launch plans of cuda/include/slak/slak_plan.h (the functions the C# launchers call too), for the
// limits of the backend's device. The decomposed operations run the fused kernels of dwconv_fused.cu when their plan
// allows and the per-branch kernels of dwconv.cu otherwise; the single-branch functions are their one-branch case
// (the same runners, plans and workspace rules, after their own validation). Kernels are enqueued through
// slak_capi::launch (backend_emu.cpp or backend_cuda.cu). Validation runs completely before the first launch, so a
// rejected call writes nothing; no C++ exception crosses the ABI.
#include <algorithm>
#include <climits>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "slak/slak.h"
#include "slak/slak_plan.h"
#include "slak_capi_backend.h"

using namespace slak_capi;

namespace
{
thread_local std::string t_last_error;

slak_status ok()
{
    t_last_error.clear();
    return SLAK_STATUS_SUCCESS;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
slak_status fail(slak_status s, const char* fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    t_last_error = buf;
    return s;
}

#define SLAK_TRY(expr)                                   \
    do {                                                 \
        slak_status s_ = (expr);                         \
        if (s_ != SLAK_STATUS_SUCCESS) return s_;        \
    } while (0)

// A launch plan's status (slak_plan.h) as the C ABI status of `fn` (needs `fn` in scope).
#define SLAK_TRY_PLAN(expr, what) SLAK_TRY(planned(fn, (expr), (what)))

// Geometry shared by the single-branch and decomposed descriptions.
struct Geometry
{
    long long n, c, h, w;
    const int64_t* x_stride;
    const int64_t* y_stride;
    long long numel() const { return n * c * h * w; }
};

slak_status check_strides(const char* fn, const char* which, const Geometry& g, const int64_t* stride)
{
    if (g.numel() == 0) return SLAK_STATUS_SUCCESS; // nothing is addressed
    const long long size[4] = {g.n, g.c, g.h, g.w};
    long long expect = 1;
    for (int d = 3; d >= 0; --d)
    {
        if (size[d] != 1 && stride[d] != expect)
            return fail(SLAK_STATUS_UNSUPPORTED_LAYOUT,
                        "%s: %s strides (%lld, %lld, %lld, %lld) for sizes (%lld, %lld, %lld, %lld) are not packed NCHW "
                        "(expected stride[%d] = %lld); make the tensor contiguous first",
                        fn, which, (long long)stride[0], (long long)stride[1], (long long)stride[2],
                        (long long)stride[3], g.n, g.c, g.h, g.w, d, expect);
        expect *= size[d];
    }
    return SLAK_STATUS_SUCCESS;
}

slak_status check_geometry(const char* fn, const Geometry& g)
{
    const long long size[4] = {g.n, g.c, g.h, g.w};
    const char* names[4] = {"n", "c", "h", "w"};
    for (int d = 0; d < 4; ++d)
        if (size[d] < 0 || size[d] > INT_MAX)
            return fail(size[d] < 0 ? SLAK_STATUS_INVALID_ARGUMENT : SLAK_STATUS_PROBLEM_TOO_LARGE,
                        "%s: size %s = %lld is out of range [0, %d]", fn, names[d], size[d], INT_MAX);
    // Every product below stays in 64 bits: each factor is < 2^31, and n*c*h*w is checked step by step.
    long long p = 1;
    for (int d = 0; d < 4; ++d)
    {
        if (size[d] != 0 && p > LLONG_MAX / 4 / size[d])
            return fail(SLAK_STATUS_PROBLEM_TOO_LARGE, "%s: n*c*h*w overflows (%lld x %lld x %lld x %lld)", fn, g.n,
                        g.c, g.h, g.w);
        p *= size[d];
    }
    if (g.x_stride == nullptr || g.y_stride == nullptr) return fail(SLAK_STATUS_NULL_POINTER, "%s: strides", fn);
    slak_status s = check_strides(fn, "x", g, g.x_stride);
    if (s != SLAK_STATUS_SUCCESS) return s;
    return check_strides(fn, "y", g, g.y_stride);
}

slak_status check_filter(const char* fn, const char* which, long long c, int kh, int kw)
{
    if (kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0)
        return fail(SLAK_STATUS_INVALID_ARGUMENT, "%s: %s filter must have odd extents >= 1, got kh=%d kw=%d", fn,
                    which, kh, kw);
    const long long taps = 1LL * kh * kw;
    if (taps > INT_MAX || c * taps > INT_MAX)
        return fail(SLAK_STATUS_PROBLEM_TOO_LARGE, "%s: %s filter c*kh*kw = %lld x %d x %d exceeds %d", fn, which, c,
                    kh, kw, INT_MAX);
    return SLAK_STATUS_SUCCESS;
}

slak_status run(Kernel k, const LaunchConfig& cfg, void** args, void* stream, const char* fn)
{
    std::string error;
    if (!launch(k, cfg, args, stream, error))
        return fail(SLAK_STATUS_LAUNCH_FAILED, "%s: %s", fn, error.c_str());
    return SLAK_STATUS_SUCCESS;
}

// The limits of the backend's device (queried once per call; the CUDA backend caches per device).
slak_status limits_of(const char* fn, SlakDeviceLimits& l)
{
    std::string error;
    if (!device_limits(l, error)) return fail(SLAK_STATUS_LAUNCH_FAILED, "%s: %s", fn, error.c_str());
    return SLAK_STATUS_SUCCESS;
}

// A plan status as a C ABI status.
slak_status planned(const char* fn, int status, const char* what)
{
    if (status == 0) return SLAK_STATUS_SUCCESS;
    return fail(status == SLAK_PLAN_ERROR_TOO_LARGE ? SLAK_STATUS_PROBLEM_TOO_LARGE : SLAK_STATUS_INVALID_ARGUMENT,
                "%s: no launch plan for %s", fn, what);
}

LaunchConfig config_of(const SlakLaunchPlan& p)
{
    return {{p.grid_x, p.grid_y, p.grid_z}, {p.block_x, p.block_y, p.block_z},
            static_cast<unsigned>(p.smem_dynamic)};
}

// A grid-stride launch over n elements with the default block (element-wise kernels).
slak_status run_grid_stride(Kernel k, long long n, void** args, void* stream, const char* fn,
                            const SlakDeviceLimits& l)
{
    SlakLaunchPlan p{};
    SLAK_TRY_PLAN(slak_plan_grid_stride(n, kSlakBlock, kSlakGridStrideMaxBlocks, &l, &p), "a grid-stride loop");
    if (p.kernel == SLAK_PLAN_KERNEL_NONE) return SLAK_STATUS_SUCCESS;
    return run(k, config_of(p), args, stream, fn);
}

// dw = column sums of (chunks, cols) partials.
slak_status finalize(const char* fn, float* dw, const float* partials, int chunks, long long cols, void* stream,
                     const SlakDeviceLimits& l)
{
    SlakLaunchPlan p{};
    SLAK_TRY_PLAN(slak_plan_elements(cols, kSlakBlock, &l, &p), "the column-sum finalize");
    if (p.kernel == SLAK_PLAN_KERNEL_NONE) return SLAK_STATUS_SUCCESS;
    int c = static_cast<int>(cols);
    void* args[] = {&dw, &partials, &chunks, &c};
    return run(Kernel::ColumnSumFinalize, config_of(p), args, stream, fn);
}

// y = dwconv(x, w*mask) (flip: rotated filter). Arguments already validated.
slak_status conv(const char* fn, const Geometry& g, int kh, int kw, bool flip, float* y, const float* x,
                 const float* w, const float* mask, void* stream, const SlakDeviceLimits& l)
{
    SlakLaunchPlan pl{};
    SLAK_TRY_PLAN(slak_plan_dwconv_fwd(g.n, g.c, g.h, g.w, kh, kw, &l, &pl), "the depthwise convolution");
    if (pl.kernel == SLAK_PLAN_KERNEL_NONE) return SLAK_STATUS_SUCCESS;
    if (pl.kernel == SLAK_PLAN_KERNEL_DWCONV_FWD_TILED)
    {
        // grid.z enumerates (image, channel) planes: launches of items_per_launch whole images keep it <= 65535.
        const long long image = g.c * g.h * g.w;
        for (long long i0 = 0; i0 < g.n; i0 += pl.items_per_launch)
        {
            const long long cnt = std::min(pl.items_per_launch, g.n - i0);
            DwConvParams p{static_cast<int>(cnt), static_cast<int>(g.c), static_cast<int>(g.h), static_cast<int>(g.w),
                           kh, kw, flip ? 1 : 0};
            float* yy = y + i0 * image;
            const float* xx = x + i0 * image;
            void* args[] = {&yy, &xx, &w, &mask, &p};
            LaunchConfig cfg = config_of(pl);
            cfg.grid[2] = static_cast<unsigned>(cnt * g.c);
            SLAK_TRY(run(Kernel::DwConvFwdTiled, cfg, args, stream, fn));
        }
        return SLAK_STATUS_SUCCESS;
    }
    DwConvParams p{static_cast<int>(g.n), static_cast<int>(g.c), static_cast<int>(g.h), static_cast<int>(g.w), kh, kw,
                   flip ? 1 : 0};
    void* args[] = {&y, &x, &w, &mask, &p};
    return run(Kernel::DwConvFwdDirect, config_of(pl), args, stream, fn);
}

slak_status wgrad(const char* fn, const Geometry& g, int kh, int kw, float* dw, const float* x, const float* dy,
                  const float* mask, int skip_masked, void* ws, void* stream, const SlakDeviceLimits& l)
{
    const long long taps = 1LL * kh * kw, total = g.c * taps;
    if (total == 0) return SLAK_STATUS_SUCCESS;
    SlakLaunchPlan pl{};
    SLAK_TRY_PLAN(slak_plan_dwconv_wgrad(g.n, g.c, g.h, g.w, kh, kw, &l, &pl), "the weight gradient");
    if (pl.kernel == SLAK_PLAN_KERNEL_NONE)
    {
        float zero = 0.0f;
        long long n = total;
        void* args[] = {&dw, &zero, &n};
        return run_grid_stride(Kernel::Fill, total, args, stream, fn, l);
    }
    float* partials = static_cast<float*>(ws);
    DwWgradParams p{static_cast<int>(g.n), static_cast<int>(g.c), static_cast<int>(g.h), static_cast<int>(g.w),
                    kh, kw, pl.per_chunk, pl.tile_h, pl.tile_w, skip_masked ? 1 : 0};
    void* args[] = {&partials, &x, &dy, &mask, &p};
    SLAK_TRY(run(pl.kernel == SLAK_PLAN_KERNEL_DWCONV_WGRAD_TILED ? Kernel::DwWgradTiled : Kernel::DwWgradDirect,
                 config_of(pl), args, stream, fn));
    return finalize(fn, dw, partials, pl.chunks, total, stream, l);
}

Geometry geometry_of(const slak_dwconv2d_params* p) { return {p->n, p->c, p->h, p->w, p->x_stride, p->y_stride}; }
Geometry geometry_of(const slak_decomposed_dwconv2d_params* p)
{
    return {p->n, p->c, p->h, p->w, p->x_stride, p->y_stride};
}

// Checks a single-branch description; fills g.
slak_status check_single(const char* fn, const slak_dwconv2d_params* p, Geometry& g)
{
    if (p == nullptr) return fail(SLAK_STATUS_NULL_POINTER, "%s: params is NULL", fn);
    g = geometry_of(p);
    slak_status s = check_geometry(fn, g);
    if (s != SLAK_STATUS_SUCCESS) return s;
    return check_filter(fn, "the", g.c, p->kh, p->kw);
}

slak_status check_decomposed(const char* fn, const slak_decomposed_dwconv2d_params* p, Geometry& g)
{
    if (p == nullptr) return fail(SLAK_STATUS_NULL_POINTER, "%s: params is NULL", fn);
    g = geometry_of(p);
    slak_status s = check_geometry(fn, g);
    if (s != SLAK_STATUS_SUCCESS) return s;
    if (p->num_branches < 1 || p->num_branches > SLAK_MAX_BRANCHES)
        return fail(SLAK_STATUS_INVALID_ARGUMENT, "%s: num_branches must be in [1, %d], got %d", fn,
                    SLAK_MAX_BRANCHES, p->num_branches);
    for (int b = 0; b < p->num_branches; ++b)
    {
        char which[32];
        std::snprintf(which, sizeof which, "branch %d", b);
        s = check_filter(fn, which, g.c, p->kh[b], p->kw[b]);
        if (s != SLAK_STATUS_SUCCESS) return s;
    }
    return SLAK_STATUS_SUCCESS;
}

slak_status need(const char* fn, const void* ptr, const char* name, bool required)
{
    if (required && ptr == nullptr) return fail(SLAK_STATUS_NULL_POINTER, "%s: %s is NULL", fn, name);
    return SLAK_STATUS_SUCCESS;
}

// Runs body, turning any C++ exception into a status (the ABI is C).
template <class F> slak_status guarded(const char* fn, F&& body)
{
    try
    {
        return body();
    }
    catch (const std::exception& e)
    {
        return fail(SLAK_STATUS_INTERNAL_ERROR, "%s: %s", fn, e.what());
    }
    catch (...)
    {
        return fail(SLAK_STATUS_INTERNAL_ERROR, "%s: unknown C++ exception", fn);
    }
}

slak_status check_workspace(const char* fn, const void* ws, size_t have, long long need_bytes)
{
    if (need_bytes == 0) return SLAK_STATUS_SUCCESS;
    if (static_cast<unsigned long long>(need_bytes) > have)
        return fail(SLAK_STATUS_WORKSPACE_TOO_SMALL, "%s: workspace of %zu bytes is smaller than the %lld required",
                    fn, have, need_bytes);
    if (ws == nullptr) return fail(SLAK_STATUS_NULL_POINTER, "%s: workspace is NULL (%lld bytes required)", fn,
                                   need_bytes);
    return SLAK_STATUS_SUCCESS;
}
}  // namespace

extern "C" {

SLAK_API int slak_abi_version(void) { return SLAK_ABI_VERSION; }
SLAK_API const char* slak_backend_name(void) { return backend_name(); }
SLAK_API const char* slak_last_error(void) { return t_last_error.c_str(); }

SLAK_API const char* slak_status_string(slak_status status)
{
    switch (status)
    {
    case SLAK_STATUS_SUCCESS: return "SLAK_STATUS_SUCCESS";
    case SLAK_STATUS_NULL_POINTER: return "SLAK_STATUS_NULL_POINTER";
    case SLAK_STATUS_INVALID_ARGUMENT: return "SLAK_STATUS_INVALID_ARGUMENT";
    case SLAK_STATUS_UNSUPPORTED_LAYOUT: return "SLAK_STATUS_UNSUPPORTED_LAYOUT";
    case SLAK_STATUS_WORKSPACE_TOO_SMALL: return "SLAK_STATUS_WORKSPACE_TOO_SMALL";
    case SLAK_STATUS_PROBLEM_TOO_LARGE: return "SLAK_STATUS_PROBLEM_TOO_LARGE";
    case SLAK_STATUS_LAUNCH_FAILED: return "SLAK_STATUS_LAUNCH_FAILED";
    case SLAK_STATUS_INTERNAL_ERROR: return "SLAK_STATUS_INTERNAL_ERROR";
    }
    return "unknown slak_status";
}

SLAK_API slak_status slak_dwconv2d_params_init(slak_dwconv2d_params* p, int64_t n, int64_t c, int64_t h, int64_t w,
                                               int32_t kh, int32_t kw)
{
    if (p == nullptr) return fail(SLAK_STATUS_NULL_POINTER, "slak_dwconv2d_params_init: p is NULL");
    *p = slak_dwconv2d_params{};
    p->n = n; p->c = c; p->h = h; p->w = w; p->kh = kh; p->kw = kw;
    const int64_t s[4] = {c * h * w, h * w, w, 1};
    for (int d = 0; d < 4; ++d) p->x_stride[d] = p->y_stride[d] = s[d];
    return ok();
}

namespace
{
// Workspace of one branch's per-branch weight gradient (dwconv.cu): its plan's partials.
slak_status wgrad_workspace(const char* fn, const Geometry& g, int kh, int kw, const SlakDeviceLimits& l,
                            long long& bytes)
{
    SlakLaunchPlan pl{};
    SLAK_TRY_PLAN(slak_plan_dwconv_wgrad(g.n, g.c, g.h, g.w, kh, kw, &l, &pl), "the weight gradient");
    bytes = pl.workspace_bytes;
    return SLAK_STATUS_SUCCESS;
}

// The fused plans of a decomposed description (forward / input gradient, and weight gradient).
slak_status fused_plan(const char* fn, const Geometry& g, const slak_decomposed_dwconv2d_params* p,
                       const SlakDeviceLimits& l, SlakLaunchPlan& pl)
{
    const int kh[SLAK_MAX_BRANCHES] = {p->kh[0], p->kh[1], p->kh[2]};
    const int kw[SLAK_MAX_BRANCHES] = {p->kw[0], p->kw[1], p->kw[2]};
    SLAK_TRY_PLAN(slak_plan_dwconv_fused(g.n, g.c, g.h, g.w, p->num_branches, kh, kw, &l, &pl),
                  "the fused depthwise convolution");
    return SLAK_STATUS_SUCCESS;
}

slak_status fused_wgrad_plan(const char* fn, const Geometry& g, const slak_decomposed_dwconv2d_params* p,
                             const SlakDeviceLimits& l, SlakLaunchPlan& pl)
{
    const int kh[SLAK_MAX_BRANCHES] = {p->kh[0], p->kh[1], p->kh[2]};
    const int kw[SLAK_MAX_BRANCHES] = {p->kw[0], p->kw[1], p->kw[2]};
    SLAK_TRY_PLAN(slak_plan_dwconv_fused_wgrad(g.n, g.c, g.h, g.w, p->num_branches, kh, kw, &l, &pl),
                  "the fused weight gradient");
    return SLAK_STATUS_SUCCESS;
}

// Workspace of the decomposed forward / input gradient: none when fused, one output-sized buffer per-branch.
slak_status conv_workspace(const char* fn, const Geometry& g, const slak_decomposed_dwconv2d_params* p,
                           const SlakDeviceLimits& l, long long& bytes)
{
    SlakLaunchPlan pl{};
    SLAK_TRY(fused_plan(fn, g, p, l, pl));
    bytes = pl.kernel == SLAK_PLAN_KERNEL_PER_BRANCH && p->num_branches > 1 ? g.numel() * 4 : 0;
    return SLAK_STATUS_SUCCESS;
}

// Workspace of the decomposed weight gradient: the fused kernel's partials of all branches, or the largest
// per-branch partials (branches reuse it in turn).
slak_status wgrad_workspace_decomposed(const char* fn, const Geometry& g, const slak_decomposed_dwconv2d_params* p,
                                       const SlakDeviceLimits& l, long long& bytes)
{
    SlakLaunchPlan pl{};
    SLAK_TRY(fused_wgrad_plan(fn, g, p, l, pl));
    if (pl.kernel == SLAK_PLAN_KERNEL_DWCONV_FUSED_WGRAD)
    {
        bytes = pl.workspace_bytes;
        return SLAK_STATUS_SUCCESS;
    }
    bytes = 0;
    for (int b = 0; b < p->num_branches; ++b)
    {
        long long one = 0;
        SLAK_TRY(wgrad_workspace(fn, g, p->kh[b], p->kw[b], l, one));
        bytes = std::max(bytes, one);
    }
    return SLAK_STATUS_SUCCESS;
}

// A single-branch description as the one-branch decomposed description it is (the single functions are the
// one-branch case of the decomposed family: the same plans, kernels and workspace rules).
slak_decomposed_dwconv2d_params one_branch(const slak_dwconv2d_params* p)
{
    slak_decomposed_dwconv2d_params d{};
    d.n = p->n; d.c = p->c; d.h = p->h; d.w = p->w;
    for (int i = 0; i < 4; ++i)
    {
        d.x_stride[i] = p->x_stride[i];
        d.y_stride[i] = p->y_stride[i];
    }
    d.num_branches = 1;
    d.kh[0] = p->kh;
    d.kw[0] = p->kw;
    return d;
}

// out = sum_b conv_b(in) (flip: the input gradient) over validated arguments: the fused kernel in its summing mode
// (every branch reads `in`, one output write), or the per-branch kernels through the workspace (none for one branch).
slak_status decomposed_conv_run(const char* fn, const Geometry& g, const slak_decomposed_dwconv2d_params* p, bool flip,
                                float* out, const float* in, const float* const* w, const float* const* masks,
                                void* workspace, void* stream, const SlakDeviceLimits& l)
{
    if (g.numel() == 0) return SLAK_STATUS_SUCCESS;
    SlakLaunchPlan pl{};
    SLAK_TRY(fused_plan(fn, g, p, l, pl));
    if (pl.kernel == SLAK_PLAN_KERNEL_DWCONV_FUSED)
    {
        const int nb = p->num_branches;
        DwFusedParams fp{static_cast<int>(g.n), static_cast<int>(g.c), static_cast<int>(g.h), static_cast<int>(g.w),
                         nb, 0, 0, 0, 0, 0, 0, 0, 0, flip ? 1 : 0, 1};
        int* khs[SLAK_MAX_BRANCHES] = {&fp.kh0, &fp.kh1, &fp.kh2};
        int* kws[SLAK_MAX_BRANCHES] = {&fp.kw0, &fp.kw1, &fp.kw2};
        float* outs[SLAK_MAX_BRANCHES] = {out, nullptr, nullptr};
        const float* ins[SLAK_MAX_BRANCHES] = {nullptr, nullptr, nullptr};
        const float* ws[SLAK_MAX_BRANCHES] = {nullptr, nullptr, nullptr};
        const float* ms[SLAK_MAX_BRANCHES] = {nullptr, nullptr, nullptr};
        for (int b = 0; b < nb; ++b)
        {
            *khs[b] = p->kh[b];
            *kws[b] = p->kw[b];
            fp.halo_h = std::max(fp.halo_h, p->kh[b] / 2);
            fp.halo_w = std::max(fp.halo_w, p->kw[b] / 2);
            ins[b] = in;
            ws[b] = w[b];
            ms[b] = masks != nullptr ? masks[b] : nullptr;
        }
        void* args[] = {&outs[0], &outs[1], &outs[2], &ins[0], &ins[1], &ins[2], &ws[0], &ws[1], &ws[2],
                        &ms[0],   &ms[1],   &ms[2],   &fp};
        return run(Kernel::DwConvFused, config_of(pl), args, stream, fn);
    }
    float* tmp = static_cast<float*>(workspace);
    for (int b = 0; b < p->num_branches; ++b)
    {
        const float* m = masks != nullptr ? masks[b] : nullptr;
        SLAK_TRY(conv(fn, g, p->kh[b], p->kw[b], flip, b == 0 ? out : tmp, in, w[b], m, stream, l));
        if (b > 0)
        {
            long long n = g.numel();
            const float* a = out;
            const float* t = tmp;
            void* args[] = {&out, &a, &t, &n};
            SLAK_TRY(run_grid_stride(Kernel::Add, n, args, stream, fn, l));
        }
    }
    return SLAK_STATUS_SUCCESS;
}

// dw[b] = weight gradient of branch b given x and the summed dy, over validated arguments (the workspace checked
// against wgrad_workspace_decomposed): the fused kernel for all branches, or the per-branch kernels in turn.
slak_status decomposed_wgrad_run(const char* fn, const Geometry& g, const slak_decomposed_dwconv2d_params* p,
                                 float* const* dw, const float* x, const float* dy, const float* const* masks,
                                 int skip_masked, void* workspace, void* stream, const SlakDeviceLimits& l)
{
    SlakLaunchPlan pl{};
    SLAK_TRY(fused_wgrad_plan(fn, g, p, l, pl));
    if (pl.kernel == SLAK_PLAN_KERNEL_DWCONV_FUSED_WGRAD)
    {
        // All branches from one read of each x tile: partials (chunks, C, taps_b) per branch, back to back; the
        // kernel computes only live taps (0 elsewhere) when it is given masks, so they are passed for skip_masked.
        const int nb = p->num_branches;
        DwFusedWgradParams fp{static_cast<int>(g.n), static_cast<int>(g.c), static_cast<int>(g.h),
                              static_cast<int>(g.w), nb, 0, 0, 0, 0, 0, 0, 0, 0, pl.per_chunk, pl.tile_h,
                              pl.tile_w};
        int* khs[SLAK_MAX_BRANCHES] = {&fp.kh0, &fp.kh1, &fp.kh2};
        int* kws[SLAK_MAX_BRANCHES] = {&fp.kw0, &fp.kw1, &fp.kw2};
        float* parts[SLAK_MAX_BRANCHES] = {nullptr, nullptr, nullptr};
        const float* dys[SLAK_MAX_BRANCHES] = {nullptr, nullptr, nullptr};
        const float* ms[SLAK_MAX_BRANCHES] = {nullptr, nullptr, nullptr};
        float* cursor = static_cast<float*>(workspace);
        for (int b = 0; b < nb; ++b)
        {
            *khs[b] = p->kh[b];
            *kws[b] = p->kw[b];
            fp.halo_h = std::max(fp.halo_h, p->kh[b] / 2);
            fp.halo_w = std::max(fp.halo_w, p->kw[b] / 2);
            parts[b] = cursor;
            cursor += 1LL * pl.chunks * g.c * p->kh[b] * p->kw[b];
            dys[b] = dy;
            ms[b] = skip_masked ? masks[b] : nullptr;
        }
        void* args[] = {&parts[0], &parts[1], &parts[2], &x, &dys[0], &dys[1], &dys[2], &ms[0], &ms[1], &ms[2],
                        &fp};
        SLAK_TRY(run(Kernel::DwConvFusedWgrad, config_of(pl), args, stream, fn));
        for (int b = 0; b < nb; ++b)
            SLAK_TRY(finalize(fn, dw[b], parts[b], pl.chunks, g.c * p->kh[b] * p->kw[b], stream, l));
        return SLAK_STATUS_SUCCESS;
    }
    // Per branch, in stream order: each reuses the whole workspace after the previous one's finalize.
    for (int b = 0; b < p->num_branches; ++b)
        SLAK_TRY(wgrad(fn, g, p->kh[b], p->kw[b], dw[b], x, dy, masks != nullptr ? masks[b] : nullptr, skip_masked,
                       workspace, stream, l));
    return SLAK_STATUS_SUCCESS;
}

// Shared by the decomposed forward and input gradient: validation, then decomposed_conv_run.
slak_status decomposed_conv(const char* fn, const slak_decomposed_dwconv2d_params* p, bool flip, float* out,
                            const float* in, const float* const* w, const float* const* masks, void* workspace,
                            size_t workspace_bytes, void* stream)
{
    Geometry g{};
    SLAK_TRY(check_decomposed(fn, p, g));
    const bool any = g.numel() > 0;
    SLAK_TRY(need(fn, out, flip ? "dx" : "y", any));
    SLAK_TRY(need(fn, in, flip ? "dy" : "x", any));
    SLAK_TRY(need(fn, w, "w", any));
    if (!any) return ok();
    for (int b = 0; b < p->num_branches; ++b)
        if (w[b] == nullptr) return fail(SLAK_STATUS_NULL_POINTER, "%s: w[%d] is NULL", fn, b);
    if (static_cast<const void*>(out) == static_cast<const void*>(in))
        return fail(SLAK_STATUS_INVALID_ARGUMENT, "%s: output and input are the same buffer", fn);
    SlakDeviceLimits l;
    SLAK_TRY(limits_of(fn, l));
    long long need_bytes = 0;
    SLAK_TRY(conv_workspace(fn, g, p, l, need_bytes));
    SLAK_TRY(check_workspace(fn, workspace, workspace_bytes, need_bytes));
    SLAK_TRY(decomposed_conv_run(fn, g, p, flip, out, in, w, masks, workspace, stream, l));
    return ok();
}
}  // namespace

/* ---- one branch: the one-branch case of the decomposed family ---- */

SLAK_API slak_status slak_dwconv2d_fwd(const slak_dwconv2d_params* p, float* y, const float* x, const float* w,
                                       const float* mask, void* stream)
{
    const char* fn = "slak_dwconv2d_fwd";
    return guarded(fn, [&] {
        Geometry g{};
        SLAK_TRY(check_single(fn, p, g));
        const bool any = g.numel() > 0;
        SLAK_TRY(need(fn, y, "y", any));
        SLAK_TRY(need(fn, x, "x", any));
        SLAK_TRY(need(fn, w, "w", any));
        if (any && static_cast<const void*>(y) == static_cast<const void*>(x))
            return fail(SLAK_STATUS_INVALID_ARGUMENT, "%s: y and x are the same buffer (in place is not supported)", fn);
        SlakDeviceLimits l;
        SLAK_TRY(limits_of(fn, l));
        const slak_decomposed_dwconv2d_params d = one_branch(p);
        const float* ws[1] = {w};
        const float* ms[1] = {mask};
        SLAK_TRY(decomposed_conv_run(fn, g, &d, false, y, x, ws, ms, nullptr, stream, l)); // one branch: no workspace
        return ok();
    });
}

SLAK_API slak_status slak_dwconv2d_bwd_data(const slak_dwconv2d_params* p, float* dx, const float* dy,
                                            const float* w, const float* mask, void* stream)
{
    const char* fn = "slak_dwconv2d_bwd_data";
    return guarded(fn, [&] {
        Geometry g{};
        SLAK_TRY(check_single(fn, p, g));
        const bool any = g.numel() > 0;
        SLAK_TRY(need(fn, dx, "dx", any));
        SLAK_TRY(need(fn, dy, "dy", any));
        SLAK_TRY(need(fn, w, "w", any));
        if (any && static_cast<const void*>(dx) == static_cast<const void*>(dy))
            return fail(SLAK_STATUS_INVALID_ARGUMENT, "%s: dx and dy are the same buffer (in place is not supported)",
                        fn);
        SlakDeviceLimits l;
        SLAK_TRY(limits_of(fn, l));
        // The input gradient reads dy (described by y_stride) and writes dx (x_stride): both packed, same sizes.
        const slak_decomposed_dwconv2d_params d = one_branch(p);
        const float* ws[1] = {w};
        const float* ms[1] = {mask};
        SLAK_TRY(decomposed_conv_run(fn, g, &d, true, dx, dy, ws, ms, nullptr, stream, l)); // one branch: no workspace
        return ok();
    });
}

SLAK_API slak_status slak_dwconv2d_bwd_filter_workspace_size(const slak_dwconv2d_params* p, size_t* bytes)
{
    const char* fn = "slak_dwconv2d_bwd_filter_workspace_size";
    return guarded(fn, [&] {
        SLAK_TRY(need(fn, bytes, "bytes", true));
        Geometry g{};
        SLAK_TRY(check_single(fn, p, g));
        SlakDeviceLimits l;
        SLAK_TRY(limits_of(fn, l));
        const slak_decomposed_dwconv2d_params d = one_branch(p);
        long long need_bytes = 0;
        SLAK_TRY(wgrad_workspace_decomposed(fn, g, &d, l, need_bytes));
        *bytes = static_cast<size_t>(need_bytes);
        return ok();
    });
}

SLAK_API slak_status slak_dwconv2d_bwd_filter(const slak_dwconv2d_params* p, float* dw, const float* x,
                                              const float* dy, const float* mask, int skip_masked, void* workspace,
                                              size_t workspace_bytes, void* stream)
{
    const char* fn = "slak_dwconv2d_bwd_filter";
    return guarded(fn, [&] {
        Geometry g{};
        SLAK_TRY(check_single(fn, p, g));
        const bool any = g.numel() > 0;
        SLAK_TRY(need(fn, dw, "dw", g.c > 0));
        SLAK_TRY(need(fn, x, "x", any));
        SLAK_TRY(need(fn, dy, "dy", any));
        if (skip_masked && mask == nullptr)
            return fail(SLAK_STATUS_NULL_POINTER, "%s: skip_masked=%d needs a mask, got NULL", fn, skip_masked);
        SlakDeviceLimits l;
        SLAK_TRY(limits_of(fn, l));
        const slak_decomposed_dwconv2d_params d = one_branch(p);
        long long need_bytes = 0;
        SLAK_TRY(wgrad_workspace_decomposed(fn, g, &d, l, need_bytes));
        SLAK_TRY(check_workspace(fn, workspace, workspace_bytes, need_bytes));
        float* dws[1] = {dw};
        const float* ms[1] = {mask};
        SLAK_TRY(decomposed_wgrad_run(fn, g, &d, dws, x, dy, ms, skip_masked, workspace, stream, l));
        return ok();
    });
}

/* ---- decomposed: several branches summed ---- */

SLAK_API slak_status slak_decomposed_dwconv2d_workspace_size(const slak_decomposed_dwconv2d_params* p,
                                                             size_t* bytes)
{
    const char* fn = "slak_decomposed_dwconv2d_workspace_size";
    return guarded(fn, [&] {
        SLAK_TRY(need(fn, bytes, "bytes", true));
        Geometry g{};
        SLAK_TRY(check_decomposed(fn, p, g));
        SlakDeviceLimits l;
        SLAK_TRY(limits_of(fn, l));
        long long need_bytes = 0;
        SLAK_TRY(conv_workspace(fn, g, p, l, need_bytes));
        *bytes = static_cast<size_t>(need_bytes);
        return ok();
    });
}

SLAK_API slak_status slak_decomposed_dwconv2d_fwd(const slak_decomposed_dwconv2d_params* p, float* y,
                                                  const float* x, const float* const* w, const float* const* masks,
                                                  void* workspace, size_t workspace_bytes, void* stream)
{
    const char* fn = "slak_decomposed_dwconv2d_fwd";
    return guarded(fn, [&] { return decomposed_conv(fn, p, false, y, x, w, masks, workspace, workspace_bytes, stream); });
}

SLAK_API slak_status slak_decomposed_dwconv2d_bwd_data(const slak_decomposed_dwconv2d_params* p, float* dx,
                                                       const float* dy, const float* const* w,
                                                       const float* const* masks, void* workspace,
                                                       size_t workspace_bytes, void* stream)
{
    const char* fn = "slak_decomposed_dwconv2d_bwd_data";
    return guarded(fn,
                   [&] { return decomposed_conv(fn, p, true, dx, dy, w, masks, workspace, workspace_bytes, stream); });
}

SLAK_API slak_status slak_decomposed_dwconv2d_bwd_filter_workspace_size(const slak_decomposed_dwconv2d_params* p,
                                                                        size_t* bytes)
{
    const char* fn = "slak_decomposed_dwconv2d_bwd_filter_workspace_size";
    return guarded(fn, [&] {
        SLAK_TRY(need(fn, bytes, "bytes", true));
        Geometry g{};
        SLAK_TRY(check_decomposed(fn, p, g));
        SlakDeviceLimits l;
        SLAK_TRY(limits_of(fn, l));
        long long most = 0;
        SLAK_TRY(wgrad_workspace_decomposed(fn, g, p, l, most));
        *bytes = static_cast<size_t>(most);
        return ok();
    });
}

SLAK_API slak_status slak_decomposed_dwconv2d_bwd_filter(const slak_decomposed_dwconv2d_params* p,
                                                         float* const* dw, const float* x, const float* dy,
                                                         const float* const* masks, int skip_masked,
                                                         void* workspace, size_t workspace_bytes, void* stream)
{
    const char* fn = "slak_decomposed_dwconv2d_bwd_filter";
    return guarded(fn, [&] {
        Geometry g{};
        SLAK_TRY(check_decomposed(fn, p, g));
        const bool any = g.numel() > 0;
        SLAK_TRY(need(fn, dw, "dw", g.c > 0));
        SLAK_TRY(need(fn, x, "x", any));
        SLAK_TRY(need(fn, dy, "dy", any));
        for (int b = 0; b < p->num_branches; ++b)
        {
            if (g.c > 0 && dw[b] == nullptr) return fail(SLAK_STATUS_NULL_POINTER, "%s: dw[%d] is NULL", fn, b);
            if (skip_masked && (masks == nullptr || masks[b] == nullptr))
                return fail(SLAK_STATUS_NULL_POINTER, "%s: skip_masked=%d needs masks[%d], got NULL", fn, skip_masked,
                            b);
        }
        SlakDeviceLimits l;
        SLAK_TRY(limits_of(fn, l));
        long long most = 0;
        SLAK_TRY(wgrad_workspace_decomposed(fn, g, p, l, most));
        SLAK_TRY(check_workspace(fn, workspace, workspace_bytes, most));
        SLAK_TRY(decomposed_wgrad_run(fn, g, p, dw, x, dy, masks, skip_masked, workspace, stream, l));
        return ok();
    });
}

}  // extern "C"
