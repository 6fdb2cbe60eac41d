// backend_cuda.cu: the C ABI's launch path on a GPU (libslak_kernels.so, built by nvcc): cudaLaunchKernel on the
// caller's stream with the kernels of cuda/kernels (compiled as their own translation units by kernels_*.cu). Launch
// errors are read with cudaGetLastError-free calls only (cudaLaunchKernel's return value), so no device-wide state is
// touched and nothing synchronises.
#include <cuda_runtime.h>

#include "slak_capi_backend.h"

using slak_capi::DwConvParams;
using slak_capi::DwWgradParams;

// Host stubs of the kernels (defined by nvcc in kernels_*.cu); their parameter structs are layout-mirrored in
// slak_capi_backend.h, and the C ABI passes them by pointer-to-value like cuLaunchKernel.
extern "C" {
__global__ void dwconv_fwd_tiled_kernel(float*, const float*, const float*, const float*, DwConvParams);
__global__ void dwconv_fwd_direct_kernel(float*, const float*, const float*, const float*, DwConvParams);
__global__ void dwconv_wgrad_tiled_kernel(float*, const float*, const float*, const float*, DwWgradParams);
__global__ void dwconv_wgrad_direct_kernel(float*, const float*, const float*, const float*, DwWgradParams);
__global__ void column_sum_finalize_kernel(float*, const float*, int, int);
__global__ void add_kernel(float*, const float*, const float*, long long);
__global__ void fill_kernel(float*, float, long long);
}

static_assert(sizeof(DwConvParams) == 7 * sizeof(int), "DwConvParams mirror of cuda/kernels/dwconv.cu");
static_assert(sizeof(DwWgradParams) == 10 * sizeof(int), "DwWgradParams mirror of cuda/kernels/dwconv.cu");

namespace slak_capi
{
const char* backend_name() { return "cuda"; }

bool launch(Kernel kernel, const LaunchConfig& c, void** args, void* stream, std::string& error)
{
    const void* fn = nullptr;
    switch (kernel)
    {
    case Kernel::DwConvFwdTiled: fn = reinterpret_cast<const void*>(&dwconv_fwd_tiled_kernel); break;
    case Kernel::DwConvFwdDirect: fn = reinterpret_cast<const void*>(&dwconv_fwd_direct_kernel); break;
    case Kernel::DwWgradTiled: fn = reinterpret_cast<const void*>(&dwconv_wgrad_tiled_kernel); break;
    case Kernel::DwWgradDirect: fn = reinterpret_cast<const void*>(&dwconv_wgrad_direct_kernel); break;
    case Kernel::ColumnSumFinalize: fn = reinterpret_cast<const void*>(&column_sum_finalize_kernel); break;
    case Kernel::Add: fn = reinterpret_cast<const void*>(&add_kernel); break;
    case Kernel::Fill: fn = reinterpret_cast<const void*>(&fill_kernel); break;
    case Kernel::Count: break;
    }
    if (fn == nullptr)
    {
        error = "unknown kernel id";
        return false;
    }
    const cudaError_t e = cudaLaunchKernel(fn, dim3(c.grid[0], c.grid[1], c.grid[2]),
                                           dim3(c.block[0], c.block[1], c.block[2]), args, c.shared_bytes,
                                           static_cast<cudaStream_t>(stream));
    if (e != cudaSuccess)
    {
        error = std::string("cudaLaunchKernel: ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
        return false;
    }
    return true;
}
}  // namespace slak_capi
