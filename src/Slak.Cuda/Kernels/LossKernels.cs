// Typed launchers for cuda/kernels/loss.cu (softmax cross-entropy with soft targets).
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the loss kernels.</summary>
internal static class LossKernels
{

    /// <summary>probs = softmax(logits); loss[0] = mean over rows of the soft-target cross-entropy.</summary>
    public static void SoftmaxCrossEntropy(IGpuDevice dev, DevicePtr probs, DevicePtr loss, DevicePtr logits,
                                           DevicePtr targets, int rows, int k)
    {
        var rowLoss = dev.Allocate((long)(rows + 1) * sizeof(float));
        var total = rowLoss.Offset((long)rows * sizeof(float));
        try
        {
            var a = new KernelArgs(); a.Add(probs); a.Add(rowLoss); a.Add(logits); a.Add(targets); a.Add(k);
            a.Launch(dev, "softmax_xent_fwd_kernel", LaunchPlans.Rows(rows, LaunchPlans.RowBlock, DeviceLimits.For(dev)));
            ReduceKernels.Sum(dev, total, rowLoss, rows, squares: false);
            ElementwiseKernels.FillFromScalar(dev, loss, total, 1f / rows, 1);
        }
        finally { dev.Free(rowLoss); }
    }

    /// <summary>dlogits = gradLoss[0] / rows * (probs * sum(targets) - targets).</summary>
    public static void SoftmaxCrossEntropyBackward(IGpuDevice dev, DevicePtr dlogits, DevicePtr probs,
                                                   DevicePtr targets, DevicePtr gradLoss, int rows, int k)
    {
        var a = new KernelArgs(); a.Add(dlogits); a.Add(probs); a.Add(targets); a.Add(gradLoss); a.Add(rows); a.Add(k);
        a.Launch(dev, "softmax_xent_bwd_kernel", LaunchPlans.Rows(rows, LaunchPlans.RowBlock, DeviceLimits.For(dev)));
    }
}
