// slak_emu_fiber.h: the block scheduler of the host emulator (internal to libslak_emu.so).
//
// Runs the blocks of a launch (all, or a sample): every CUDA thread is a fiber on a stack from a pool reused across
// blocks and launches; the scheduler resumes fibers round-robin (in thread order, reversed, or shuffled from a seed)
// until all have returned, skipping those blocked at a barrier. Errors raised inside a kernel (__trap, device
// asserts, misuse of warp intrinsics, deadlock, a shared-memory race, a memory fault) abort the launch and come
// back as a message.
#pragma once

#include <string>

#include "slak_emu.h"

namespace slak_emu
{
// Checks of a launch (bits of slak_emu_launch_options.flags; EmulatorChecks in C# mirrors them).
constexpr unsigned kScheduleReverse = 1u;     // run a block's fibers in reverse order
constexpr unsigned kScheduleShuffle = 2u;     // ... in a seeded random order, reshuffled at every scheduler pass
constexpr unsigned kPoisonStaticShared = 4u;  // 0xFF bytes into the kernel file's static __shared__ before each block
constexpr unsigned kRaceCheck = 8u;           // write-write races on shared memory within a barrier interval
// (bit 16, bounds checks, is the allocator's business: guard pages around device memory, see EmulatedDevice.)

// One launch's configuration, shared by the blocks it runs.
struct LaunchConfig
{
    const char* kernel_name = nullptr;
    Invoker invoker = nullptr;
    void** args = nullptr;
    dim3 grid;
    dim3 block;
    unsigned shared_bytes = 0;
    unsigned flags = 0;
    std::uint64_t seed = 0;
    const unsigned* sample = nullptr;  // (x, y, z) triples of the blocks to run; null = every block
    int sample_count = 0;
    unsigned char* static_shared_begin = nullptr;  // the kernel file's static __shared__ section
    unsigned char* static_shared_end = nullptr;
};

// Runs every block of the launch, one after another. Returns an empty string on success, else the error.
std::string run_launch(const LaunchConfig& config);

// Number of fibers whose stacks exist (for diagnostics).
unsigned fiber_pool_size();

// Address of the last memory fault caught in a kernel (0 when none since the library was loaded).
std::uintptr_t last_fault_address();
}  // namespace slak_emu
