// The limits a launch plan is made for: the C# mirror of SlakDeviceLimits (cuda/include/slak/slak_limits.h, whose
// per-architecture tables for sm_80, sm_86, sm_89 and sm_90 are the only copy; this file reads them through
// libslak_emu.so). Checked field by field against the header's layout by PlanStructLayoutTests.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Slak.Cuda.Kernels;

namespace Slak.Cuda.Runtime;

/// <summary>Grid, block, register and shared-memory limits of one GPU architecture (mirror of
/// <c>SlakDeviceLimits</c>; public fields in the header's order).</summary>
[StructLayout(LayoutKind.Sequential)]
internal record struct DeviceLimits
{
    /// <summary>Compute capability, major * 10 + minor.</summary>
    public int Sm;
    /// <summary>Threads per block (1024).</summary>
    public int MaxThreadsPerBlock;
    /// <summary>Block dimension limits.</summary>
    public int MaxBlockX;
    /// <summary>Block dimension limits.</summary>
    public int MaxBlockY;
    /// <summary>Block dimension limits.</summary>
    public int MaxBlockZ;
    /// <summary>Grid dimension limits (2^31 - 1, 65535, 65535).</summary>
    public int MaxGridX;
    /// <summary>Grid dimension limits.</summary>
    public int MaxGridY;
    /// <summary>Grid dimension limits.</summary>
    public int MaxGridZ;
    /// <summary>Registers per thread (255).</summary>
    public int MaxRegsPerThread;
    /// <summary>Registers per block (65536).</summary>
    public int MaxRegsPerBlock;
    /// <summary>Shared bytes per block without opting in (48 KB).</summary>
    public int SmemPerBlockDefault;
    /// <summary>Shared bytes per block after opting in (static + dynamic).</summary>
    public int SmemPerBlockOptin;
    /// <summary>Shared bytes per SM.</summary>
    public int SmemPerSm;
    /// <summary>Resident threads per SM.</summary>
    public int MaxThreadsPerSm;
    /// <summary>Resident blocks per SM.</summary>
    public int MaxBlocksPerSm;
    /// <summary>Threads per warp (32).</summary>
    public int WarpSize;

    /// <summary>The architectures with a table in slak_limits.h.</summary>
    public static IReadOnlyList<int> KnownArchitectures { get; } = [80, 86, 89, 90];

    private static readonly ConditionalWeakTable<IGpuDevice, object> Cache = new();

    /// <summary>The limits of compute capability <paramref name="sm"/> (80, 86, 89 or 90); throws for others.</summary>
    public static DeviceLimits ForArchitecture(int sm) =>
        LaunchPlans.TryLimits(sm, out var limits)
            ? limits
            : throw new ArgumentOutOfRangeException(nameof(sm), sm,
                $"no device-limit table for sm_{sm} (known: {string.Join(", ", KnownArchitectures.Select(a => $"sm_{a}"))})");

    /// <summary>The limits launches on <paramref name="device"/> are planned for: its architecture's table (the
    /// nearest known one below it for others, with the opt-in maximum the driver reports); sm_90's for the emulator,
    /// whose dynamic shared-memory cap is sm_90's opt-in maximum.</summary>
    public static DeviceLimits For(IGpuDevice device) => (DeviceLimits)Cache.GetValue(device, d => Compute(d));

    private static DeviceLimits Compute(IGpuDevice device)
    {
        if (device is not CudaDriverDevice gpu) return ForArchitecture(90);
        int sm = gpu.ComputeCapability.Major * 10 + gpu.ComputeCapability.Minor;
        if (KnownArchitectures.Contains(sm)) return ForArchitecture(sm);
        int nearest = KnownArchitectures.Where(a => a <= sm).DefaultIfEmpty(KnownArchitectures[0]).Max();
        var l = ForArchitecture(nearest);
        return l with
        {
            Sm = sm,
            SmemPerBlockOptin = Math.Max(l.SmemPerBlockDefault, gpu.MaxSharedMemoryPerBlockOptin),
        };
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"sm_{Sm}: grid ({MaxGridX}, {MaxGridY}, {MaxGridZ}), {MaxThreadsPerBlock} threads/block, " +
        $"{MaxRegsPerThread} regs/thread, {MaxRegsPerBlock} regs/block, shared {SmemPerBlockDefault} B default / " +
        $"{SmemPerBlockOptin} B opt-in per block, {SmemPerSm} B per SM";
}
