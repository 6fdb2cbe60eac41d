// Typed launchers for cuda/kernels/activation.cu (GELU, layer scale, per-sample scale, bias add).
using System.Diagnostics;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the activation kernels (float32, grid-stride loops).</summary>
internal static class ActivationKernels
{
    private static void Run(IGpuDevice dev, string kernel, long n, ref KernelArgs args)
    {
        args.Add(n);
        if (n > 0) args.Launch(dev, kernel, LaunchPlans.GridStride(n, DeviceLimits.For(dev)));
    }

    /// <summary>y = GELU(x), exact form.</summary>
    public static void Gelu(IGpuDevice dev, DevicePtr y, DevicePtr x, long n)
    {
        var a = new KernelArgs(); a.Add(y); a.Add(x);
        Run(dev, "gelu_fwd_kernel", n, ref a);
    }

    /// <summary>dx = dy * GELU'(x).</summary>
    public static void GeluBackward(IGpuDevice dev, DevicePtr dx, DevicePtr x, DevicePtr dy, long n)
    {
        var a = new KernelArgs(); a.Add(dx); a.Add(x); a.Add(dy);
        Run(dev, "gelu_bwd_kernel", n, ref a);
    }

    /// <summary>y[i] = x[i] * gamma[i % c].</summary>
    public static void MulLastDim(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr gamma, int c, long n)
    {
        var a = new KernelArgs(); a.Add(y); a.Add(x); a.Add(gamma); a.Add(c);
        Run(dev, "mul_last_dim_kernel", n, ref a);
    }

    /// <summary>y[i] = x[i] * scale[i / row].</summary>
    public static void MulRows(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr scale, long row, long n)
    {
        var a = new KernelArgs(); a.Add(y); a.Add(x); a.Add(scale); a.Add(row);
        Run(dev, "mul_rows_kernel", n, ref a);
    }

    /// <summary>y[i] += bias[(i / inner) % c] (inner 1: along the last dimension; H * W: along the channels of
    /// NCHW).</summary>
    public static void AddBias(IGpuDevice dev, DevicePtr y, DevicePtr bias, int c, long inner, long n)
    {
        Debug.Assert(inner >= 1 || n == 0, $"inner must be >= 1, got {inner}"); // the backend passes max(1, H*W)
        var a = new KernelArgs(); a.Add(y); a.Add(bias); a.Add(c); a.Add(inner);
        Run(dev, "add_bias_kernel", n, ref a);
    }
}
