// slak_emu_launch.cpp: the kernel registry and the exported C entry points of libslak_emu.so.
//
// The entry points are shaped like the driver API (find a function by name, launch it with grid, block, dynamic
// shared bytes and a `void**` of argument pointers), so that the C# side drives the emulator exactly as it drives
// cuLaunchKernel. Kernels are registered by the generated wrapper of each cuda/kernels/*.cu (see
// cuda/emu/gen_registry.cmake), each with a type-safe invoker that unpacks `void** args` by its parameter types.
// Every entry point returns a status (0 = success) and leaves a message for slak_emu_last_error; no C++ exception
// crosses into the caller.
#include <sys/mman.h>
#include <unistd.h>

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
    std::vector<int> arg_sizes;
    unsigned max_threads;  // __launch_bounds__, 0 = none
    unsigned char* shared_begin;
    unsigned char* shared_end;
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
constexpr unsigned kMaxDynamicShared = 227 * 1024;  // opt-in maximum of sm_90 (static + dynamic)
constexpr unsigned kDefaultShared = 48 * 1024;      // static + dynamic without the opt-in

// Process-wide block sample used by slak_emu_launch (the C ABI's path); slak_emu_launch_ex takes its own.
std::vector<unsigned> g_block_sample;
bool g_block_sample_set = false;
unsigned long long g_last_launch_blocks = 0;

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
void register_kernel(const KernelInfo& info)
{
    registry().push_back(new KernelEntry{info.name, info.invoker, info.arity,
                                         std::vector<int>(info.arg_sizes, info.arg_sizes + info.arity),
                                         info.max_threads, info.shared_begin, info.shared_end, info.source});
}
}  // namespace slak_emu

// ---- exported entry points ----

/// Version of the emulator's ABI (bumped when an entry point changes).
SLAK_EMU_EXPORT int slak_emu_version(void) { return 2; }

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

/// Options of slak_emu_launch_ex (ABI version 2). `size` must be sizeof(slak_emu_launch_options).
struct slak_emu_launch_options
{
    unsigned size;
    unsigned flags;              // kScheduleReverse | kScheduleShuffle | kPoisonStaticShared | kRaceCheck
    unsigned long long seed;     // of the shuffled schedule
    const unsigned* blocks;      // block sample: `block_count` (x, y, z) triples; null = every block
    int block_count;
    const int* arg_sizes;        // sizeof of each argument as the caller built it; null = not checked
    int arg_count;
};

