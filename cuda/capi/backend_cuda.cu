// backend_cuda.cu: the C ABI's launch path on a GPU (libslak_kernels.so, built by nvcc): cudaLaunchKernel on the
// caller's stream with the kernels of cuda/kernels (compiled as their own translation units by kernels_*.cu). Launch
// errors are read with cudaGetLastError-free calls only (cudaLaunchKernel's return value), so no device-wide state is
// touched and nothing synchronises. A launch over the default shared-memory limit opts in first
// (cudaFuncSetAttribute MaxDynamicSharedMemorySize), as the plans of slak_plan.h declare.
#include <mutex>

#include <cuda_runtime.h>

#include "slak_capi_backend.h"

// Host stubs of the kernels (defined by nvcc in kernels_*.cu); their parameter structs are the ones of
// slak/slak_params.h, and the C ABI passes them by pointer-to-value like cuLaunchKernel.
extern "C" {
__global__ void dwconv_fwd_tiled_kernel(float*, const float*, const float*, const float*, DwConvParams);
__global__ void dwconv_fwd_direct_kernel(float*, const float*, const float*, const float*, DwConvParams);
__global__ void dwconv_wgrad_tiled_kernel(float*, const float*, const float*, const float*, DwWgradParams);
__global__ void dwconv_wgrad_direct_kernel(float*, const float*, const float*, const float*, DwWgradParams);
__global__ void dwconv_fused_kernel(float*, float*, float*, const float*, const float*, const float*, const float*,
                                    const float*, const float*, const float*, const float*, const float*,
                                    DwFusedParams);
__global__ void dwconv_fused_wgrad_kernel(float*, float*, float*, const float*, const float*, const float*,
                                          const float*, const float*, const float*, const float*, DwFusedWgradParams);
__global__ void column_sum_finalize_kernel(float*, const float*, int, int);
__global__ void add_kernel(float*, const float*, const float*, long long);
__global__ void fill_kernel(float*, float, long long);
}

namespace slak_capi
{
const char* backend_name() { return "cuda"; }

bool device_limits(SlakDeviceLimits& limits, std::string& error)
{
    int device = 0, major = 0, minor = 0, optin = 0;
    cudaError_t e = cudaGetDevice(&device);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (e != cudaSuccess)
    {
        error = std::string("reading the device's limits: ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
        return false;
    }
    // The architecture's table; for one without a table, the nearest known one below it (grid, block and register
    // limits are the same from sm_80 on) with the opt-in maximum the device reports.
    const int sm = major * 10 + minor;
    const int known[] = {90, 89, 86, 80};
    for (int k : known)
        if (k <= sm && slak_device_limits_for_sm(k, &limits) == 0)
        {
            limits.sm = sm;
            if (k != sm) limits.smem_per_block_optin = optin > limits.smem_per_block_default ? optin : limits.smem_per_block_default;
            return true;
        }
    error = "compute capability " + std::to_string(major) + "." + std::to_string(minor) +
            " is below sm_80, the oldest architecture the launch plans know";
    return false;
}

bool launch(Kernel kernel, const LaunchConfig& c, void** args, void* stream, std::string& error)
{
    const void* fn = nullptr;
    switch (kernel)
    {
    case Kernel::DwConvFwdTiled: fn = reinterpret_cast<const void*>(&dwconv_fwd_tiled_kernel); break;
    case Kernel::DwConvFwdDirect: fn = reinterpret_cast<const void*>(&dwconv_fwd_direct_kernel); break;
    case Kernel::DwWgradTiled: fn = reinterpret_cast<const void*>(&dwconv_wgrad_tiled_kernel); break;
    case Kernel::DwWgradDirect: fn = reinterpret_cast<const void*>(&dwconv_wgrad_direct_kernel); break;
    case Kernel::DwConvFused: fn = reinterpret_cast<const void*>(&dwconv_fused_kernel); break;
    case Kernel::DwConvFusedWgrad: fn = reinterpret_cast<const void*>(&dwconv_fused_wgrad_kernel); break;
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
    if (c.shared_bytes > static_cast<unsigned>(kSlakSmemPerBlockDefault))
    {
        // Opt in once per kernel to what its largest launch so far needs.
        static std::mutex m;
        static unsigned opted[static_cast<int>(Kernel::Count)] = {};
        std::lock_guard lock(m);
        unsigned& have = opted[static_cast<int>(kernel)];
        if (have < c.shared_bytes)
        {
            const cudaError_t a = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                       static_cast<int>(c.shared_bytes));
            if (a != cudaSuccess)
            {
                error = std::string("cudaFuncSetAttribute(MaxDynamicSharedMemorySize) : ") + cudaGetErrorName(a) +
                        ": " + cudaGetErrorString(a);
                return false;
            }
            have = c.shared_bytes;
        }
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
