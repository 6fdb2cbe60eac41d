// slak_emu_fiber.cpp: fibers, barriers, warp exchange and the block scheduler of the host emulator.
//
// Why fibers and not OS threads: a barrier between fibers is a cooperative switch (tens of nanoseconds on x86-64,
// with the hand-written switch below) instead of a futex round trip, a launch is deterministic, and the pool of
// stacks is reused by every block. All CUDA threads of a launch run on the host thread that called
// slak_emu_launch; launches are serialised by the caller (slak_emu_launch.cpp), which is what makes `static`
// __shared__ variables and the globals below safe.
// A memory fault in kernel code (an access to a guard page around device memory, a wild pointer, a fiber stack
// overflow, an integer division by zero) is caught by a signal handler that siglongjmps back into run_launch on the
// host thread's stack: the launch fails with a message and the process survives (the fibers of the block are
// abandoned and reset by the next block). _FORTIFY_SOURCE's longjmp check would object to leaving a fiber stack.
#undef _FORTIFY_SOURCE
#include "slak_emu_fiber.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <tuple>
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
bool g_race_check = false;
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

// ---- schedule permutation ----
std::vector<unsigned> g_order;  // the order in which the scheduler visits the fibers of the block
std::uint64_t g_rng = 0;

std::uint64_t next_random()
{
    // splitmix64: small, fast and good enough to shuffle a schedule reproducibly from a seed.
    std::uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void shuffle_order(unsigned n)
{
    for (unsigned i = n; i > 1; --i) std::swap(g_order[i - 1], g_order[next_random() % i]);
}

// ---- memory faults ----
sigjmp_buf g_fault_jump;
volatile sig_atomic_t g_in_fiber = 0;  // a fiber of a launch is running on g_launch_thread
pthread_t g_launch_thread;
volatile std::uintptr_t g_fault_address = 0;
volatile int g_fault_signal = 0;
std::uintptr_t g_last_fault_address = 0;
struct sigaction g_previous[3];
constexpr int kFaultSignals[3] = {SIGSEGV, SIGBUS, SIGFPE};
bool g_handlers_installed = false;

void fault_handler(int sig, siginfo_t* info, void* context)
{
    if (g_in_fiber != 0 && pthread_equal(pthread_self(), g_launch_thread))
    {
        g_in_fiber = 0;
        g_fault_signal = sig;
        g_fault_address = reinterpret_cast<std::uintptr_t>(info->si_addr);
        siglongjmp(g_fault_jump, 1);
    }
    // Not ours (the .NET runtime turns its own faults into exceptions): hand it to the previous handler.
    for (int i = 0; i < 3; ++i)
    {
        if (kFaultSignals[i] != sig) continue;
        const struct sigaction& prev = g_previous[i];
        if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr)
        {
            prev.sa_sigaction(sig, info, context);
            return;
        }
        if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN)
        {
            prev.sa_handler(sig);
            return;
        }
        // Default action: restore it and return, so that the faulting instruction faults again and terminates.
        signal(sig, SIG_DFL);
        return;
    }
}

void install_fault_handlers()
{
    if (g_handlers_installed) return;
    for (int i = 0; i < 3; ++i)
    {
        struct sigaction sa{};
        sa.sa_sigaction = &fault_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;  // the alternate stack, where the thread has one (stack overflows)
        sigemptyset(&sa.sa_mask);
        sigaction(kFaultSignals[i], &sa, &g_previous[i]);
    }
    g_handlers_installed = true;
}

// ---- write-write race check on shared memory ----
// Between two synchronisation points a fiber runs alone, so the words of shared memory it changed are found by
// comparing a snapshot taken when it (re)starts with the memory when it reaches the next barrier, warp intrinsic or
// return. Each changed word records its writer and the barrier interval; a second writer in the same interval is a
// race, unless both are lanes of one warp separated by a warp barrier. Reads are not seen (see the README).
struct ShadowWord
{
    unsigned writer = 0;     // linear thread index + 1; 0 = none; kAtomicWriter = updated by atomics
    unsigned block_gen = 0;  // barrier interval of the write
    unsigned warp_gen = 0;   // the writer's warp barrier generation at the write
};
constexpr unsigned kAtomicWriter = 0xFFFFFFFFu;
std::vector<unsigned char> g_snapshot;
std::vector<ShadowWord> g_shadow;
std::size_t g_static_bytes = 0;  // the shared memory checked: static section then dynamic buffer

FiberSlot* current() { return static_cast<FiberSlot*>(g_current); }

std::string where(const Fiber* f)
{
    char buf[160];
    std::snprintf(buf, sizeof buf, "block (%u,%u,%u) thread (%u,%u,%u)", g_block_idx.x, g_block_idx.y,
                  g_block_idx.z, f->thread_idx.x, f->thread_idx.y, f->thread_idx.z);
    return buf;
}

[[noreturn]] void fail(const std::string& what) { throw KernelAbort{what + " in " + where(current())}; }

unsigned char* shared_byte(std::size_t offset)
{
    return offset < g_static_bytes ? g_launch->static_shared_begin + offset
                                   : g_shared_buffer + (offset - g_static_bytes);
}

