// slak_emu.h: the CUDA execution model on the CPU, for the host emulator (libslak_emu.so).
//
// Force-included (g++ -include) before every cuda/kernels/*.cu, which are compiled unchanged as C++20. It defines
// the CUDA qualifiers, the built-in index variables, __syncthreads, warp shuffles and votes, atomics and the device
// math the kernels use, so that the same sources NVRTC compiles for the GPU run here on host memory.
//
// The model (see docs/design.md, "The emulator's model"):
//   - the blocks of a launch run one after another, on the calling host thread;
//   - every CUDA thread of a block is a fiber (own stack, cooperative switch); one pool of fibers is reused for all
//     blocks and launches, so a block costs no OS thread creation;
//   - __shared__ is `static`: one instance per kernel function, shared by the threads of the running block (blocks
//     never overlap, and launches are serialised by a process-wide lock);
//   - __syncthreads() is a barrier in which a thread that returned from the kernel no longer counts (Volta+);
//   - warp shuffles and votes go through a per-warp exchange slot plus a warp barrier;
//   - atomics use std::atomic_ref (single host thread runs a launch, so they are trivially atomic, but the code
//     stays correct if blocks are ever run in parallel).
// Nothing here is visible outside the library: only the slak_emu_* C entry points are exported.
#pragma once

#define SLAK_EMU 1

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <math.h>
#include <type_traits>
#include <utility>

// ---- qualifiers ----
#define __global__
#define __device__
#define __host__
#define __constant__
// Static __shared__ variables go to one linker section per kernel file (the wrapper of gen_registry.cmake names it
// in SLAK_EMU_SHARED_SECTION before including the file), so the emulator can poison all of them before each block,
// like dynamic shared memory, without touching the kernel sources.
#ifndef SLAK_EMU_SHARED_SECTION
#define SLAK_EMU_SHARED_SECTION "slak_emu_shared"
#endif
#define __shared__ static __attribute__((section(SLAK_EMU_SHARED_SECTION)))
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// __restrict__ is a g++ keyword already. __noinline__ is left alone: libstdc++ spells its attribute that way.

// ---- built-in vector types ----
struct uint3 { unsigned x, y, z; };
struct dim3
{
    unsigned x = 1, y = 1, z = 1;
    constexpr dim3() = default;
    constexpr dim3(unsigned x_, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }

#define warpSize 32

// ---- the emulator's runtime state (defined in slak_emu_fiber.cpp) ----
namespace slak_emu
{
struct Fiber
{
    uint3 thread_idx;      // threadIdx of the CUDA thread this fiber runs
    unsigned linear;       // linear thread index in the block
    unsigned lane;         // linear % 32
    unsigned warp;         // linear / 32
};

extern Fiber* g_current;           // the fiber now running
extern uint3 g_block_idx;          // blockIdx of the running block
extern dim3 g_block_dim;           // blockDim of the launch
extern dim3 g_grid_dim;            // gridDim of the launch
extern unsigned char* g_dynamic_shared;  // this launch's dynamic shared memory (poisoned per block)
extern bool g_race_check;                // the launch checks shared memory for write-write races

// Tells the race check that an atomic updated the word at `address` (atomics of many threads are no race).
void note_atomic(const void* address);
inline void atomic_hook(const void* address)
{
    if (g_race_check) note_atomic(address);
}

void syncthreads();
// __syncthreads_count: a barrier that also returns how many of the arriving threads passed a non-zero predicate.
int syncthreads_count(int predicate);
void syncwarp(unsigned mask);
// Lanes of the caller's warp that have not returned (the emulator runs every live lane convergently).
unsigned active_mask();
// Exchanges one 64-bit word within a warp: every participating lane publishes `value`, then reads lane `src`'s
// (its own value when `src` is outside the warp or does not exist).
std::uint64_t warp_exchange(unsigned mask, std::uint64_t value, int src);
// Returns the ballot of `predicate` over the participating lanes.
unsigned warp_ballot(unsigned mask, bool predicate);
[[noreturn]] void trap(const char* what);
[[noreturn]] void device_assert_failed(const char* expr, const char* file, int line);

template <class T>
inline T shuffle(unsigned mask, T value, int src)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp shuffle of a type wider than 64 bits");
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    bits = warp_exchange(mask, bits, src);
    T out;
    std::memcpy(&out, &bits, sizeof(T));
    return out;
}
}  // namespace slak_emu

// ---- built-in index variables ----
#define threadIdx (::slak_emu::g_current->thread_idx)
#define blockIdx (::slak_emu::g_block_idx)
#define blockDim (::slak_emu::g_block_dim)
#define gridDim (::slak_emu::g_grid_dim)

// Dynamic shared memory: `extern __shared__` on the GPU (see slak_common.cuh), a per-launch buffer here.
#define SLAK_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::slak_emu::g_dynamic_shared)

