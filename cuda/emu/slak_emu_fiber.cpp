// slak_emu_fiber.cpp: fibers, barriers, warp exchange and the block scheduler of the host emulator.
//
// Why fibers and not OS threads: a barrier between fibers is a cooperative switch (tens of nanoseconds on x86-64,
// with the hand-written switch below) instead of a futex round trip, a launch is deterministic, and the pool of
// stacks is reused by every block. All CUDA threads of a launch run on the host thread that called
// slak_emu_launch; launches are serialised by the caller (slak_emu_launch.cpp), which is what makes `static`
// __shared__ variables and the globals below safe.
#include "slak_emu_fiber.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace slak_emu
{
Fiber* g_current = nullptr;
uint3 g_block_idx{};
dim3 g_block_dim{};
dim3 g_grid_dim{};
unsigned char* g_dynamic_shared = nullptr;
}  // namespace slak_emu

// ---- context switch ----
#if defined(__x86_64__)
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the stack pointer
// in *save_sp, switches to load_sp and restores the same set from there (System V AMD64 ABI).
extern "C" void slak_emu_switch_x64(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl slak_emu_switch_x64
    .hidden slak_emu_switch_x64
    .type slak_emu_switch_x64,@function
slak_emu_switch_x64:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size slak_emu_switch_x64, .-slak_emu_switch_x64
)");
#endif

