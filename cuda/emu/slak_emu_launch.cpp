// slak_emu_launch.cpp: the kernel registry and the exported C entry points of libslak_emu.so.
//
// The entry points are shaped like the driver API (find a function by name, launch it with grid, block, dynamic
// shared bytes and a `void**` of argument pointers), so that the C# side drives the emulator exactly as it drives
// cuLaunchKernel. Kernels are registered by the generated wrapper of each cuda/kernels/*.cu (see
// cuda/emu/gen_registry.cmake), each with a type-safe invoker that unpacks `void** args` by its parameter types.
// Every entry point returns a status (0 = success) and leaves a message for slak_emu_last_error; no C++ exception
// crosses into the caller.
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include "slak_emu_fiber.h"

#define SLAK_EMU_EXPORT extern "C" __attribute__((visibility("default")))

namespace
{
// ---- registry ----
struct KernelEntry
{
    std::string name;
    slak_emu::Invoker invoker;
    int arity;
    std::string source;
};

std::vector<KernelEntry*>& registry()
{
    static std::vector<KernelEntry*> entries;  // entries are never freed: handles stay valid for the process
    return entries;
}

std::mutex& launch_mutex()
{
    static std::mutex m;
    return m;
}

thread_local std::string t_last_error;
unsigned long long g_launches = 0;

constexpr int kOk = 0;
constexpr int kNotFound = 1;
constexpr int kInvalidValue = 2;
constexpr int kKernelFailed = 3;
constexpr int kInternal = 4;

constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockZ = 64;
constexpr unsigned kMaxGridYZ = 65535;
constexpr unsigned kMaxGridX = 2147483647u;
constexpr unsigned kMaxDynamicShared = 227 * 1024;  // opt-in maximum of sm_90

int set_error(int status, const std::string& message)
{
    t_last_error = message;
    return status;
}

KernelEntry* as_entry(void* handle)
{
    for (KernelEntry* e : registry())
        if (e == handle) return e;
    return nullptr;
}
}  // namespace

namespace slak_emu
{
void register_kernel(const char* name, Invoker invoker, int arity, const char* source)
{
    registry().push_back(new KernelEntry{name, invoker, arity, source});
}
}  // namespace slak_emu

// ---- exported entry points ----

/// Version of the emulator's ABI (bumped when an entry point changes).
SLAK_EMU_EXPORT int slak_emu_version(void) { return 1; }

/// Message of the last failed call on this host thread ("" when none).
SLAK_EMU_EXPORT const char* slak_emu_last_error(void) { return t_last_error.c_str(); }

/// Number of registered kernels.
SLAK_EMU_EXPORT int slak_emu_kernel_count(void) { return static_cast<int>(registry().size()); }

/// Name of the i-th registered kernel, or null when out of range.
SLAK_EMU_EXPORT const char* slak_emu_kernel_name(int index)
{
    if (index < 0 || index >= static_cast<int>(registry().size())) return nullptr;
    return registry()[static_cast<std::size_t>(index)]->name.c_str();
}

/// Looks a kernel up by its extern "C" name.
SLAK_EMU_EXPORT int slak_emu_find_kernel(const char* name, void** handle)
{
    if (handle == nullptr) return set_error(kInvalidValue, "slak_emu_find_kernel: handle is null");
    *handle = nullptr;
    if (name == nullptr) return set_error(kInvalidValue, "slak_emu_find_kernel: name is null");
    for (KernelEntry* e : registry())
        if (e->name == name)
        {
            *handle = e;
            return kOk;
        }
    return set_error(kNotFound, std::string("no kernel named '") + name + "' is registered in libslak_emu.so (" +
                                    std::to_string(registry().size()) + " kernels from cuda/kernels/*.cu)");
}

/// Number of parameters of a kernel (to check the argument count before a launch), or -1 for a bad handle.
SLAK_EMU_EXPORT int slak_emu_kernel_arity(void* handle)
{
    KernelEntry* e = as_entry(handle);
    return e == nullptr ? -1 : e->arity;
}

/// Number of launches that completed since the library was loaded.
SLAK_EMU_EXPORT unsigned long long slak_emu_launch_count(void) { return g_launches; }

/// Runs a kernel over the grid, synchronously, like cuLaunchKernel followed by a stream synchronisation.
/// args[i] points at a value of exactly the type of the kernel's i-th parameter.
SLAK_EMU_EXPORT int slak_emu_launch(void* handle, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                    unsigned bz, unsigned shared_bytes, void** args)
{
    try
    {
        KernelEntry* e = as_entry(handle);
        if (e == nullptr) return set_error(kInvalidValue, "slak_emu_launch: invalid kernel handle");
        // The kernel-name prefix is built only on the error paths (a launch allocates nothing when it succeeds).
        auto fail = [e](int status, const std::string& what)
        { return set_error(status, "kernel '" + e->name + "': " + what); };
        char buf[240];
        if (gx == 0 || gy == 0 || gz == 0 || gx > kMaxGridX || gy > kMaxGridYZ || gz > kMaxGridYZ)
        {
            std::snprintf(buf, sizeof buf, "grid (%u,%u,%u) is invalid (each >= 1, y and z <= %u)", gx, gy, gz,
                          kMaxGridYZ);
            return fail(kInvalidValue, buf);
        }
        const unsigned long long threads = 1ull * bx * by * bz;
        if (bx == 0 || by == 0 || bz == 0 || bz > kMaxBlockZ || threads > kMaxThreadsPerBlock)
        {
            std::snprintf(buf, sizeof buf,
                          "block (%u,%u,%u) has %llu threads; the limit is %u threads per block (z <= %u)", bx, by,
                          bz, threads, kMaxThreadsPerBlock, kMaxBlockZ);
            return fail(kInvalidValue, buf);
        }
        if (shared_bytes > kMaxDynamicShared)
        {
            std::snprintf(buf, sizeof buf, "%u bytes of dynamic shared memory exceed the limit of %u", shared_bytes,
                          kMaxDynamicShared);
            return fail(kInvalidValue, buf);
        }
        if (e->arity > 0 && args == nullptr)
            return fail(kInvalidValue, "args is null but the kernel has " + std::to_string(e->arity) + " parameters");
        for (int i = 0; i < e->arity; ++i)
            if (args[i] == nullptr) return fail(kInvalidValue, "args[" + std::to_string(i) + "] is null");

        slak_emu::LaunchConfig config;
        config.kernel_name = e->name.c_str();
        config.invoker = e->invoker;
        config.args = args;
        config.grid = dim3(gx, gy, gz);
        config.block = dim3(bx, by, bz);
        config.shared_bytes = shared_bytes;
        std::lock_guard lock(launch_mutex());
        std::string error = slak_emu::run_launch(config);
        if (!error.empty()) return fail(kKernelFailed, error);
        ++g_launches;
        t_last_error.clear();
        return kOk;
    }
    catch (const std::exception& ex)
    {
        return set_error(kInternal, std::string("slak_emu_launch: ") + ex.what());
    }
    catch (...)
    {
        return set_error(kInternal, "slak_emu_launch: unknown error");
    }
}