// ---- synchronisation ----
inline void __syncthreads() { slak_emu::syncthreads(); }
inline int __syncthreads_count(int predicate) { return slak_emu::syncthreads_count(predicate); }
inline int __syncthreads_or(int predicate) { return slak_emu::syncthreads_count(predicate) != 0; }
inline int __syncthreads_and(int predicate)
{
    // All threads that arrive count; compare with the number of arrivals (a second count of `true`).
    const int yes = slak_emu::syncthreads_count(predicate);
    return yes == slak_emu::syncthreads_count(1);
}
inline void __syncwarp(unsigned mask = 0xffffffffu) { slak_emu::syncwarp(mask); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
[[noreturn]] inline void __trap() { slak_emu::trap("__trap() called"); }

// ---- warp shuffles and votes ----
inline unsigned slak_emu_lane() { return slak_emu::g_current->lane; }

template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32)
{
    const int lane = static_cast<int>(slak_emu_lane());
    const int base = lane & ~(width - 1);
    return slak_emu::shuffle(mask, var, base + (src_lane & (width - 1)));
}

template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32)
{
    const int lane = static_cast<int>(slak_emu_lane());
    const int base = lane & ~(width - 1);
    const int src = lane - static_cast<int>(delta);
    return slak_emu::shuffle(mask, var, src < base ? lane : src);
}

template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32)
{
    const int lane = static_cast<int>(slak_emu_lane());
    const int base = lane & ~(width - 1);
    const int src = lane + static_cast<int>(delta);
    return slak_emu::shuffle(mask, var, src >= base + width ? lane : src);
}

template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32)
{
    const int lane = static_cast<int>(slak_emu_lane());
    const int base = lane & ~(width - 1);
    const int src = lane ^ lane_mask;
    return slak_emu::shuffle(mask, var, (src < base || src >= base + width) ? lane : src);
}

inline unsigned __ballot_sync(unsigned mask, int predicate) { return slak_emu::warp_ballot(mask, predicate != 0); }
inline int __any_sync(unsigned mask, int predicate) { return slak_emu::warp_ballot(mask, predicate != 0) != 0; }
inline int __all_sync(unsigned mask, int predicate)
{
    // Lanes that take part are exactly those whose ballot bit can be set; compare with the ballot of `true`.
    const unsigned yes = slak_emu::warp_ballot(mask, predicate != 0);
    const unsigned all = slak_emu::warp_ballot(mask, true);
    return yes == all;
}
inline unsigned __activemask() { return slak_emu::active_mask(); }

// ---- atomics (return the old value, like CUDA) ----
template <class T>
inline T slak_emu_atomic_add(T* address, T value)
{
    slak_emu::atomic_hook(address);
    return std::atomic_ref<T>(*address).fetch_add(value, std::memory_order_relaxed);
}
inline float atomicAdd(float* a, float v) { return slak_emu_atomic_add(a, v); }
inline double atomicAdd(double* a, double v) { return slak_emu_atomic_add(a, v); }
inline int atomicAdd(int* a, int v) { return slak_emu_atomic_add(a, v); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return slak_emu_atomic_add(a, v); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) { return slak_emu_atomic_add(a, v); }
inline int atomicSub(int* a, int v)
{
    slak_emu::atomic_hook(a);
    return std::atomic_ref<int>(*a).fetch_sub(v, std::memory_order_relaxed);
}
inline unsigned atomicSub(unsigned* a, unsigned v)
{
    slak_emu::atomic_hook(a);
    return std::atomic_ref<unsigned>(*a).fetch_sub(v, std::memory_order_relaxed);
}

