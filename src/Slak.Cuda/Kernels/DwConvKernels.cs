// Typed launchers for cuda/kernels/dwconv.cu: depthwise "same" convolution (forward, input gradient via the
// flipped filter, weight gradient with per-chunk partials reduced deterministically). The launch plans of
// slak_plan.h choose the kernel (tiled when its tile fits the shared-memory budget, direct otherwise), split the
// tiled forward into launches of whole images so that grid.z (planes n*C + c) stays within 65535, and size the
// weight gradient's tiles, chunks and partials. Called only by DwConvFusedKernels: these are the per-branch kernels
// the depthwise family falls back to (more than three branches, a tile over the shared-memory budget), not a second
// family.
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the per-branch depthwise convolution kernels (the fallback of
/// <see cref="DwConvFusedKernels"/>).</summary>
internal static class DwConvKernels
{
    /// <summary>y = depthwise conv of x with w*mask (mask may be null); flip = true gives the input gradient
    /// (pass dy as x and dx as y).</summary>
    public static void Forward(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr w, DevicePtr mask,
                               int n, int c, int h, int wd, int kh, int kw, bool flip = false)
    {
        ArgumentNullException.ThrowIfNull(dev);
        var plan = LaunchPlans.DwConvForward(n, c, h, wd, kh, kw, DeviceLimits.For(dev));
        switch (plan.KernelChoice)
        {
            case PlanKernel.None:
                return;
            case PlanKernel.DwConvFwdTiled:
                // One launch per group of ItemsPerLaunch images: x and y advance by the images before it.
                long imageBytes = (long)c * h * wd * sizeof(float);
                for (long i0 = 0; i0 < n; i0 += plan.ItemsPerLaunch)
                {
                    int count = (int)Math.Min(plan.ItemsPerLaunch, n - i0);
                    var a = new KernelArgs();
                    a.Add(y.Offset(i0 * imageBytes)); a.Add(x.Offset(i0 * imageBytes)); a.Add(w); a.Add(mask);
                    a.Add(new DwConvParams(count, c, h, wd, kh, kw, flip ? 1 : 0));
                    a.Launch(dev, "dwconv_fwd_tiled_kernel", new Dim3(plan.GridX, plan.GridY, (uint)((long)count * c)),
                             plan.Block, plan.SmemDynamic);
                }
                return;
            default:
                var d = new KernelArgs(); d.Add(y); d.Add(x); d.Add(w); d.Add(mask);
                d.Add(new DwConvParams(n, c, h, wd, kh, kw, flip ? 1 : 0));
                d.Launch(dev, "dwconv_fwd_direct_kernel", plan);
                return;
        }
    }

    /// <summary>dw = weight gradient (masked taps written as 0 when <paramref name="skipMasked"/>).</summary>
    public static void BackwardFilter(IGpuDevice dev, DevicePtr dw, DevicePtr x, DevicePtr dy, DevicePtr mask,
                                      int n, int c, int h, int wd, int kh, int kw, bool skipMasked)
    {
        ArgumentNullException.ThrowIfNull(dev);
        int taps = kh * kw;
        var plan = LaunchPlans.DwConvWeightGrad(n, c, h, wd, kh, kw, DeviceLimits.For(dev));
        if (plan.KernelChoice == PlanKernel.None)
        {
            if (c > 0) ElementwiseKernels.Fill(dev, dw, 0f, (long)c * taps); // no image: the gradient is zero
            return;
        }
        var partials = dev.Allocate(plan.WorkspaceBytes);
        try
        {
            var a = new KernelArgs(); a.Add(partials); a.Add(x); a.Add(dy); a.Add(mask);
            a.Add(new DwWgradParams(n, c, h, wd, kh, kw, plan.PerChunk, plan.TileH, plan.TileW, skipMasked ? 1 : 0));
            a.Launch(dev, plan.KernelChoice == PlanKernel.DwConvWgradTiled
                         ? "dwconv_wgrad_tiled_kernel" : "dwconv_wgrad_direct_kernel", plan);
            ReduceKernels.Finalize(dev, dw, partials, plan.Chunks, c * taps);
        }
        finally { dev.Free(partials); }
    }
}
