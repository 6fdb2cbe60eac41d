// Typed launchers for cuda/kernels/conv2d.cu (dense stem / downsampling convolutions). Grids: slak_plan.h.
// Kernel == stride without padding (SLaK's stem and downsampling layers) goes to the patchify path instead
// (Conv2dPatchifyKernels: conv2d_patchify.cu + GEMMs); the bias gradient is conv2d_bwd_bias_kernel's on both
// paths.
using System.Runtime.InteropServices;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Geometry of a dense conv; mirror of <c>Conv2dParams</c> in slak/slak_params.h.</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct Conv2dParams(int N, int Cin, int H, int W, int Cout, int Kh, int Kw, int StrideH,
                                           int StrideW, int PadH, int PadW, int OutH, int OutW);

/// <summary>Launchers of the dense convolution kernels.</summary>
internal static class Conv2dKernels
{
    /// <summary>The launch of the forward kernel: a grid-stride loop over the outputs.</summary>
    public static LaunchPlan ForwardPlan(IGpuDevice dev, Conv2dParams p) =>
        Conv2dPatchifyKernels.Applies(p) ? Conv2dPatchifyKernels.Plan(DeviceLimits.For(dev), p, Conv2dPatchifyKernels.Pass.Forward)
                                   : LaunchPlans.GridStride((long)p.N * p.Cout * p.OutH * p.OutW, DeviceLimits.For(dev));

    /// <summary>y = conv(x, w) + bias (bias may be null).</summary>
    public static void Forward(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr w, DevicePtr bias, Conv2dParams p)
    {
        if (Conv2dPatchifyKernels.Applies(p)) { Conv2dPatchifyKernels.Forward(dev, y, x, w, bias, p); return; }
        var a = new KernelArgs(); a.Add(y); a.Add(x); a.Add(w); a.Add(bias); a.Add(p);
        a.Launch(dev, "conv2d_fwd_kernel", ForwardPlan(dev, p));
    }

    /// <summary>dx of the dense conv.</summary>
    public static void BackwardData(IGpuDevice dev, DevicePtr dx, DevicePtr dy, DevicePtr w, Conv2dParams p)
    {
        if (Conv2dPatchifyKernels.Applies(p)) { Conv2dPatchifyKernels.BackwardData(dev, dx, dy, w, p); return; }
        long total = (long)p.N * p.Cin * p.H * p.W;
        var a = new KernelArgs(); a.Add(dx); a.Add(dy); a.Add(w); a.Add(p);
        a.Launch(dev, "conv2d_bwd_data_kernel", LaunchPlans.GridStride(total, DeviceLimits.For(dev)));
    }

    /// <summary>dw (and dbias when not null) of the dense conv. bf16: the patchify path's GEMM with bf16 operands
    /// (the caller checked <see cref="Conv2dPatchifyKernels.Applies"/>; the bias gradient reads dy as it is).</summary>
    public static void BackwardFilter(IGpuDevice dev, DevicePtr dw, DevicePtr dbias, DevicePtr x, DevicePtr dy,
                                      Conv2dParams p, bool bf16 = false)
    {
        var limits = DeviceLimits.For(dev);
        if (Conv2dPatchifyKernels.Applies(p))
        {
            Conv2dPatchifyKernels.BackwardFilter(dev, dw, x, dy, p, bf16);
        }
        else
        {
            long total = (long)p.Cout * p.Cin * p.Kh * p.Kw;
            var a = new KernelArgs(); a.Add(dw); a.Add(x); a.Add(dy); a.Add(p);
            a.Launch(dev, "conv2d_bwd_filter_kernel", LaunchPlans.GridStride(total, limits));
        }
        if (dbias.IsNull) return;
        var b = new KernelArgs(); b.Add(dbias); b.Add(dy); b.Add(p.N); b.Add(p.Cout); b.Add(p.OutH * p.OutW);
        b.Launch(dev, "conv2d_bwd_bias_kernel", LaunchPlans.Rows(p.Cout, LaunchPlans.Block, limits));
    }
}