template <class T, class F>
inline T slak_emu_atomic_update(T* address, F f)
{
    slak_emu::atomic_hook(address);
    std::atomic_ref<T> ref(*address);
    T old = ref.load(std::memory_order_relaxed);
    while (!ref.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {}
    return old;
}
inline int atomicMax(int* a, int v) { return slak_emu_atomic_update(a, [v](int o) { return o > v ? o : v; }); }
inline unsigned atomicMax(unsigned* a, unsigned v)
{
    return slak_emu_atomic_update(a, [v](unsigned o) { return o > v ? o : v; });
}
inline unsigned long long atomicMax(unsigned long long* a, unsigned long long v)
{
    return slak_emu_atomic_update(a, [v](unsigned long long o) { return o > v ? o : v; });
}
inline int atomicMin(int* a, int v) { return slak_emu_atomic_update(a, [v](int o) { return o < v ? o : v; }); }
inline unsigned atomicMin(unsigned* a, unsigned v)
{
    return slak_emu_atomic_update(a, [v](unsigned o) { return o < v ? o : v; });
}
template <class T>
inline T slak_emu_atomic_cas(T* a, T compare, T value)
{
    slak_emu::atomic_hook(a);
    std::atomic_ref<T>(*a).compare_exchange_strong(compare, value, std::memory_order_relaxed);
    return compare;  // holds the old value whether or not the exchange happened
}
inline int atomicCAS(int* a, int c, int v) { return slak_emu_atomic_cas(a, c, v); }
inline unsigned atomicCAS(unsigned* a, unsigned c, unsigned v) { return slak_emu_atomic_cas(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long c, unsigned long long v)
{
    return slak_emu_atomic_cas(a, c, v);
}
inline int atomicExch(int* a, int v)
{
    slak_emu::atomic_hook(a);
    return std::atomic_ref<int>(*a).exchange(v, std::memory_order_relaxed);
}
inline unsigned atomicExch(unsigned* a, unsigned v)
{
    slak_emu::atomic_hook(a);
    return std::atomic_ref<unsigned>(*a).exchange(v, std::memory_order_relaxed);
}
inline unsigned long long atomicExch(unsigned long long* a, unsigned long long v)
{
    slak_emu::atomic_hook(a);
    return std::atomic_ref<unsigned long long>(*a).exchange(v, std::memory_order_relaxed);
}
inline float atomicExch(float* a, float v)
{
    slak_emu::atomic_hook(a);
    return std::atomic_ref<float>(*a).exchange(v, std::memory_order_relaxed);
}
inline int atomicOr(int* a, int v)
{
    slak_emu::atomic_hook(a);
    return std::atomic_ref<int>(*a).fetch_or(v, std::memory_order_relaxed);
}
inline unsigned atomicOr(unsigned* a, unsigned v)
{
    slak_emu::atomic_hook(a);
    return std::atomic_ref<unsigned>(*a).fetch_or(v, std::memory_order_relaxed);
}
inline int atomicAnd(int* a, int v)
{
    slak_emu::atomic_hook(a);
    return std::atomic_ref<int>(*a).fetch_and(v, std::memory_order_relaxed);
}
inline unsigned atomicAnd(unsigned* a, unsigned v)
{
    slak_emu::atomic_hook(a);
    return std::atomic_ref<unsigned>(*a).fetch_and(v, std::memory_order_relaxed);
}

// ---- loads, bit casts, integer intrinsics ----
template <class T>
inline T __ldg(const T* p) { return *p; }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
inline unsigned __brev(unsigned x)
{
    unsigned r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}

// ---- min / max (CUDA's overloads) ----
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

// ---- device math (fast-math intrinsics map to the accurate host functions) ----
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanhf(float x) { return tanhf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline int __float2int_rn(float x) { return static_cast<int>(nearbyintf(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float2int_rd(float x) { return static_cast<int>(floorf(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(ceilf(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float exp10f(float x) { return powf(10.0f, x); }

// ---- the registration of kernels (used by the generated cuda/kernels wrapper TUs) ----
namespace slak_emu
{
using Invoker = void (*)(void** args);

// What the generated wrapper of a kernel file knows about one kernel.
struct KernelInfo
{
    const char* name;
    Invoker invoker;
    int arity;
    const int* arg_sizes;            // sizeof of each parameter type (arity entries)
    unsigned max_threads;            // __launch_bounds__ maximum threads per block, 0 when not declared
    unsigned char* shared_begin;     // the kernel file's static __shared__ section (null when it has none)
    unsigned char* shared_end;
    const char* source;
};

// Registers a kernel by name; called from static initialisers of the generated wrapper translation units.
void register_kernel(const KernelInfo& info);

template <auto F, class... A, std::size_t... I>
inline void invoke_unpacked(void** args, void (*)(A...), std::index_sequence<I...>)
{
    // Each args[i] points at a value of exactly the i-th parameter's type (as for cuLaunchKernel).
    F(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}

template <auto F, class... A>
inline void invoke_with(void** args, void (*f)(A...))
{
    invoke_unpacked<F>(args, f, std::index_sequence_for<A...>{});
}

template <auto F>
void invoke(void** args) { invoke_with<F>(args, F); }

template <class... A>
constexpr int arity_of(void (*)(A...)) { return static_cast<int>(sizeof...(A)); }

// sizeof of each parameter type (one extra 0 so that a kernel without parameters still has an array).
template <class... A>
struct ArgSizes
{
    static constexpr int value[sizeof...(A) + 1] = {static_cast<int>(sizeof(std::remove_cv_t<A>))..., 0};
};
template <class... A>
constexpr const int* arg_sizes_of(void (*)(A...)) { return ArgSizes<A...>::value; }

struct Registrar
{
    Registrar(const char* name, Invoker invoker, int arity, const int* arg_sizes, unsigned max_threads,
              unsigned char* shared_begin, unsigned char* shared_end, const char* source)
    {
        register_kernel(KernelInfo{name, invoker, arity, arg_sizes, max_threads, shared_begin, shared_end, source});
    }
};
}  // namespace slak_emu

// Registers kernel `fn`, declared in namespace `ns` (the wrapper's per-file namespace), under its C name, with its
// __launch_bounds__ maximum (0 = none) and the file's static shared section [begin, end).
#define SLAK_EMU_REGISTER(ns, fn, max_threads, shared_begin, shared_end)                                       \
    static const ::slak_emu::Registrar slak_emu_registrar_##fn(                                               \
        #fn, &::slak_emu::invoke<&ns::fn>, ::slak_emu::arity_of(&ns::fn), ::slak_emu::arg_sizes_of(&ns::fn),  \
        static_cast<unsigned>(max_threads), shared_begin, shared_end, __FILE__);
