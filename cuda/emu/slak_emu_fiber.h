// slak_emu_fiber.h: the block scheduler of the host emulator (internal to libslak_emu.so).
//
// Runs one block of a launch: every CUDA thread is a fiber on a stack from a pool reused across blocks and
// launches; the scheduler resumes fibers round-robin until all have returned, skipping those blocked at a barrier.
// Errors raised inside a kernel (__trap, device asserts, misuse of warp intrinsics, deadlock) abort the block and
// come back as a message.
#pragma once

#include <string>

#include "slak_emu.h"

namespace slak_emu
{
// One launch's configuration, shared by the blocks it runs.
struct LaunchConfig
{
    const char* kernel_name = nullptr;
    Invoker invoker = nullptr;
    void** args = nullptr;
    dim3 grid;
    dim3 block;
    unsigned shared_bytes = 0;
};

// Runs every block of the launch, one after another. Returns an empty string on success, else the error.
std::string run_launch(const LaunchConfig& config);

// Number of fibers whose stacks exist (for diagnostics).
unsigned fiber_pool_size();
}  // namespace slak_emu
