// Typed launcher for cuda/kernels/optim.cu (fused AdamW with the sparse-training mask rules).
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the optimizer kernels.</summary>
internal static class OptimKernels
{
    /// <summary>One AdamW step over n elements (see optim.cu for the mask semantics).</summary>
    public static void AdamW(IGpuDevice dev, DevicePtr param, DevicePtr expAvg, DevicePtr expAvgSq, DevicePtr grad,
                             DevicePtr mask, float lr, float beta1, float beta2, float eps, float weightDecay,
                             long step, bool maskMoments, long n)
    {
        float bc1 = 1f - MathF.Pow(beta1, step), bc2Sqrt = MathF.Sqrt(1f - MathF.Pow(beta2, step));
        var a = new KernelArgs();
        a.Add(param); a.Add(expAvg); a.Add(expAvgSq); a.Add(grad); a.Add(mask);
        a.Add(lr); a.Add(beta1); a.Add(beta2); a.Add(eps); a.Add(weightDecay); a.Add(bc1); a.Add(bc2Sqrt);
        a.Add(maskMoments ? 1 : 0); a.Add(n);
        if (n > 0) a.Launch(dev, "adamw_kernel", LaunchPlans.GridStride(n, DeviceLimits.For(dev)));
    }
}