namespace
{
int launch_impl(void* handle, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                unsigned shared_bytes, void** args, const slak_emu_launch_options& options)
{
    try
    {
        KernelEntry* e = as_entry(handle);
        if (e == nullptr) return set_error(kInvalidValue, "slak_emu_launch: invalid kernel handle");
        // The kernel-name prefix is built only on the error paths (a launch allocates nothing when it succeeds).
        auto fail = [e](int status, const std::string& what)
        { return set_error(status, "kernel '" + e->name + "': " + what); };
        char buf[320];
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
        if (e->max_threads != 0 && threads > e->max_threads)
        {
            std::snprintf(buf, sizeof buf,
                          "block (%u,%u,%u) has %llu threads, more than the kernel's __launch_bounds__(%u) (the GPU "
                          "refuses the launch: too many resources requested)", bx, by, bz, threads, e->max_threads);
            return fail(kInvalidValue, buf);
        }
        // Static + dynamic shared memory per block: 48 KiB unless the launch opts in, which the CUDA device does
        // whenever the dynamic part alone exceeds 48 KiB (CudaDriverDevice.Launch); 227 KiB at most (sm_90).
        const unsigned long long static_bytes = static_cast<unsigned long long>(e->shared_end - e->shared_begin);
        const unsigned long long total_shared = static_bytes + shared_bytes;
        const bool opted_in = shared_bytes > kDefaultShared;
        const unsigned limit = opted_in ? kMaxDynamicShared : kDefaultShared;
        if (total_shared > limit)
        {
            std::snprintf(buf, sizeof buf,
                          "%llu bytes of static shared memory (upper bound: all static __shared__ of the kernel's "
                          "file) + %u dynamic = %llu bytes exceed the per-block limit of %u bytes (%s)",
                          static_bytes, shared_bytes, total_shared, limit,
                          opted_in ? "the opt-in maximum of sm_90"
                                   : "without the opt-in, which the launch gets only for more than 48 KiB dynamic");
            return fail(kInvalidValue, buf);
        }
        if (e->arity > 0 && args == nullptr)
            return fail(kInvalidValue, "args is null but the kernel has " + std::to_string(e->arity) + " parameters");
        for (int i = 0; i < e->arity; ++i)
            if (args[i] == nullptr) return fail(kInvalidValue, "args[" + std::to_string(i) + "] is null");
        if (options.arg_sizes != nullptr)
        {
            if (options.arg_count != e->arity)
                return fail(kInvalidValue, "takes " + std::to_string(e->arity) + " arguments, got " +
                                               std::to_string(options.arg_count));
            for (int i = 0; i < e->arity; ++i)
                if (options.arg_sizes[i] != e->arg_sizes[static_cast<std::size_t>(i)])
                    return fail(kInvalidValue, "argument " + std::to_string(i) + " has " +
                                                   std::to_string(options.arg_sizes[i]) +
                                                   " bytes but the kernel's parameter " + std::to_string(i) +
                                                   " has " + std::to_string(e->arg_sizes[static_cast<std::size_t>(i)]) +
                                                   " bytes (a value of the wrong type)");
        }
        if (options.block_count < 0 || (options.block_count > 0 && options.blocks == nullptr))
            return fail(kInvalidValue, "invalid block sample (" + std::to_string(options.block_count) + " blocks)");

        slak_emu::LaunchConfig config;
        config.kernel_name = e->name.c_str();
        config.invoker = e->invoker;
        config.args = args;
        config.grid = dim3(gx, gy, gz);
        config.block = dim3(bx, by, bz);
        config.shared_bytes = shared_bytes;
        config.flags = options.flags;
        config.seed = options.seed;
        config.sample = options.block_count > 0 ? options.blocks : nullptr;
        config.sample_count = options.block_count;
        config.static_shared_begin = e->shared_begin;
        config.static_shared_end = e->shared_end;
        std::lock_guard lock(launch_mutex());
        std::string error = slak_emu::run_launch(config);
        if (!error.empty()) return fail(kKernelFailed, error);
        ++g_launches;
        g_last_launch_blocks = config.sample != nullptr ? 0 : 1ull * gx * gy * gz;
        if (config.sample != nullptr)
            for (int i = 0; i < config.sample_count; ++i)
                if (config.sample[3 * i] < gx && config.sample[3 * i + 1] < gy && config.sample[3 * i + 2] < gz)
                    ++g_last_launch_blocks;  // (duplicates counted: an upper bound, for diagnostics)
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
}  // namespace

/// Runs a kernel over the grid, synchronously, like cuLaunchKernel followed by a stream synchronisation.
/// args[i] points at a value of exactly the type of the kernel's i-th parameter. Runs every block, or the blocks
/// of slak_emu_set_block_sample, with no sanitizer option (slak_emu_launch_ex takes options).
SLAK_EMU_EXPORT int slak_emu_launch(void* handle, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                    unsigned bz, unsigned shared_bytes, void** args)
{
    slak_emu_launch_options options{};
    options.size = sizeof options;
    if (g_block_sample_set)
    {
        options.blocks = g_block_sample.data();
        options.block_count = static_cast<int>(g_block_sample.size() / 3);
    }
    return launch_impl(handle, gx, gy, gz, bx, by, bz, shared_bytes, args, options);
}

/// slak_emu_launch with options (checks, schedule, block sample, argument sizes); `options` may be null.
SLAK_EMU_EXPORT int slak_emu_launch_ex(void* handle, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                       unsigned bz, unsigned shared_bytes, void** args,
                                       const slak_emu_launch_options* options)
{
    slak_emu_launch_options none{};
    none.size = sizeof none;
    if (options != nullptr && options->size != sizeof(slak_emu_launch_options))
        return set_error(kInvalidValue, "slak_emu_launch_ex: options.size is " + std::to_string(options->size) +
                                            ", this library expects " + std::to_string(sizeof none));
    return launch_impl(handle, gx, gy, gz, bx, by, bz, shared_bytes, args, options != nullptr ? *options : none);
}

/// Sets the block sample of slak_emu_launch (process-wide): `count` (x, y, z) triples; count 0 = every block.
/// Blocks outside a launch's grid are skipped; duplicates run once.
SLAK_EMU_EXPORT int slak_emu_set_block_sample(const unsigned* xyz, int count)
{
    if (count < 0 || (count > 0 && xyz == nullptr))
        return set_error(kInvalidValue, "slak_emu_set_block_sample: invalid sample (" + std::to_string(count) +
                                            " blocks)");
    std::lock_guard lock(launch_mutex());
    g_block_sample.assign(xyz, xyz + 3 * count);
    g_block_sample_set = count > 0;
    return kOk;
}

/// Blocks the last successful launch ran (the whole grid, or the in-grid entries of its sample).
SLAK_EMU_EXPORT unsigned long long slak_emu_last_launch_blocks(void) { return g_last_launch_blocks; }

/// Address of the last memory fault caught in a kernel (0 when none).
SLAK_EMU_EXPORT unsigned long long slak_emu_last_fault_address(void) { return slak_emu::last_fault_address(); }

/// Static __shared__ bytes of the kernel's file (an upper bound of the kernel's own), or -1 for a bad handle.
SLAK_EMU_EXPORT long long slak_emu_kernel_static_shared(void* handle)
{
    KernelEntry* e = as_entry(handle);
    return e == nullptr ? -1 : static_cast<long long>(e->shared_end - e->shared_begin);
}

/// __launch_bounds__ maximum threads of the kernel (0 when not declared), or -1 for a bad handle.
SLAK_EMU_EXPORT int slak_emu_kernel_max_threads(void* handle)
{
    KernelEntry* e = as_entry(handle);
    return e == nullptr ? -1 : static_cast<int>(e->max_threads);
}

/// Reserves device memory: `bytes` (a multiple of the page size) readable and writable between two inaccessible
/// guard pages, reserved lazily (MAP_NORESERVE: pages are committed when first written). Returns the start of the
/// usable range, or null when the mapping fails.
SLAK_EMU_EXPORT void* slak_emu_map(unsigned long long bytes)
{
    const unsigned long long page = static_cast<unsigned long long>(sysconf(_SC_PAGESIZE));
    if (bytes == 0 || bytes % page != 0) return nullptr;
    void* m = mmap(nullptr, bytes + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    auto* usable = static_cast<unsigned char*>(m) + page;
    if (mprotect(usable, bytes, PROT_READ | PROT_WRITE) != 0)
    {
        munmap(m, bytes + 2 * page);
        return nullptr;
    }
    return usable;
}

/// Releases a range returned by slak_emu_map with the same `bytes`. Returns 0 on success.
SLAK_EMU_EXPORT int slak_emu_unmap(void* usable, unsigned long long bytes)
{
    const unsigned long long page = static_cast<unsigned long long>(sysconf(_SC_PAGESIZE));
    if (usable == nullptr) return kOk;
    return munmap(static_cast<unsigned char*>(usable) - page, bytes + 2 * page) == 0 ? kOk : kInvalidValue;
}