namespace slak_emu
{
namespace
{
constexpr std::size_t kStackBytes = 256 * 1024;  // kernels keep small local arrays; exceptions need a few KiB
constexpr std::size_t kGuardBytes = 4096;         // an overflow faults instead of corrupting a neighbour

enum class Wait { None, Block, Warp };

struct FiberSlot : Fiber
{
    unsigned char* mapping = nullptr;
    Wait wait = Wait::None;
    unsigned wait_gen = 0;
    bool done = false;
#if defined(__x86_64__)
    void* sp = nullptr;
#else
    ucontext_t context{};
#endif
};

struct WarpState
{
    unsigned exists = 0;   // lanes that exist in this block (a partial last warp has fewer)
    unsigned live = 0;     // lanes that have not returned
    unsigned arrived = 0;  // lanes waiting at the current warp barrier
    unsigned want = 0;     // union of the masks they passed
    unsigned gen = 0;      // incremented at every release
    std::uint64_t slot[32] = {};
};

struct BlockState
{
    unsigned live = 0;
    unsigned arrived = 0;
    unsigned gen = 0;
    int count = 0;         // __syncthreads_count: predicates of the threads arrived so far
    int count_result = 0;  // ... and the total of the last completed barrier
};

// A kernel-side error: unwinds the failing fiber to fiber_entry, which records it and ends the block.
struct KernelAbort
{
    std::string message;
};

std::vector<std::unique_ptr<FiberSlot>> g_pool;
std::vector<WarpState> g_warps;
BlockState g_block;
const LaunchConfig* g_launch = nullptr;
std::string g_error;
bool g_failed = false;
unsigned char* g_shared_buffer = nullptr;
std::size_t g_shared_capacity = 0;
#if defined(__x86_64__)
void* g_scheduler_sp = nullptr;
#else
ucontext_t g_scheduler_context;
#endif

FiberSlot* current() { return static_cast<FiberSlot*>(g_current); }

std::string where(const Fiber* f)
{
    char buf[160];
    std::snprintf(buf, sizeof buf, "block (%u,%u,%u) thread (%u,%u,%u)", g_block_idx.x, g_block_idx.y,
                  g_block_idx.z, f->thread_idx.x, f->thread_idx.y, f->thread_idx.z);
    return buf;
}

[[noreturn]] void fail(const std::string& what) { throw KernelAbort{what + " in " + where(current())}; }

// Suspends the current fiber and returns to the scheduler.
void yield_to_scheduler(FiberSlot* f)
{
#if defined(__x86_64__)
    slak_emu_switch_x64(&f->sp, g_scheduler_sp);
#else
    swapcontext(&f->context, &g_scheduler_context);
#endif
}

void resume(FiberSlot* f)
{
    g_current = f;
#if defined(__x86_64__)
    slak_emu_switch_x64(&g_scheduler_sp, f->sp);
#else
    swapcontext(&g_scheduler_context, &f->context);
#endif
}

bool try_release_warp(WarpState& w)
{
    const unsigned required = w.want & w.live;
    if (w.arrived == 0 || (w.arrived & required) != required) return false;
    w.arrived = 0;
    w.want = 0;
    ++w.gen;
    return true;
}

void warp_barrier(unsigned mask)
{
    FiberSlot* f = current();
    WarpState& w = g_warps[f->warp];
    const unsigned bit = 1u << f->lane;
    char buf[200];
    if ((mask & bit) == 0)
    {
        std::snprintf(buf, sizeof buf, "warp intrinsic with mask 0x%08x that excludes the calling lane %u", mask,
                      f->lane);
        fail(buf);
    }
    if (const unsigned gone = mask & w.exists & ~w.live; gone != 0)
    {
        std::snprintf(buf, sizeof buf,
                      "warp intrinsic with mask 0x%08x names lanes 0x%08x that already returned from the kernel "
                      "(undefined behaviour on the GPU)", mask, gone);
        fail(buf);
    }
    w.arrived |= bit;
    w.want |= mask;
    if (try_release_warp(w)) return;
    f->wait = Wait::Warp;
    f->wait_gen = w.gen;
    yield_to_scheduler(f);
    f->wait = Wait::None;
}

// Called when a fiber's kernel call returns: it leaves the block barrier and its warp.
void release_block_barrier()
{
    g_block.arrived = 0;
    g_block.count_result = g_block.count;
    g_block.count = 0;
    ++g_block.gen;
}

void thread_exit(FiberSlot* f)
{
    --g_block.live;
    if (g_block.arrived > 0 && g_block.arrived >= g_block.live) release_block_barrier();
    WarpState& w = g_warps[f->warp];
    const unsigned bit = 1u << f->lane;
    w.live &= ~bit;
    if (w.arrived != 0 && (w.want & bit) != 0)
    {
        char buf[200];
        std::snprintf(buf, sizeof buf,
                      "lane %u returned from the kernel while lanes 0x%08x wait for it in a warp intrinsic "
                      "(mask 0x%08x)", f->lane, w.arrived, w.want);
        fail(buf);
    }
    try_release_warp(w);
}

extern "C" [[noreturn]] void slak_emu_fiber_entry()
{
    FiberSlot* f = current();
    try
    {
        g_launch->invoker(g_launch->args);
        thread_exit(f);
    }
    catch (const KernelAbort& e)
    {
        g_failed = true;
        g_error = e.message;
    }
    catch (const std::exception& e)
    {
        g_failed = true;
        g_error = std::string("host exception in kernel code: ") + e.what() + " in " + where(f);
    }
    catch (...)
    {
        g_failed = true;
        g_error = "unknown exception in kernel code in " + where(f);
    }
    f->done = true;
    yield_to_scheduler(f);
    std::abort();  // a finished fiber is never resumed
}

FiberSlot* make_fiber()
{
    auto f = std::make_unique<FiberSlot>();
    void* m = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("emulator: cannot map a fiber stack");
    mprotect(m, kGuardBytes, PROT_NONE);
    f->mapping = static_cast<unsigned char*>(m);
    g_pool.push_back(std::move(f));
    return g_pool.back().get();
}

// Prepares a fiber so that resuming it enters slak_emu_fiber_entry on a fresh stack.
void reset_fiber(FiberSlot* f)
{
    f->wait = Wait::None;
    f->wait_gen = 0;
    f->done = false;
#if defined(__x86_64__)
    auto top = reinterpret_cast<std::uintptr_t>(f->mapping + kGuardBytes + kStackBytes) & ~std::uintptr_t{15};
    auto* p = reinterpret_cast<std::uint64_t*>(top);
    p[-1] = 0;                                                           // entry's (absent) return address
    p[-2] = reinterpret_cast<std::uint64_t>(&slak_emu_fiber_entry);      // popped by `ret`
    for (int i = 3; i <= 8; ++i) p[-i] = 0;                              // rbp rbx r12 r13 r14 r15
    p[-9] = 0x1F80ull | (0x037Full << 32);                               // default MXCSR, x87 control word
    f->sp = &p[-9];
#else
    getcontext(&f->context);
    f->context.uc_stack.ss_sp = f->mapping + kGuardBytes;
    f->context.uc_stack.ss_size = kStackBytes;
    f->context.uc_link = nullptr;
    makecontext(&f->context, &slak_emu_fiber_entry, 0);
#endif
}

std::string describe_deadlock(unsigned n)
{
    unsigned at_block = 0, at_warp = 0;
    for (unsigned i = 0; i < n; ++i)
    {
        const FiberSlot* f = g_pool[i].get();
        if (f->done) continue;
        if (f->wait == Wait::Block) ++at_block;
        if (f->wait == Wait::Warp) ++at_warp;
    }
    char buf[240];
    std::snprintf(buf, sizeof buf,
                  "deadlock in block (%u,%u,%u): %u threads wait at __syncthreads and %u at a warp intrinsic, and "
                  "none can proceed (a barrier or warp intrinsic not reached by all threads it waits for)",
                  g_block_idx.x, g_block_idx.y, g_block_idx.z, at_block, at_warp);
    return buf;
}

// Runs the fibers of the current block until all returned. Returns false on error (g_error set).
bool run_block(unsigned n)
{
    g_block = BlockState{};
    g_block.live = n;
    for (unsigned w = 0; w < g_warps.size(); ++w)
    {
        const unsigned lanes = n - w * 32 >= 32 ? 32 : n - w * 32;
        g_warps[w] = WarpState{};
        g_warps[w].exists = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1);
        g_warps[w].live = g_warps[w].exists;
    }
    const dim3 bd = g_block_dim;
    for (unsigned i = 0; i < n; ++i)
    {
        FiberSlot* f = g_pool[i].get();
        f->thread_idx = uint3{i % bd.x, (i / bd.x) % bd.y, i / (bd.x * bd.y)};
        f->linear = i;
        f->lane = i % 32;
        f->warp = i / 32;
        reset_fiber(f);
    }
    unsigned remaining = n;
    while (remaining > 0)
    {
        bool ran = false;
        for (unsigned i = 0; i < n; ++i)
        {
            FiberSlot* f = g_pool[i].get();
            if (f->done) continue;
            if (f->wait == Wait::Block && g_block.gen == f->wait_gen) continue;
            if (f->wait == Wait::Warp && g_warps[f->warp].gen == f->wait_gen) continue;
            ran = true;
            resume(f);
            if (g_failed) return false;
            if (f->done) --remaining;
        }
        if (!ran && remaining > 0)
        {
            g_failed = true;
            g_error = describe_deadlock(n);
            return false;
        }
    }
    return true;
}
}  // namespace

