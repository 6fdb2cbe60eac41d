// slak_capi.cpp: the backend-independent half of the C ABI (include/slak/slak.h): argument validation, the choice of
// kernels and grids (mirroring src/Slak.Cuda/Kernels/DwConvKernels.cs and ReduceKernels.cs, so the C ABI runs the
// configurations the C# tests cover), workspace sizes, and the decomposed (multi-branch) orchestration. Kernels are
// enqueued through slak_capi::launch (backend_emu.cpp or backend_cuda.cu). Validation runs completely before the first
// launch, so a rejected call writes nothing; no C++ exception crosses the ABI.
#include <algorithm>
#include <climits>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "slak/slak.h"
#include "slak_capi_backend.h"

using namespace slak_capi;

namespace
{
thread_local std::string t_last_error;

constexpr int kTileW = 32, kTileH = 32, kThreadsY = 8;
constexpr long long kSharedLimit = 48 * 1024; // no opt-in: the default limit of every architecture
constexpr long long kMaxGridYZ = 65535;
constexpr int kBlock = 256;

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

unsigned grid_for(long long n) { return static_cast<unsigned>(std::clamp((n + kBlock - 1) / kBlock, 1LL, 4096LL)); }

slak_status run(Kernel k, const LaunchConfig& cfg, void** args, void* stream, const char* fn)
{
    std::string error;
    if (!launch(k, cfg, args, stream, error))
        return fail(SLAK_STATUS_LAUNCH_FAILED, "%s: %s", fn, error.c_str());
    return SLAK_STATUS_SUCCESS;
}

// y = dwconv(x, w*mask) (flip: rotated filter). Arguments already validated.
slak_status conv(const char* fn, const Geometry& g, int kh, int kw, bool flip, float* y, const float* x,
                 const float* w, const float* mask, void* stream)
{
    if (g.numel() == 0) return SLAK_STATUS_SUCCESS;
    const long long shared = (1LL * kh * kw + (kTileH + kh - 1LL) * (kTileW + kw - 1LL)) * 4;
    const long long plane = g.h * g.w;
    if (shared <= kSharedLimit && g.c <= kMaxGridYZ && (g.h + kTileH - 1) / kTileH <= kMaxGridYZ)
    {
        // grid.z enumerates (image, channel) planes: launch groups of whole images so it stays <= 65535.
        const long long per = std::max(1LL, kMaxGridYZ / g.c);
        for (long long i0 = 0; i0 < g.n; i0 += per)
        {
            const long long cnt = std::min(per, g.n - i0);
            DwConvParams p{static_cast<int>(cnt), static_cast<int>(g.c), static_cast<int>(g.h), static_cast<int>(g.w),
                           kh, kw, flip ? 1 : 0};
            float* yy = y + i0 * g.c * plane;
            const float* xx = x + i0 * g.c * plane;
            void* args[] = {&yy, &xx, &w, &mask, &p};
            LaunchConfig cfg{{static_cast<unsigned>((g.w + kTileW - 1) / kTileW),
                              static_cast<unsigned>((g.h + kTileH - 1) / kTileH), static_cast<unsigned>(cnt * g.c)},
                             {kTileW, kThreadsY, 1},
                             static_cast<unsigned>(shared)};
            slak_status s = run(Kernel::DwConvFwdTiled, cfg, args, stream, fn);
            if (s != SLAK_STATUS_SUCCESS) return s;
        }
        return SLAK_STATUS_SUCCESS;
    }
    DwConvParams p{static_cast<int>(g.n), static_cast<int>(g.c), static_cast<int>(g.h), static_cast<int>(g.w), kh, kw,
                   flip ? 1 : 0};
    void* args[] = {&y, &x, &w, &mask, &p};
    LaunchConfig cfg{{grid_for(g.numel()), 1, 1}, {kBlock, 1, 1}, 0};
    return run(Kernel::DwConvFwdDirect, cfg, args, stream, fn);
}

// The weight-gradient plan (DwConvKernels.BackwardFilter): tile sizes and image chunks.
struct WgradPlan
{
    int tile_h, tile_w, chunks, per_chunk;
    long long workspace_bytes;
};

WgradPlan plan_wgrad(const Geometry& g, int kh, int kw)
{
    WgradPlan pl{};
    const long long taps = 1LL * kh * kw;
    if (g.n == 0 || g.h == 0 || g.w == 0 || g.c == 0) return pl; // dw is filled with zeros, no partials
    pl.tile_w = static_cast<int>(std::min<long long>(g.w, 64));
    const long long xw = pl.tile_w + kw - 1LL;
    const long long budget = kSharedLimit / 4 - taps - (kh - 1LL) * xw;
    pl.tile_h = budget <= 0 ? 0 : static_cast<int>(std::min<long long>(g.h, budget / (pl.tile_w + xw)));
    long long chunks = std::clamp(2048 / std::max(g.c, 1LL), 1LL, g.n);
    const long long per = (g.n + chunks - 1) / chunks;
    chunks = (g.n + per - 1) / per;
    pl.chunks = static_cast<int>(chunks);
    pl.per_chunk = static_cast<int>(per);
    pl.workspace_bytes = chunks * g.c * taps * 4;
    return pl;
}

slak_status wgrad(const char* fn, const Geometry& g, int kh, int kw, float* dw, const float* x, const float* dy,
                  const float* mask, int skip_masked, void* ws, void* stream)
{
    const long long taps = 1LL * kh * kw, total = g.c * taps;
    if (total == 0) return SLAK_STATUS_SUCCESS;
    const WgradPlan pl = plan_wgrad(g, kh, kw);
    if (pl.chunks == 0)
    {
        float zero = 0.0f;
        void* args[] = {&dw, &zero, const_cast<long long*>(&total)};
        return run(Kernel::Fill, {{grid_for(total), 1, 1}, {kBlock, 1, 1}, 0}, args, stream, fn);
    }
    float* partials = static_cast<float*>(ws);
    DwWgradParams p{static_cast<int>(g.n), static_cast<int>(g.c), static_cast<int>(g.h), static_cast<int>(g.w),
                    kh, kw, pl.per_chunk, pl.tile_h, pl.tile_w, skip_masked ? 1 : 0};
    void* args[] = {&partials, &x, &dy, &mask, &p};
    slak_status s;
    if (pl.tile_h >= 1)
    {
        const long long xw = pl.tile_w + kw - 1LL;
        const long long shared = (taps + 1LL * pl.tile_h * pl.tile_w + (pl.tile_h + kh - 1LL) * xw) * 4;
        LaunchConfig cfg{{static_cast<unsigned>(g.c), static_cast<unsigned>(pl.chunks), 1}, {kBlock, 1, 1},
                         static_cast<unsigned>(shared)};
        s = run(Kernel::DwWgradTiled, cfg, args, stream, fn);
    }
    else
    {
        p.tile_h = p.tile_w = 0;
        LaunchConfig cfg{{static_cast<unsigned>(std::clamp((total + 255) / 256, 1LL, 4096LL)),
                          static_cast<unsigned>(pl.chunks), 1},
                         {kBlock, 1, 1},
                         0};
        s = run(Kernel::DwWgradDirect, cfg, args, stream, fn);
    }
    if (s != SLAK_STATUS_SUCCESS) return s;
    int chunks = pl.chunks, cols = static_cast<int>(total);
    const float* cpartials = partials;
    void* fargs[] = {&dw, &cpartials, &chunks, &cols};
    return run(Kernel::ColumnSumFinalize, {{static_cast<unsigned>((total + kBlock - 1) / kBlock), 1, 1},
                                           {kBlock, 1, 1}, 0},
               fargs, stream, fn);
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

#define SLAK_TRY(expr)                                   \
    do {                                                 \
        slak_status s_ = (expr);                         \
        if (s_ != SLAK_STATUS_SUCCESS) return s_;        \
    } while (0)

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
        SLAK_TRY(conv(fn, g, p->kh, p->kw, false, y, x, w, mask, stream));
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
        // The input gradient reads dy (described by y_stride) and writes dx (x_stride): both packed, same sizes.
        SLAK_TRY(conv(fn, g, p->kh, p->kw, true, dx, dy, w, mask, stream));
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
        *bytes = static_cast<size_t>(plan_wgrad(g, p->kh, p->kw).workspace_bytes);
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
        SLAK_TRY(check_workspace(fn, workspace, workspace_bytes, plan_wgrad(g, p->kh, p->kw).workspace_bytes));
        SLAK_TRY(wgrad(fn, g, p->kh, p->kw, dw, x, dy, mask, skip_masked, workspace, stream));
        return ok();
    });
}