std::size_t checked_shared_bytes() { return g_static_bytes + (g_launch->shared_bytes & ~3u); }

// Copies the checked shared memory, when the race check is on (the calling fiber is about to run alone).
void race_snapshot()
{
    if (!g_race_check) return;
    if (g_static_bytes > 0) std::memcpy(g_snapshot.data(), g_launch->static_shared_begin, g_static_bytes);
    if (g_launch->shared_bytes >= 4)
        std::memcpy(g_snapshot.data() + g_static_bytes, g_shared_buffer, g_launch->shared_bytes & ~3u);
}

std::string thread_name(unsigned linear)
{
    const dim3 bd = g_block_dim;
    char buf[64];
    std::snprintf(buf, sizeof buf, "thread (%u,%u,%u)", linear % bd.x, (linear / bd.x) % bd.y, linear / (bd.x * bd.y));
    return buf;
}

// Attributes the words the calling fiber changed since its snapshot, and fails on a second writer in the interval.
void race_diff(FiberSlot* f)
{
    if (!g_race_check) return;
    const std::size_t bytes = checked_shared_bytes();
    const unsigned bg = g_block.gen;
    const unsigned wg = g_warps[f->warp].gen;
    for (std::size_t chunk = 0; chunk < bytes; chunk += 256)
    {
        const std::size_t len = std::min<std::size_t>(256, bytes - chunk);
        // The static and dynamic parts are separate buffers: compare the chunk word by word when it straddles.
        const bool straddles = chunk < g_static_bytes && chunk + len > g_static_bytes;
        if (!straddles && std::memcmp(shared_byte(chunk), g_snapshot.data() + chunk, len) == 0) continue;
        for (std::size_t off = chunk; off < chunk + len; off += 4)
        {
            if (std::memcmp(shared_byte(off), g_snapshot.data() + off, 4) == 0) continue;
            ShadowWord& w = g_shadow[off / 4];
            if (w.block_gen == bg && w.writer == kAtomicWriter) continue;
            if (w.block_gen == bg && w.writer != 0 && w.writer != f->linear + 1)
            {
                const unsigned other = w.writer - 1;
                const bool ordered_in_warp = other / 32 == f->warp && w.warp_gen != wg;
                if (!ordered_in_warp)
                {
                    char buf[320];
                    std::snprintf(buf, sizeof buf,
                                  "shared-memory race: the word at address %p (%s shared memory, offset %zu) was "
                                  "written by %s and by %s with no __syncthreads between the writes",
                                  static_cast<void*>(shared_byte(off)), off < g_static_bytes ? "static" : "dynamic",
                                  off < g_static_bytes ? off : off - g_static_bytes, thread_name(other).c_str(),
                                  thread_name(f->linear).c_str());
                    fail(buf);
                }
            }
            w = ShadowWord{f->linear + 1, bg, wg};
        }
    }
}

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
    g_in_fiber = 1;
#if defined(__x86_64__)
    slak_emu_switch_x64(&g_scheduler_sp, f->sp);
#else
    swapcontext(&g_scheduler_context, &f->context);
