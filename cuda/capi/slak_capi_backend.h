// slak_capi_backend.h: what the backend-independent C ABI (slak_capi.cpp) needs from a backend: launch one of the
// kernels it uses, by id, with a grid/block/shared configuration and a `void**` of argument pointers (the
// cuLaunchKernel convention the emulator shares). Two implementations: backend_emu.cpp (libslak_emu.so, host
// pointers) and backend_cuda.cu (nvcc, the CUDA runtime). Also the kernels' parameter structs, mirrored from
// cuda/kernels/dwconv.cu (as src/Slak.Cuda/Kernels/DwConvKernels.cs mirrors them); backend_cuda.cu checks the
// layout against the real definitions at compile time.
#pragma once

#include <string>

namespace slak_capi
{
enum class Kernel
{
    DwConvFwdTiled,    // dwconv_fwd_tiled_kernel(y, x, w, mask, DwConvParams)
    DwConvFwdDirect,   // dwconv_fwd_direct_kernel(y, x, w, mask, DwConvParams)
    DwWgradTiled,      // dwconv_wgrad_tiled_kernel(partials, x, dy, mask, DwWgradParams)
    DwWgradDirect,     // dwconv_wgrad_direct_kernel(partials, x, dy, mask, DwWgradParams)
    ColumnSumFinalize, // column_sum_finalize_kernel(out, partials, int chunks, int c)
    Add,               // add_kernel(out, a, b, long long n)
    Fill,              // fill_kernel(out, float value, long long n)
    Count
};

struct DwConvParams
{
    int n, c, h, w, kh, kw;
    int flip;
};

struct DwWgradParams
{
    int n, c, h, w, kh, kw;
    int images_per_chunk;
    int tile_h, tile_w;
    int skip_masked;
};

struct LaunchConfig
{
    unsigned grid[3];
    unsigned block[3];
    unsigned shared_bytes;
};

// Enqueues the kernel on `stream`. Returns true on success; on failure fills `error` (no exception).
bool launch(Kernel kernel, const LaunchConfig& config, void** args, void* stream, std::string& error);

// "emulator" or "cuda".
const char* backend_name();
}  // namespace slak_capi