// ---- intrinsics called from kernel code ----
void syncthreads()
{
    FiberSlot* f = current();
    ++g_block.arrived;
    if (g_block.arrived >= g_block.live)
    {
        release_block_barrier();
        return;
    }
    f->wait = Wait::Block;
    f->wait_gen = g_block.gen;
    yield_to_scheduler(f);
    f->wait = Wait::None;
}

int syncthreads_count(int predicate)
{
    // Waiting threads read count_result right after the release, before any thread can reach the next barrier.
    if (predicate != 0) ++g_block.count;
    syncthreads();
    return g_block.count_result;
}

void syncwarp(unsigned mask) { warp_barrier(mask); }

unsigned active_mask() { return g_warps[current()->warp].live; }

std::uint64_t warp_exchange(unsigned mask, std::uint64_t value, int src)
{
    FiberSlot* f = current();
    WarpState& w = g_warps[f->warp];
    w.slot[f->lane] = value;
    warp_barrier(mask);
    std::uint64_t result = value;
    if (src >= 0 && src < 32 && ((mask & w.exists) >> src & 1u) != 0) result = w.slot[src];
    warp_barrier(mask);  // nobody overwrites a slot before every lane has read it
    return result;
}

unsigned warp_ballot(unsigned mask, bool predicate)
{
    FiberSlot* f = current();
    WarpState& w = g_warps[f->warp];
    w.slot[f->lane] = predicate ? 1 : 0;
    warp_barrier(mask);
    unsigned bits = 0;
    const unsigned lanes = mask & w.exists;
    for (unsigned l = 0; l < 32; ++l)
        if ((lanes >> l & 1u) != 0 && w.slot[l] != 0) bits |= 1u << l;
    warp_barrier(mask);
    return bits;
}

void trap(const char* what) { fail(what); }

void device_assert_failed(const char* expr, const char* file, int line)
{
    char buf[400];
    std::snprintf(buf, sizeof buf, "device assertion `%s` failed at %s:%d", expr, file, line);
    fail(buf);
}

// ---- launch ----
std::string run_launch(const LaunchConfig& config)
{
    const unsigned n = config.block.x * config.block.y * config.block.z;
    while (g_pool.size() < n) make_fiber();
    g_warps.resize((n + 31) / 32);
    if (config.shared_bytes > g_shared_capacity)
    {
        std::free(g_shared_buffer);
        g_shared_capacity = (config.shared_bytes + 127) & ~127u;
        g_shared_buffer = static_cast<unsigned char*>(std::aligned_alloc(128, g_shared_capacity));
        if (g_shared_buffer == nullptr)
        {
            g_shared_capacity = 0;
            return "cannot allocate the dynamic shared memory buffer";
        }
    }
    g_launch = &config;
    g_block_dim = config.block;
    g_grid_dim = config.grid;
    g_dynamic_shared = config.shared_bytes > 0 ? g_shared_buffer : nullptr;
    g_failed = false;
    g_error.clear();
    for (unsigned z = 0; z < config.grid.z; ++z)
        for (unsigned y = 0; y < config.grid.y; ++y)
            for (unsigned x = 0; x < config.grid.x; ++x)
            {
                g_block_idx = uint3{x, y, z};
                // Uninitialised on the GPU: poison (NaN as float, -1 as int) so that reads before writes show.
                if (config.shared_bytes > 0) std::memset(g_shared_buffer, 0xFF, config.shared_bytes);
                if (!run_block(n))
                {
                    g_current = nullptr;
                    g_launch = nullptr;
                    return g_error;
                }
            }
    g_current = nullptr;
    g_launch = nullptr;
    return {};
}

unsigned fiber_pool_size() { return static_cast<unsigned>(g_pool.size()); }
}  // namespace slak_emu
