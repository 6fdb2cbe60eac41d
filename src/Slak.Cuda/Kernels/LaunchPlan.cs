// The result of a launch plan: the C# mirror of SlakLaunchPlan (cuda/include/slak/slak_plan.h), filled by the plan
// functions through libslak_emu.so (LaunchPlans), checked field by field against the header by PlanStructLayoutTests.
using System.Runtime.InteropServices;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Which kernel of a family a plan launches (<c>SlakPlanKernel</c>).</summary>
public enum PlanKernel
{
    /// <summary>The only kernel of a generic family (grid-stride, one block per row, column sums).</summary>
    Generic = 0,
    /// <summary>dwconv_fwd_tiled_kernel.</summary>
    DwConvFwdTiled = 1,
    /// <summary>dwconv_fwd_direct_kernel.</summary>
    DwConvFwdDirect = 2,
    /// <summary>dwconv_wgrad_tiled_kernel.</summary>
    DwConvWgradTiled = 3,
    /// <summary>dwconv_wgrad_direct_kernel.</summary>
    DwConvWgradDirect = 4,
    /// <summary>dwconv_fused_kernel.</summary>
    DwConvFused = 5,
    /// <summary>dwconv_fused_wgrad_kernel.</summary>
    DwConvFusedWgrad = 6,
    /// <summary>The per-branch kernels, each launch planned on its own.</summary>
    PerBranch = 7,
    /// <summary>Nothing to launch (an empty tensor).</summary>
    None = 8,
    /// <summary>dwconv_small_kernel (small maps: the forward, input gradient and inference sum of stages
    /// 3-4).</summary>
    DwConvSmall = 9,
    /// <summary>dwconv_strip_kernel (one branch per launch over its live taps, stages 1-2). Planned in C#
    /// (<see cref="DwConvStripKernels.Plan"/>), not by slak_plan.h.</summary>
    DwConvStrip = 10,
}

/// <summary>Why a plan is not its family's first choice (<c>SlakPlanFallback</c>).</summary>
public enum PlanFallback
{
    /// <summary>The family's first choice.</summary>
    Preferred = 0,
    /// <summary>The tile does not fit the shared-memory budget.</summary>
    SharedMemory = 1,
    /// <summary>A grid dimension would exceed the device limit.</summary>
    Grid = 2,
    /// <summary>More branches than the fused kernels take.</summary>
    Branches = 3,
}

/// <summary>How a plan breaks a device limit (<c>SlakPlanViolation</c>; <see cref="WithinLimits"/> when it does
/// not).</summary>
internal enum PlanViolation
{
    /// <summary>The launch fits the device.</summary>
    WithinLimits = 0,
    /// <summary>A grid dimension is 0 or over the maximum.</summary>
    Grid = 1,
    /// <summary>A block dimension or the thread count is over the maximum.</summary>
    Block = 2,
    /// <summary>More threads than the kernel's <c>__launch_bounds__</c>.</summary>
    LaunchBounds = 3,
    /// <summary>Static + dynamic shared memory over the (default or opt-in) limit.</summary>
    SharedMemory = 4,
    /// <summary>The block could need more registers than a block has.</summary>
    Registers = 5,
}

/// <summary>One launch decision (mirror of <c>SlakLaunchPlan</c>; public fields in the header's order).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct LaunchPlan
{
    /// <summary>Which kernel of the family (<see cref="PlanKernel"/>).</summary>
    public int Kernel;
    /// <summary>Why not the first choice (<see cref="PlanFallback"/>).</summary>
    public int Fallback;
    /// <summary>Grid of one launch (the first one when split).</summary>
    public uint GridX, GridY, GridZ;
    /// <summary>Block.</summary>
    public uint BlockX, BlockY, BlockZ;
    /// <summary>Dynamic shared bytes per block.</summary>
    public int SmemDynamic;
    /// <summary>Static shared bytes the plan budgeted for the kernel.</summary>
    public int SmemStatic;
    /// <summary>1 when the launch needs more than the default shared memory (the device opts in first).</summary>
    public int OptIn;
    /// <summary>Number of launches (more than 1: split along the images).</summary>
    public int Launches;
    /// <summary>Images per launch when split.</summary>
    public long ItemsPerLaunch;
    /// <summary>Weight gradients: the dy tile.</summary>
    public int TileH, TileW;
    /// <summary>Weight gradients and column sums: partial chunks (grid.y).</summary>
    public int Chunks;
    /// <summary>Images or rows per chunk.</summary>
    public int PerChunk;
    /// <summary>Bytes of partials the launcher allocates.</summary>
    public long WorkspaceBytes;
    /// <summary>The kernel's <c>__launch_bounds__</c> (0: none).</summary>
    public int LaunchBound;
    /// <summary>Padding (0).</summary>
    public int Reserved;

    /// <summary>The kernel choice.</summary>
    public readonly PlanKernel KernelChoice => (PlanKernel)Kernel;

    /// <summary>The fallback reason.</summary>
    public readonly PlanFallback FallbackReason => (PlanFallback)Fallback;

    /// <summary>The grid of one launch.</summary>
    internal readonly Dim3 Grid => new(GridX, GridY, GridZ);

    /// <summary>The block.</summary>
    internal readonly Dim3 Block => new(BlockX, BlockY, BlockZ);

    /// <inheritdoc />
    public override readonly string ToString() =>
        $"{KernelChoice}{(Fallback != 0 ? $" (fallback: {FallbackReason})" : "")} grid ({GridX}, {GridY}, {GridZ}) " +
        $"block ({BlockX}, {BlockY}, {BlockZ}) smem {SmemDynamic}+{SmemStatic} B{(OptIn != 0 ? " opt-in" : "")}" +
        (Launches > 1 ? $", {Launches} launches of {ItemsPerLaunch} images" : "") +
        (Chunks > 0 ? $", {Chunks} chunks of {PerChunk}" : "") + (TileH > 0 ? $", tile {TileH}x{TileW}" : "") +
        (WorkspaceBytes > 0 ? $", workspace {WorkspaceBytes} B" : "");
}
