// backend_emu.cpp: the C ABI's launch path over the host emulator (libslak_emu.so, linked dynamically): the kernels
// of cuda/kernels run unchanged on the calling thread, with host pointers, synchronously (the stream is ignored).
#include <mutex>

#include "slak_capi_backend.h"

extern "C" {
int slak_emu_find_kernel(const char* name, void** handle);
int slak_emu_launch(void* handle, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                    unsigned shared_bytes, void** args);
const char* slak_emu_last_error(void);
}

namespace slak_capi
{
namespace
{
const char* const kNames[static_cast<int>(Kernel::Count)] = {
    "dwconv_fwd_tiled_kernel",    "dwconv_fwd_direct_kernel", "dwconv_wgrad_tiled_kernel",
    "dwconv_wgrad_direct_kernel", "dwconv_fused_kernel",      "dwconv_fused_wgrad_kernel",
    "column_sum_finalize_kernel", "add_kernel",               "fill_kernel",
};
}  // namespace

const char* backend_name() { return "emulator"; }

bool device_limits(SlakDeviceLimits& limits, std::string& error)
{
    // The emulator caps dynamic shared memory at sm_90's opt-in maximum: plan for sm_90.
    if (slak_device_limits_for_sm(90, &limits) == 0) return true;
    error = "no device-limit table for sm_90";
    return false;
}

bool launch(Kernel kernel, const LaunchConfig& c, void** args, void* /*stream*/, std::string& error)
{
    // Handles never change once found; the lookup is a linear scan of ~50 names, so cache them.
    static void* handles[static_cast<int>(Kernel::Count)] = {};
    static std::mutex m;
    const int k = static_cast<int>(kernel);
    void* h;
    {
        std::lock_guard lock(m);
        if (handles[k] == nullptr && slak_emu_find_kernel(kNames[k], &handles[k]) != 0)
        {
            error = std::string("emulator: ") + slak_emu_last_error();
            return false;
        }
        h = handles[k];
    }
    if (slak_emu_launch(h, c.grid[0], c.grid[1], c.grid[2], c.block[0], c.block[1], c.block[2], c.shared_bytes,
                        args) != 0)
    {
        error = std::string("emulator: ") + slak_emu_last_error();
        return false;
    }
    return true;
}
}  // namespace slak_capi
