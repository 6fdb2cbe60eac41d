// Typed launchers for cuda/kernels/norm.cu (LayerNorm last-dim and channels-first, BatchNorm2d). Grids: slak_plan.h
// (one block per row or channel, grid-stride loops, column-sum chunks); BatchNorm: one block per (channel, chunk of
// BatchNormChunk elements) for the float64 partial sums, one thread per channel for their fixed-order sum, one block
// per BatchNormElementChunk elements for the element passes.
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

    /// <summary>Elements of one channel per BatchNorm statistics block (<c>kBnChunk</c> in norm.cu).</summary>
    internal const int BatchNormChunk = 8192;

    /// <summary>Elements per BatchNorm element-pass block (<c>kBnElemChunk</c> in norm.cu).</summary>
    internal const int BatchNormElementChunk = 8192;

    /// <summary>Statistics blocks per channel: fixed by the shape (never by the device), so results are too.</summary>
    internal static int BatchNormChunks(int n, int hw)
    {
        long chunks = ((long)n * hw + BatchNormChunk - 1) / BatchNormChunk;
        return (int)Math.Max(1, chunks);
    }

    /// <summary>Blocks of a BatchNorm element pass over <paramref name="total"/> elements.</summary>
    internal static long BatchNormElementBlocks(long total) => (total + BatchNormElementChunk - 1) / BatchNormElementChunk;

    /// <summary>Workspace bytes of a BatchNorm pass: float64 partial pairs plus four coefficients per channel.</summary>
    internal static long BatchNormWorkspaceBytes(int n, int c, int hw) => 16L * c * BatchNormChunks(n, hw) + 16L * c;

    /// <summary>Training BatchNorm2d forward: batch statistics, running-buffer update, normalization.</summary>
    public static void BatchNormTrain(IGpuDevice dev, DevicePtr y, DevicePtr saveMean, DevicePtr saveInvStd,
                                      DevicePtr runningMean, DevicePtr runningVar, DevicePtr x, DevicePtr w,
                                      DevicePtr b, float momentum, float eps, int n, int c, int hw)
    {
        var limits = DeviceLimits.For(dev);
        int chunks = BatchNormChunks(n, hw);
        long count = (long)n * hw;
        var part = dev.Allocate(16L * c * chunks);
        var coef = dev.Allocate(16L * c);
        try
        {
            var p = new KernelArgs();
            p.Add(part); p.Add(x); p.Add(c); p.Add(hw); p.Add(count); p.Add(chunks);
            p.Launch(dev, "batchnorm_stats_partial_kernel", LaunchPlans.Rows((long)c * chunks, LaunchPlans.Block, limits));
            var f = new KernelArgs();
            f.Add(saveMean); f.Add(saveInvStd); f.Add(runningMean); f.Add(runningVar); f.Add(coef); f.Add(part); f.Add(w);
            f.Add(b); f.Add(chunks); f.Add(count); f.Add(momentum); f.Add(eps); f.Add(c);
            f.Launch(dev, "batchnorm_stats_finalize_kernel", LaunchPlans.GridStride(c, limits));
            Affine(dev, y, x, coef, n, c, hw, limits);
        }
        finally
        {
            dev.Free(part);
            dev.Free(coef);
        }
    }

    /// <summary>Evaluation BatchNorm2d with running statistics.</summary>
    public static void BatchNormEval(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr runningMean,
                                     DevicePtr runningVar, DevicePtr w, DevicePtr b, float eps, int n, int c, int hw)
    {
        var limits = DeviceLimits.For(dev);
        var coef = dev.Allocate(16L * c);
        try
        {
            var k = new KernelArgs();
            k.Add(coef); k.Add(runningMean); k.Add(runningVar); k.Add(w); k.Add(b); k.Add(eps); k.Add(c);
            k.Launch(dev, "batchnorm_eval_coef_kernel", LaunchPlans.GridStride(c, limits));
            Affine(dev, y, x, coef, n, c, hw, limits);
        }
        finally
        {
            dev.Free(coef);
        }
    }

    /// <summary>Training BatchNorm2d backward.</summary>
    public static void BatchNormBackward(IGpuDevice dev, DevicePtr dx, DevicePtr dw, DevicePtr db, DevicePtr x,
                                         DevicePtr w, DevicePtr saveMean, DevicePtr saveInvStd, DevicePtr dy,
                                         int n, int c, int hw)
    {
        var limits = DeviceLimits.For(dev);
        int chunks = BatchNormChunks(n, hw);
        long count = (long)n * hw;
        var part = dev.Allocate(16L * c * chunks);
        var coef = dev.Allocate(16L * c);
        try
        {
            var p = new KernelArgs();
            p.Add(part); p.Add(x); p.Add(dy); p.Add(c); p.Add(hw); p.Add(count); p.Add(chunks);
            p.Launch(dev, "batchnorm_bwd_partial_kernel", LaunchPlans.Rows((long)c * chunks, LaunchPlans.Block, limits));
            var f = new KernelArgs();
            f.Add(dw); f.Add(db); f.Add(coef); f.Add(part); f.Add(w); f.Add(saveMean); f.Add(saveInvStd); f.Add(chunks);
            f.Add(count); f.Add(c);
            f.Launch(dev, "batchnorm_bwd_finalize_kernel", LaunchPlans.GridStride(c, limits));
            long total = (long)n * c * hw;
            var a = new KernelArgs();
            a.Add(dx); a.Add(x); a.Add(dy); a.Add(coef); a.Add(c); a.Add(hw); a.Add(total);
            a.Launch(dev, "batchnorm_bwd_dx_kernel", LaunchPlans.Rows(BatchNormElementBlocks(total), LaunchPlans.Block, limits));
        }
        finally
        {
            dev.Free(part);
            dev.Free(coef);
        }
    }

    private static void Affine(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr coef, int n, int c, int hw,
                               DeviceLimits limits)
    {
        long total = (long)n * c * hw;
        var a = new KernelArgs();
        a.Add(y); a.Add(x); a.Add(coef); a.Add(c); a.Add(hw); a.Add(total);
        a.Launch(dev, "batchnorm_affine_kernel", LaunchPlans.Rows(BatchNormElementBlocks(total), LaunchPlans.Block, limits));
    }
}
