// The bf16 instantiation of dwconv_fused_kernel (dwconv_fused.cu compiled with SLAK_DW_BF16=1: dw_store_t is
// slak_bf16): activations (forward input and outputs) and gradients (input-gradient input and output) are 16-bit
// bf16 buffers, weights and masks float32, accumulation float32, stores rounded to nearest even
// (docs/mixed-precision.md). Only the fused kernel has a bf16 instantiation: where the plan falls back to the
// per-branch kernels of dwconv.cu (more than three branches, a tile over the shared-memory budget) these launchers
// launch nothing and return false, and the caller runs the float32 path.
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

internal static partial class DwConvFusedKernels
{
    /// <summary>The definition that selects the bf16 instantiation; first in a bf16 launch's specialisation (the
    /// emulator's libslak_emu.so holds the instance of this definition alone, see EmulatedDevice.GetKernel).</summary>
    internal const string Bf16Define = "SLAK_DW_BF16=1";

    /// <summary>ys[b] (bf16) = depthwise conv of x (bf16, N x C x H x W) with branch b (float32 weight * mask), all
    /// outputs overwritten; false (nothing launched) where the plan does not take the fused kernel.</summary>
    public static bool TryForwardBf16(IGpuDevice dev, ReadOnlySpan<DevicePtr> ys, DevicePtr x,
                                      ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        Check(ys.Length, branches.Length, nameof(ys));
        CheckShape(branches, n, c, h, w);
        var plan = Plan(dev, branches, n, c, h, w);
        if (plan.KernelChoice == PlanKernel.None) return true;
        if (plan.KernelChoice is PlanKernel.PerBranch or PlanKernel.DwConvSmall || PerBranchOnly) return false; // no bf16 instance of those
        Span<DevicePtr> ins = [x, x, x];
        Launch(dev, ys, ins, branches, n, c, h, w, flip: false, sum: false, plan, bf16: true);
        return true;
    }

    /// <summary>y (bf16) = sum over branches of the depthwise conv of x (bf16) with branch b (inference); false
    /// (nothing launched) where the plan does not take the fused kernel.</summary>
    public static bool TryForwardSumBf16(IGpuDevice dev, DevicePtr y, DevicePtr x, ReadOnlySpan<DwConvFusedBranch> branches,
                                         int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        Check(branches.Length, branches.Length, nameof(branches));
        CheckShape(branches, n, c, h, w);
        var plan = Plan(dev, branches, n, c, h, w);
        if (plan.KernelChoice == PlanKernel.None) return true;
        if (plan.KernelChoice is PlanKernel.PerBranch or PlanKernel.DwConvSmall || PerBranchOnly) return false; // no bf16 instance of those
        Span<DevicePtr> outs = [y, DevicePtr.Null, DevicePtr.Null];
        Span<DevicePtr> ins = [x, x, x];
        Launch(dev, outs, ins, branches, n, c, h, w, flip: false, sum: true, plan, bf16: true);
        return true;
    }

    /// <summary>dx (bf16) = sum over branches of the input gradient of branch b given dys[b] (bf16); false (nothing
    /// launched) where the plan does not take the fused kernel.</summary>
    public static bool TryBackwardDataBf16(IGpuDevice dev, DevicePtr dx, ReadOnlySpan<DevicePtr> dys,
                                           ReadOnlySpan<DwConvFusedBranch> branches, int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        Check(dys.Length, branches.Length, nameof(dys));
        CheckShape(branches, n, c, h, w);
        var plan = Plan(dev, branches, n, c, h, w);
        if (plan.KernelChoice == PlanKernel.None) return true;
        if (plan.KernelChoice is PlanKernel.PerBranch or PlanKernel.DwConvSmall || PerBranchOnly) return false; // no bf16 instance of those
        Span<DevicePtr> outs = [dx, DevicePtr.Null, DevicePtr.Null];
        Launch(dev, outs, dys, branches, n, c, h, w, flip: true, sum: true, plan, bf16: true);
        return true;
    }

