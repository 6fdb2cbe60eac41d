// Typed launchers for cuda/kernels/norm.cu (LayerNorm last-dim and channels-first, BatchNorm2d). Grids: slak_plan.h
// (one block per row or channel, grid-stride loops, column-sum chunks).
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the normalization kernels.</summary>
internal static class NormKernels
{
    /// <summary>LayerNorm over the last dimension c of (rows, c).</summary>
    public static void LayerNorm(IGpuDevice dev, DevicePtr y, DevicePtr mean, DevicePtr rstd, DevicePtr x,
                                 DevicePtr w, DevicePtr b, float eps, int rows, int c)
    {
        var a = new KernelArgs(); a.Add(y); a.Add(mean); a.Add(rstd); a.Add(x); a.Add(w); a.Add(b); a.Add(eps); a.Add(c);
        a.Launch(dev, "layernorm_fwd_kernel", LaunchPlans.Rows(rows, LaunchPlans.RowBlock, DeviceLimits.For(dev)));
    }

    /// <summary>Backward of the last-dim LayerNorm: dx, dweight, dbias.</summary>
    public static void LayerNormBackward(IGpuDevice dev, DevicePtr dx, DevicePtr dw, DevicePtr db, DevicePtr x,
                                         DevicePtr w, DevicePtr mean, DevicePtr rstd, DevicePtr dy, int rows, int c)
    {
        var a = new KernelArgs(); a.Add(dx); a.Add(x); a.Add(w); a.Add(mean); a.Add(rstd); a.Add(dy); a.Add(c);
        var limits = DeviceLimits.For(dev);
        a.Launch(dev, "layernorm_bwd_data_kernel", LaunchPlans.Rows(rows, LaunchPlans.RowBlock, limits));
        var plan = LaunchPlans.ColumnSum(rows, c, limits);
        if (plan.KernelChoice == PlanKernel.None)
        {
            ElementwiseKernels.Fill(dev, dw, 0f, c);
            ElementwiseKernels.Fill(dev, db, 0f, c);
            return;
        }
        var partW = dev.Allocate(plan.WorkspaceBytes);
        var partB = dev.Allocate(plan.WorkspaceBytes);
        try
        {
            var p = new KernelArgs();
            p.Add(partW); p.Add(partB); p.Add(x); p.Add(mean); p.Add(rstd); p.Add(dy); p.Add((long)rows); p.Add(c);
            p.Add((long)plan.PerChunk);
            p.Launch(dev, "layernorm_bwd_param_partial_kernel", plan);
            ReduceKernels.Finalize(dev, dw, partW, plan.Chunks, c);
            ReduceKernels.Finalize(dev, db, partB, plan.Chunks, c);
        }
        finally
        {
            dev.Free(partW);
            dev.Free(partB);
        }
    }

    /// <summary>LayerNorm over the channels of (n, c, hw), per pixel.</summary>
    public static void LayerNormChannelsFirst(IGpuDevice dev, DevicePtr y, DevicePtr mean, DevicePtr rstd, DevicePtr x,
                                              DevicePtr w, DevicePtr b, float eps, int n, int c, int hw)
    {
        long pixels = (long)n * hw;
        var a = new KernelArgs();
        a.Add(y); a.Add(mean); a.Add(rstd); a.Add(x); a.Add(w); a.Add(b); a.Add(eps); a.Add(c); a.Add(hw); a.Add(pixels);
        a.Launch(dev, "layernorm_cf_fwd_kernel", LaunchPlans.GridStride(pixels, DeviceLimits.For(dev)));
    }

    /// <summary>Backward of the channels-first LayerNorm.</summary>
    public static void LayerNormChannelsFirstBackward(IGpuDevice dev, DevicePtr dx, DevicePtr dw, DevicePtr db,
                                                      DevicePtr x, DevicePtr w, DevicePtr mean, DevicePtr rstd,
                                                      DevicePtr dy, int n, int c, int hw)
    {
        long pixels = (long)n * hw;
        var limits = DeviceLimits.For(dev);
        var a = new KernelArgs();
        a.Add(dx); a.Add(x); a.Add(w); a.Add(mean); a.Add(rstd); a.Add(dy); a.Add(c); a.Add(hw); a.Add(pixels);
        a.Launch(dev, "layernorm_cf_bwd_data_kernel", LaunchPlans.GridStride(pixels, limits));
        var p = new KernelArgs();
        p.Add(dw); p.Add(db); p.Add(x); p.Add(mean); p.Add(rstd); p.Add(dy); p.Add(n); p.Add(c); p.Add(hw);
        p.Launch(dev, "layernorm_cf_bwd_param_kernel", LaunchPlans.Rows(c, LaunchPlans.Block, limits));
    }

    /// <summary>Training BatchNorm2d forward: batch statistics, running-buffer update, normalization.</summary>
    public static void BatchNormTrain(IGpuDevice dev, DevicePtr y, DevicePtr saveMean, DevicePtr saveInvStd,
                                      DevicePtr runningMean, DevicePtr runningVar, DevicePtr x, DevicePtr w,
                                      DevicePtr b, float momentum, float eps, int n, int c, int hw)
    {
        var limits = DeviceLimits.For(dev);
        var s = new KernelArgs();
        s.Add(saveMean); s.Add(saveInvStd); s.Add(runningMean); s.Add(runningVar); s.Add(x); s.Add(momentum); s.Add(eps);
        s.Add(n); s.Add(c); s.Add(hw);
        s.Launch(dev, "batchnorm_stats_kernel", LaunchPlans.Rows(c, LaunchPlans.Block, limits));
        long total = (long)n * c * hw;
        var a = new KernelArgs();
        a.Add(y); a.Add(x); a.Add(saveMean); a.Add(saveInvStd); a.Add(w); a.Add(b); a.Add(c); a.Add(hw); a.Add(total);
        a.Launch(dev, "batchnorm_apply_kernel", LaunchPlans.GridStride(total, limits));
    }

    /// <summary>Evaluation BatchNorm2d with running statistics.</summary>
    public static void BatchNormEval(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr runningMean,
                                     DevicePtr runningVar, DevicePtr w, DevicePtr b, float eps, int n, int c, int hw)
    {
        long total = (long)n * c * hw;
        var a = new KernelArgs();
        a.Add(y); a.Add(x); a.Add(runningMean); a.Add(runningVar); a.Add(w); a.Add(b); a.Add(eps); a.Add(c); a.Add(hw); a.Add(total);
        a.Launch(dev, "batchnorm_eval_kernel", LaunchPlans.GridStride(total, DeviceLimits.For(dev)));
    }

    /// <summary>Training BatchNorm2d backward.</summary>
    public static void BatchNormBackward(IGpuDevice dev, DevicePtr dx, DevicePtr dw, DevicePtr db, DevicePtr x,
                                         DevicePtr w, DevicePtr saveMean, DevicePtr saveInvStd, DevicePtr dy,
                                         int n, int c, int hw)
    {
        var a = new KernelArgs();
        a.Add(dx); a.Add(dw); a.Add(db); a.Add(x); a.Add(w); a.Add(saveMean); a.Add(saveInvStd); a.Add(dy);
        a.Add(n); a.Add(c); a.Add(hw);
        a.Launch(dev, "batchnorm_bwd_kernel", LaunchPlans.Rows(c, LaunchPlans.Block, DeviceLimits.For(dev)));
    }
}
