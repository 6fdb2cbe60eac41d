// slak_capi_backend.h: what the backend-independent C ABI (slak_capi.cpp) needs from a backend: the limits of the
// device its launches are planned for (slak_limits.h), and launching one of the kernels it uses, by id, with a
// grid/block/shared configuration and a `void**` of argument pointers (the cuLaunchKernel convention the emulator
// shares). Two implementations: backend_emu.cpp (libslak_emu.so, host pointers) and backend_cuda.cu (nvcc, the CUDA
// runtime). The kernels' parameter structs are the ones of cuda/include/slak/slak_params.h, which the kernels include.
#pragma once

#include <string>

#include "slak/slak_limits.h"
#include "slak/slak_params.h"

namespace slak_capi
{
enum class Kernel
{
    DwConvFwdTiled,    // dwconv_fwd_tiled_kernel(y, x, w, mask, DwConvParams)
    DwConvFwdDirect,   // dwconv_fwd_direct_kernel(y, x, w, mask, DwConvParams)
    DwWgradTiled,      // dwconv_wgrad_tiled_kernel(partials, x, dy, mask, DwWgradParams)
    DwWgradDirect,     // dwconv_wgrad_direct_kernel(partials, x, dy, mask, DwWgradParams)
    DwConvFused,       // dwconv_fused_kernel(out0..2, in0..2, w0..2, m0..2, DwFusedParams)
    DwConvFusedWgrad,  // dwconv_fused_wgrad_kernel(part0..2, x, dy0..2, m0..2, DwFusedWgradParams)
    ColumnSumFinalize, // column_sum_finalize_kernel(out, partials, int chunks, int c)
    Add,               // add_kernel(out, a, b, long long n)
    Fill,              // fill_kernel(out, float value, long long n)
    Count
};

struct LaunchConfig
{
    unsigned grid[3];
    unsigned block[3];
    unsigned shared_bytes;
};

// Enqueues the kernel on `stream`. Returns true on success; on failure fills `error` (no exception). A launch with more
// dynamic shared memory than the default limit opts in first (the CUDA backend sets the kernel's attribute).
bool launch(Kernel kernel, const LaunchConfig& config, void** args, void* stream, std::string& error);

// The limits of the device the launches run on (the current CUDA device; sm_90's table for the emulator, whose
// shared-memory cap is sm_90's). Returns false and fills `error` when they cannot be read.
bool device_limits(SlakDeviceLimits& limits, std::string& error);

// "emulator" or "cuda".
const char* backend_name();
}  // namespace slak_capi