    /// <summary>The fused weight-gradient kernel (both instances: float32, and SLAK_DW_BF16=1 with a bf16 x).</summary>
    internal const string WgradKernel = "dwconv_fused_wgrad_kernel";

    /// <summary>Whether <see cref="TryBackwardFilterBf16"/> launches for this shape: where the plan takes the fused
    /// weight gradient, through the SLAK_DW_BF16=1 instance of dwconv_small_wgrad.cu where the float32 path takes the
    /// small-map kernel, else through that of dwconv_fused_wgrad_kernel (both read x as bf16 and dy as float32:
    /// gradients stay float32); false where the per-branch kernels of dwconv.cu run (no bf16 instance).</summary>
    public static bool BackwardFilterBf16Applies(IGpuDevice dev, ReadOnlySpan<DwConvFusedBranch> branches,
                                                 int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        CheckShape(branches, n, c, h, w);
        if (PerBranchOnly || WeightGradPlan(dev, branches, n, c, h, w).KernelChoice != PlanKernel.DwConvFusedWgrad)
            return false;
        return !SmallWgradApplies(dev, branches, n, h, w) || SmallWgradBf16Available(dev, branches, h, w);
    }

    /// <summary>dws[b] (float32) = weight gradient of branch b given x (a 16-bit bf16 block, read directly and widened
    /// exactly on load) and dys[b] (float32), float32 accumulation, pruned taps exactly 0: the same kernel as the
    /// float32 path for the shape (small-map or fused weight gradient), in its bf16-x instance, so the result equals
    /// the float32 path on x's widened values bit for bit; false (nothing launched) where
    /// <see cref="BackwardFilterBf16Applies"/> is false.</summary>
    public static bool TryBackwardFilterBf16(IGpuDevice dev, ReadOnlySpan<DevicePtr> dws, DevicePtr xBf16,
                                             ReadOnlySpan<DevicePtr> dys, ReadOnlySpan<DwConvFusedBranch> branches,
                                             int n, int c, int h, int w)
    {
        Check(dws.Length, branches.Length, nameof(dws));
        Check(dys.Length, branches.Length, nameof(dys));
        if (!BackwardFilterBf16Applies(dev, branches, n, c, h, w)) return false;
        if (SmallWgradApplies(dev, branches, n, h, w))
            DwConvSmallWgradKernels.BackwardFilterBf16(dev, dws, xBf16, dys, branches, n, c, h, w); // stages 3-4
        else
            LaunchWeightGrad(dev, dws, xBf16, dys, branches, n, c, h, w, WeightGradPlan(dev, branches, n, c, h, w),
                             bf16: true);
        return true;
    }

    // Whether the float32 path takes the small-map weight gradient for this shape (its instance for the shape exists).
    private static bool SmallWgradApplies(IGpuDevice dev, ReadOnlySpan<DwConvFusedBranch> branches, int n, int h, int w) =>
        !SmallWgradOff && SmallWgrad(dev, branches, n, h, w);

    private static bool SmallWgradBf16Available(IGpuDevice dev, ReadOnlySpan<DwConvFusedBranch> branches, int h, int w)
    {
        Span<(int Kh, int Kw)> k = stackalloc (int, int)[branches.Length];
        for (int b = 0; b < branches.Length; b++) k[b] = (branches[b].Kh, branches[b].Kw);
        return DwConvSmallWgradKernels.AvailableBf16(dev, h, w, k);
    }

    /// <summary>The NVRTC definitions of the bf16 instantiation for these branches: <see cref="Bf16Define"/>, then
    /// <see cref="Specialization"/>'s.</summary>
    internal static IReadOnlyList<string> Bf16Specialization(ReadOnlySpan<DwConvFusedBranch> br) =>
        [Bf16Define, .. Specialization(br)];
}