SLAK_API slak_status slak_decomposed_dwconv2d_workspace_size(const slak_decomposed_dwconv2d_params* p,
                                                             size_t* bytes)
{
    const char* fn = "slak_decomposed_dwconv2d_workspace_size";
    return guarded(fn, [&] {
        SLAK_TRY(need(fn, bytes, "bytes", true));
        Geometry g{};
        SLAK_TRY(check_decomposed(fn, p, g));
        *bytes = p->num_branches > 1 ? static_cast<size_t>(g.numel()) * sizeof(float) : 0;
        return ok();
    });
}

namespace
{
// Shared by the decomposed forward and input gradient: out = sum_b conv_b(in).
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
    const long long need_bytes = p->num_branches > 1 ? g.numel() * 4 : 0;
    SLAK_TRY(check_workspace(fn, workspace, workspace_bytes, need_bytes));
    float* tmp = static_cast<float*>(workspace);
    for (int b = 0; b < p->num_branches; ++b)
    {
        const float* m = masks != nullptr ? masks[b] : nullptr;
        SLAK_TRY(conv(fn, g, p->kh[b], p->kw[b], flip, b == 0 ? out : tmp, in, w[b], m, stream));
        if (b > 0)
        {
            long long n = g.numel();
            const float* a = out;
            const float* t = tmp;
            void* args[] = {&out, &a, &t, &n};
            SLAK_TRY(run(Kernel::Add, {{grid_for(n), 1, 1}, {kBlock, 1, 1}, 0}, args, stream, fn));
        }
    }
    return ok();
}
}  // namespace

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
        long long most = 0;
        for (int b = 0; b < p->num_branches; ++b)
            most = std::max(most, plan_wgrad(g, p->kh[b], p->kw[b]).workspace_bytes);
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
        long long most = 0;
        for (int b = 0; b < p->num_branches; ++b)
        {
            if (g.c > 0 && dw[b] == nullptr) return fail(SLAK_STATUS_NULL_POINTER, "%s: dw[%d] is NULL", fn, b);
            if (skip_masked && (masks == nullptr || masks[b] == nullptr))
                return fail(SLAK_STATUS_NULL_POINTER, "%s: skip_masked=%d needs masks[%d], got NULL", fn, skip_masked,
                            b);
            most = std::max(most, plan_wgrad(g, p->kh[b], p->kw[b]).workspace_bytes);
        }
        SLAK_TRY(check_workspace(fn, workspace, workspace_bytes, most));
        // Branches run in stream order, so each reuses the whole workspace after the previous one's finalize.
        for (int b = 0; b < p->num_branches; ++b)
            SLAK_TRY(wgrad(fn, g, p->kh[b], p->kw[b], dw[b], x, dy, masks != nullptr ? masks[b] : nullptr,
                           skip_masked, workspace, stream));
        return ok();
    });
}

}  // extern "C"
