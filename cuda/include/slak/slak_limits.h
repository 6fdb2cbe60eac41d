// slak_limits.h: per-architecture device limits that every launch plan (slak_plan.h) is checked against.
//
// Values from the "Technical Specifications per Compute Capability" table of the CUDA C++ Programming Guide and the
// Ampere / Ada / Hopper tuning guides: grids of at most (2^31-1, 65535, 65535) blocks, blocks of at most 1024 threads
// ((1024, 1024, 64) per dimension), 255 registers per thread and 64 K per block, 48 KB of shared memory per block
// unless the kernel opts in (cuFuncSetAttribute MAX_DYNAMIC_SHARED_SIZE_BYTES) up to 163 KB (sm_80), 99 KB (sm_86,
// sm_89) or 227 KB (sm_90), of 164 / 100 / 100 / 228 KB per SM. Static + dynamic shared memory together must fit.
//
// Plain C++ (no headers, no namespace) like slak_params.h; the C# mirror is Slak.Cuda.Runtime.DeviceLimits (checked
// field by field against the layout table exported by libslak_emu.so).
#pragma once

// Shared bytes per block a launch may use without opting in, on every architecture since sm_20.
constexpr int kSlakSmemPerBlockDefault = 48 * 1024;

struct SlakDeviceLimits
{
    int sm;                        // compute capability major * 10 + minor
    int max_threads_per_block;     // 1024
    int max_block_x, max_block_y, max_block_z;
    int max_grid_x, max_grid_y, max_grid_z;
    int max_regs_per_thread;       // 255
    int max_regs_per_block;        // 65536
    int smem_per_block_default;    // 49152: what a launch may use without opting in
    int smem_per_block_optin;      // the opt-in maximum (static + dynamic)
    int smem_per_sm;
    int max_threads_per_sm;
    int max_blocks_per_sm;
    int warp_size;
};

// The limits of compute capability `sm` (80, 86, 89, 90) into *out; returns 0, or -1 (out untouched) for an
// architecture without a table.
inline int slak_device_limits_for_sm(int sm, SlakDeviceLimits* out)
{
    SlakDeviceLimits l;
    l.sm = sm;
    l.max_threads_per_block = 1024;
    l.max_block_x = 1024;
    l.max_block_y = 1024;
    l.max_block_z = 64;
    l.max_grid_x = 2147483647;
    l.max_grid_y = 65535;
    l.max_grid_z = 65535;
    l.max_regs_per_thread = 255;
    l.max_regs_per_block = 65536;
    l.smem_per_block_default = kSlakSmemPerBlockDefault;
    l.warp_size = 32;
    switch (sm)
    {
    case 80: // A100
        l.smem_per_block_optin = 163 * 1024;
        l.smem_per_sm = 164 * 1024;
        l.max_threads_per_sm = 2048;
        l.max_blocks_per_sm = 32;
        break;
    case 86: // RTX 30xx, A10, A40
        l.smem_per_block_optin = 99 * 1024;
        l.smem_per_sm = 100 * 1024;
        l.max_threads_per_sm = 1536;
        l.max_blocks_per_sm = 16;
        break;
    case 89: // RTX 40xx, L4, L40
        l.smem_per_block_optin = 99 * 1024;
        l.smem_per_sm = 100 * 1024;
        l.max_threads_per_sm = 1536;
        l.max_blocks_per_sm = 24;
        break;
    case 90: // H100, H200
        l.smem_per_block_optin = 227 * 1024;
        l.smem_per_sm = 228 * 1024;
        l.max_threads_per_sm = 2048;
        l.max_blocks_per_sm = 32;
        break;
    default:
        return -1;
    }
    *out = l;
    return 0;
}