#endif
    g_in_fiber = 0;
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
    race_diff(f);
    w.arrived |= bit;
    w.want |= mask;
    if (!try_release_warp(w))
    {
        f->wait = Wait::Warp;
        f->wait_gen = w.gen;
        yield_to_scheduler(f);
        f->wait = Wait::None;
    }
    race_snapshot();
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
    race_diff(f);
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
        race_snapshot();
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
    const unsigned flags = g_launch->flags;
    g_order.resize(n);
    for (unsigned i = 0; i < n; ++i) g_order[i] = (flags & kScheduleReverse) != 0 ? n - 1 - i : i;
    if (g_race_check)
    {
        g_shadow.assign(checked_shared_bytes() / 4, ShadowWord{});
        g_snapshot.resize(checked_shared_bytes());
    }
    unsigned remaining = n;
    while (remaining > 0)
    {
        bool ran = false;
        if ((flags & kScheduleShuffle) != 0) shuffle_order(n);
        for (unsigned k = 0; k < n; ++k)
        {
            FiberSlot* f = g_pool[g_order[k]].get();
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
    race_diff(f);
    ++g_block.arrived;
    if (g_block.arrived >= g_block.live)
    {
        release_block_barrier();
    }
    else
    {
        f->wait = Wait::Block;
        f->wait_gen = g_block.gen;
        yield_to_scheduler(f);
        f->wait = Wait::None;
    }
    race_snapshot();
}

void note_atomic(const void* address)
{
    // Marks the word as updated by atomics in this barrier interval: atomics from many threads are not a race.
    if (!g_race_check || g_launch == nullptr) return;
    const auto* p = static_cast<const unsigned char*>(address);
    std::size_t off;
    if (p >= g_launch->static_shared_begin && p < g_launch->static_shared_end)
        off = static_cast<std::size_t>(p - g_launch->static_shared_begin);
    else if (g_shared_buffer != nullptr && p >= g_shared_buffer && p < g_shared_buffer + g_launch->shared_bytes)
        off = g_static_bytes + static_cast<std::size_t>(p - g_shared_buffer);
    else
        return;
    if (off / 4 < g_shadow.size()) g_shadow[off / 4] = ShadowWord{kAtomicWriter, g_block.gen, 0};
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

// Runs the blocks of a launch (the sample when there is one) in order; false on a kernel error (g_error set).
static bool run_blocks(const LaunchConfig& config, const std::vector<uint3>& sample, unsigned n)
{
    const unsigned long long total =
        config.sample != nullptr ? sample.size() : 1ull * config.grid.x * config.grid.y * config.grid.z;
    const unsigned long long gx = config.grid.x, gy = config.grid.y;
    for (unsigned long long k = 0; k < total; ++k)
    {
        g_block_idx = config.sample != nullptr
                          ? sample[k]
                          : uint3{static_cast<unsigned>(k % gx), static_cast<unsigned>(k / gx % gy),
                                  static_cast<unsigned>(k / (gx * gy))};
        // Uninitialised on the GPU: poison (NaN as float, -1 as int) so that reads before writes show.
        if (config.shared_bytes > 0) std::memset(g_shared_buffer, 0xFF, config.shared_bytes);
        if ((config.flags & kPoisonStaticShared) != 0 && config.static_shared_begin != nullptr)
            std::memset(config.static_shared_begin, 0xFF,
                        static_cast<std::size_t>(config.static_shared_end - config.static_shared_begin));
        // Each block's shuffles follow from the seed and the block index, so one block's failure replays alone.
        const unsigned long long linear = g_block_idx.x + gx * (g_block_idx.y + gy * g_block_idx.z);
        g_rng = config.seed ^ (0x9E3779B97F4A7C15ull * (linear + 1));
        if (!run_block(n)) return false;
    }
    return true;
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
    g_static_bytes = static_cast<std::size_t>(config.static_shared_end - config.static_shared_begin) & ~std::size_t{3};
    g_race_check = (config.flags & kRaceCheck) != 0;
    g_failed = false;
    g_error.clear();

    // The blocks to run: every block in order, or the sample (outside the grid: skipped; duplicates: run once).
    std::vector<uint3> sample;
    if (config.sample != nullptr)
    {
        for (int i = 0; i < config.sample_count; ++i)
        {
            const unsigned* b = config.sample + 3 * i;
            if (b[0] < config.grid.x && b[1] < config.grid.y && b[2] < config.grid.z)
                sample.push_back({b[0], b[1], b[2]});
        }
        auto key = [](const uint3& b) { return std::make_tuple(b.z, b.y, b.x); };
        std::sort(sample.begin(), sample.end(), [&](const uint3& a, const uint3& b) { return key(a) < key(b); });
        sample.erase(std::unique(sample.begin(), sample.end(),
                                 [&](const uint3& a, const uint3& b) { return key(a) == key(b); }),
                     sample.end());
    }
    auto finish = [](std::string error)
    {
        g_current = nullptr;
        g_launch = nullptr;
        g_race_check = false;
        g_in_fiber = 0;
        return error;
    };
    auto schedule_note = [&config]() -> std::string
    {
        char buf[96];
        if ((config.flags & kScheduleShuffle) != 0)
            std::snprintf(buf, sizeof buf, " (schedule: shuffled, seed %llu)",
                          static_cast<unsigned long long>(config.seed));
        else if ((config.flags & kScheduleReverse) != 0)
            std::snprintf(buf, sizeof buf, " (schedule: reversed)");
        else
            buf[0] = 0;
        return buf;
    };

    install_fault_handlers();
    g_launch_thread = pthread_self();
    g_in_fiber = 0;
    if (sigsetjmp(g_fault_jump, 1) != 0)
    {
        // A fault in kernel code: the faulting fiber (g_current) is abandoned with the rest of the block.
        g_last_fault_address = g_fault_address;
        const auto address = static_cast<std::uintptr_t>(g_fault_address);
        const char* kind = g_fault_signal == SIGFPE   ? "arithmetic exception (SIGFPE: an integer division by zero?)"
                           : g_fault_signal == SIGBUS ? "bus error (SIGBUS)"
                                                      : "invalid memory access (SIGSEGV)";
        std::string detail;
        for (const auto& slot : g_pool)
            if (address >= reinterpret_cast<std::uintptr_t>(slot->mapping) &&
                address < reinterpret_cast<std::uintptr_t>(slot->mapping) + kGuardBytes)
                detail = ": fiber stack overflow (a kernel thread used more than 256 KiB of stack)";
        char buf[200];
        std::snprintf(buf, sizeof buf, "%s at address 0x%llx%s", kind, static_cast<unsigned long long>(address),
                      detail.c_str());
        const Fiber* f = g_current;
        std::string message = buf;
        message += f != nullptr ? " in " + where(f) : " in block";
        return finish(message + schedule_note());
    }

    return finish(run_blocks(config, sample, n) ? std::string() : g_error + schedule_note());
}

unsigned fiber_pool_size() { return static_cast<unsigned>(g_pool.size()); }

std::uintptr_t last_fault_address() { return g_last_fault_address; }
}  // namespace slak_emu
