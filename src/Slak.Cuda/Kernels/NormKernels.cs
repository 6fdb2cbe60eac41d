// Typed launchers for cuda/kernels/norm.cu (LayerNorm last-dim and channels-first, BatchNorm2d).
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the normalization kernels.</summary>
public static class NormKernels
{
    private const int RowBlock = 128;
    private const int Block = 256;

    /// <summary>LayerNorm over the last dimension c of (rows, c).</summary>
    public static void LayerNorm(IGpuDevice dev, DevicePtr y, DevicePtr mean, DevicePtr rstd, DevicePtr x,
                                 DevicePtr w, DevicePtr b, float eps, int rows, int c)
    {
        var a = new KernelArgs(); a.Add(y); a.Add(mean); a.Add(rstd); a.Add(x); a.Add(w); a.Add(b); a.Add(eps); a.Add(c);
        a.Launch(dev, "layernorm_fwd_kernel", rows, RowBlock);
    }

    /// <summary>Backward of the last-dim LayerNorm: dx, dweight, dbias.</summary>
    public static void LayerNormBackward(IGpuDevice dev, DevicePtr dx, DevicePtr dw, DevicePtr db, DevicePtr x,
                                         DevicePtr w, DevicePtr mean, DevicePtr rstd, DevicePtr dy, int rows, int c)
    {
        ArgumentNullException.ThrowIfNull(dev);
        var a = new KernelArgs(); a.Add(dx); a.Add(x); a.Add(w); a.Add(mean); a.Add(rstd); a.Add(dy); a.Add(c);
        a.Launch(dev, "layernorm_bwd_data_kernel", rows, RowBlock);
        var (perChunk, chunks) = ReduceKernels.ColumnChunks(rows, c);
        var partW = dev.Allocate((long)chunks * c * sizeof(float));
        var partB = dev.Allocate((long)chunks * c * sizeof(float));
        try
        {
            var p = new KernelArgs();
            p.Add(partW); p.Add(partB); p.Add(x); p.Add(mean); p.Add(rstd); p.Add(dy); p.Add((long)rows); p.Add(c); p.Add(perChunk);
            p.Launch(dev, "layernorm_bwd_param_partial_kernel", new Dim3((uint)((c + Block - 1) / Block), (uint)chunks), Block);
            ReduceKernels.Finalize(dev, dw, partW, chunks, c);
            ReduceKernels.Finalize(dev, db, partB, chunks, c);
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
        a.Launch(dev, "layernorm_cf_fwd_kernel", KernelArgs.GridFor(pixels, Block), Block);
    }

    /// <summary>Backward of the channels-first LayerNorm.</summary>
    public static void LayerNormChannelsFirstBackward(IGpuDevice dev, DevicePtr dx, DevicePtr dw, DevicePtr db,
                                                      DevicePtr x, DevicePtr w, DevicePtr mean, DevicePtr rstd,
                                                      DevicePtr dy, int n, int c, int hw)
    {
        long pixels = (long)n * hw;
        var a = new KernelArgs();
        a.Add(dx); a.Add(x); a.Add(w); a.Add(mean); a.Add(rstd); a.Add(dy); a.Add(c); a.Add(hw); a.Add(pixels);
        a.Launch(dev, "layernorm_cf_bwd_data_kernel", KernelArgs.GridFor(pixels, Block), Block);
        var p = new KernelArgs();
        p.Add(dw); p.Add(db); p.Add(x); p.Add(mean); p.Add(rstd); p.Add(dy); p.Add(n); p.Add(c); p.Add(hw);
        p.Launch(dev, "layernorm_cf_bwd_param_kernel", c, Block);
    }

    /// <summary>Training BatchNorm2d forward: batch statistics, running-buffer update, normalization.</summary>
    public static void BatchNormTrain(IGpuDevice dev, DevicePtr y, DevicePtr saveMean, DevicePtr saveInvStd,
                                      DevicePtr runningMean, DevicePtr runningVar, DevicePtr x, DevicePtr w,
                                      DevicePtr b, float momentum, float eps, int n, int c, int hw)
    {
        var s = new KernelArgs();
        s.Add(saveMean); s.Add(saveInvStd); s.Add(runningMean); s.Add(runningVar); s.Add(x); s.Add(momentum); s.Add(eps);
        s.Add(n); s.Add(c); s.Add(hw);
        s.Launch(dev, "batchnorm_stats_kernel", c, Block);
        long total = (long)n * c * hw;
        var a = new KernelArgs();
        a.Add(y); a.Add(x); a.Add(saveMean); a.Add(saveInvStd); a.Add(w); a.Add(b); a.Add(c); a.Add(hw); a.Add(total);
        a.Launch(dev, "batchnorm_apply_kernel", KernelArgs.GridFor(total, Block), Block);
    }

    /// <summary>Evaluation BatchNorm2d with running statistics.</summary>
    public static void BatchNormEval(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr runningMean,
                                     DevicePtr runningVar, DevicePtr w, DevicePtr b, float eps, int n, int c, int hw)
    {
        long total = (long)n * c * hw;
        var a = new KernelArgs();
        a.Add(y); a.Add(x); a.Add(runningMean); a.Add(runningVar); a.Add(w); a.Add(b); a.Add(eps); a.Add(c); a.Add(hw); a.Add(total);
        a.Launch(dev, "batchnorm_eval_kernel", KernelArgs.GridFor(total, Block), Block);
    }

    /// <summary>Training BatchNorm2d backward.</summary>
    public static void BatchNormBackward(IGpuDevice dev, DevicePtr dx, DevicePtr dw, DevicePtr db, DevicePtr x,
                                         DevicePtr w, DevicePtr saveMean, DevicePtr saveInvStd, DevicePtr dy,
                                         int n, int c, int hw)
    {
        var a = new KernelArgs();
        a.Add(dx); a.Add(dw); a.Add(db); a.Add(x); a.Add(w); a.Add(saveMean); a.Add(saveInvStd); a.Add(dy);
        a.Add(n); a.Add(c); a.Add(hw);
        a.Launch(dev, "batchnorm_bwd_kernel", c, Block);
    }
}
