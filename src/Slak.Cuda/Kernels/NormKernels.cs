// Typed launchers for cuda/kernels/norm.cu (LayerNorm last-dim and channels-first, BatchNorm2d). LayerNorm over rows
// of at most 1,024: one warp per row (forward) or per chunk of rows (backward, dx plus per-chunk parameter partials),
// then a per-column finalize in chunk order; wider rows: one block per row and column-sum chunks (slak_plan.h).
// Channels-first: one thread per pixel (grid-stride), parameter partials per (image, 1,024-pixel chunk); BatchNorm: one
// block per (channel, chunk of BatchNormChunk elements) for the float64 partial sums, one thread per channel for their
// fixed-order sum, one block per BatchNormElementChunk elements for the element passes.
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the normalization kernels.</summary>
internal static class NormKernels
{
    /// <summary>Widest row of the warp-per-row LayerNorm kernels (<c>kLnMaxCols</c> in norm.cu); wider rows take the
    /// block-per-row kernels.</summary>
    internal const int LayerNormMaxWarpColumns = 1024;

    /// <summary>The row class of the warp-per-row kernels for width <paramref name="c"/> (at most
    /// <see cref="LayerNormMaxWarpColumns"/>): 128, 256, 512 or 1024 (<c>layernorm_rows{W}_*_kernel</c>).</summary>
    internal static int LayerNormRowClass(int c) => c <= 128 ? 128 : c <= 256 ? 256 : c <= 512 ? 512 : 1024;

    private static string RowsForwardKernel(int c) => LayerNormRowClass(c) switch
    {
        128 => "layernorm_rows128_fwd_kernel",
        256 => "layernorm_rows256_fwd_kernel",
        512 => "layernorm_rows512_fwd_kernel",
        _ => "layernorm_rows1024_fwd_kernel",
    };

    private static string RowsBackwardKernel(int c) => LayerNormRowClass(c) switch
    {
        128 => "layernorm_rows128_bwd_kernel",
        256 => "layernorm_rows256_bwd_kernel",
        512 => "layernorm_rows512_bwd_kernel",
        _ => "layernorm_rows1024_bwd_kernel",
    };

    /// <summary>Rows (forward) or row chunks (backward) per block of the warp-per-row kernels
    /// (<c>kLnWarps</c>).</summary>
    internal const int LayerNormWarpsPerBlock = 8;

    /// <summary>Pixels per block of <c>layernorm_cf_bwd_param_partial_kernel</c> (<c>kLnCfChunk</c> in
    /// norm.cu).</summary>
    internal const int LayerNormChannelsFirstChunk = 1024;

    /// <summary>Rows per chunk of the fused LayerNorm backward: about 2,048 chunks, 4 to 64 rows each (more chunks
    /// mean more partials for the finalize: kernel-model's norm section was better at every stage with 2,048 than
    /// with 8,192). Fixed by the shape (never by the device), so the parameter gradients' summation order
    /// is too.</summary>
    internal static int LayerNormRowsPerChunk(long rows) => (int)Math.Clamp((rows + 2047) / 2048, 4, 64);

    /// <summary>Whether the rows of (rows, c) at these pointers can take 128-bit accesses.</summary>
    private static bool Vectorizable(int c, params DevicePtr[] ptrs) =>
        c % 4 == 0 && Array.TrueForAll(ptrs, p => p.Address % 16 == 0);

    /// <summary>The launch of the warp-per-row forward of (rows, c), c at most <see cref="LayerNormMaxWarpColumns"/>:
    /// its row-class kernel and plan (one warp per row, <see cref="LayerNormWarpsPerBlock"/> rows per block).</summary>
    internal static (string Kernel, LaunchPlan Plan) RowsForwardLaunch(long rows, int c, DeviceLimits limits) =>
        (RowsForwardKernel(c), LaunchPlans.Rows(WarpBlocks(rows), 32 * LayerNormWarpsPerBlock, limits));

    /// <summary>The launch of the warp-per-row backward of (rows, c): its row-class kernel, plan, rows per chunk and
    /// chunk count (one warp per chunk; the partials hold chunks x c floats each).</summary>
    internal static (string Kernel, LaunchPlan Plan, int PerChunk, int Chunks) RowsBackwardLaunch(long rows, int c,
                                                                                                DeviceLimits limits)
    {
        int perChunk = LayerNormRowsPerChunk(rows);
        int chunks = (int)((rows + perChunk - 1) / perChunk);
        return (RowsBackwardKernel(c), LaunchPlans.Rows(WarpBlocks(chunks), 32 * LayerNormWarpsPerBlock, limits), perChunk,
                chunks);
    }

    /// <summary>The plan of <c>layernorm_param_finalize_kernel</c> over c columns (one warp per column).</summary>
    internal static LaunchPlan FinalizePlan(int c, DeviceLimits limits) =>
        LaunchPlans.Rows(WarpBlocks(c), 32 * LayerNormWarpsPerBlock, limits);

    /// <summary>The launch of <c>layernorm_cf_bwd_param_partial_kernel</c> for (n, c, hw): its plan, pixel chunks per
    /// image and chunk count (one block per (image, <see cref="LayerNormChannelsFirstChunk"/>-pixel chunk)).</summary>
    internal static (LaunchPlan Plan, int PixelChunks, int Chunks) ChannelsFirstParamLaunch(int n, int hw,
                                                                                           DeviceLimits limits)
    {
        int pixelChunks = (hw + LayerNormChannelsFirstChunk - 1) / LayerNormChannelsFirstChunk;
        int chunks = n * pixelChunks;
        return (LaunchPlans.Rows(chunks, 32 * LayerNormWarpsPerBlock, limits), pixelChunks, chunks);
    }

    /// <summary>Blocks of <see cref="LayerNormWarpsPerBlock"/> warps for one warp per item.</summary>
    private static long WarpBlocks(long items) => (items + LayerNormWarpsPerBlock - 1) / LayerNormWarpsPerBlock;

    /// <summary>LayerNorm over the last dimension c of (rows, c).</summary>
    public static void LayerNorm(IGpuDevice dev, DevicePtr y, DevicePtr mean, DevicePtr rstd, DevicePtr x,
                                 DevicePtr w, DevicePtr b, float eps, int rows, int c)
    {
        var limits = DeviceLimits.For(dev);
        if (c > LayerNormMaxWarpColumns)
        {
            var a = new KernelArgs(); a.Add(y); a.Add(mean); a.Add(rstd); a.Add(x); a.Add(w); a.Add(b); a.Add(eps); a.Add(c);
            a.Launch(dev, "layernorm_fwd_kernel", LaunchPlans.Rows(rows, LaunchPlans.RowBlock, limits));
            return;
        }
        if (rows == 0) return;
        var k = new KernelArgs();
        k.Add(y); k.Add(mean); k.Add(rstd); k.Add(x); k.Add(w); k.Add(b); k.Add(eps); k.Add((long)rows); k.Add(c);
        k.Add(Vectorizable(c, y, x, w, b) ? 1 : 0);
        var (kernel, plan) = RowsForwardLaunch(rows, c, limits);
        k.Launch(dev, kernel, plan);
    }

    /// <summary>Backward of the last-dim LayerNorm: dx, dweight, dbias.</summary>
    public static void LayerNormBackward(IGpuDevice dev, DevicePtr dx, DevicePtr dw, DevicePtr db, DevicePtr x,
                                         DevicePtr w, DevicePtr mean, DevicePtr rstd, DevicePtr dy, int rows, int c)
    {
        if (c > LayerNormMaxWarpColumns)
        {
            LayerNormBackwardWide(dev, dx, dw, db, x, w, mean, rstd, dy, rows, c);
            return;
        }
        if (rows == 0)
        {
            ElementwiseKernels.Fill(dev, dw, 0f, c);
            ElementwiseKernels.Fill(dev, db, 0f, c);
            return;
        }
        var limits = DeviceLimits.For(dev);
        var (kernel, plan, perChunk, chunks) = RowsBackwardLaunch(rows, c, limits);
        var partW = dev.Allocate(4L * chunks * c);
        var partB = dev.Allocate(4L * chunks * c);
        try
        {
            var k = new KernelArgs();
            k.Add(dx); k.Add(partW); k.Add(partB); k.Add(x); k.Add(w); k.Add(mean); k.Add(rstd); k.Add(dy); k.Add((long)rows);
            k.Add(c); k.Add(perChunk); k.Add(chunks); k.Add(Vectorizable(c, dx, partW, partB, x, w, dy) ? 1 : 0);
            k.Launch(dev, kernel, plan);
            Finalize(dev, dw, db, partW, partB, chunks, c, limits);
        }
        finally
        {
            dev.Free(partW);
            dev.Free(partB);
        }
    }

    /// <summary>dw / db = the partials summed in chunk order (one warp per column).</summary>
    private static void Finalize(IGpuDevice dev, DevicePtr dw, DevicePtr db, DevicePtr partW, DevicePtr partB,
                                 int chunks, int c, DeviceLimits limits)
    {
        var f = new KernelArgs(); f.Add(dw); f.Add(db); f.Add(partW); f.Add(partB); f.Add(chunks); f.Add(c);
        f.Launch(dev, "layernorm_param_finalize_kernel", FinalizePlan(c, limits));
    }

    /// <summary>Backward of the last-dim LayerNorm for rows wider than <see cref="LayerNormMaxWarpColumns"/>: one
    /// block per row for dx, column-sum chunks for the parameters.</summary>
    private static void LayerNormBackwardWide(IGpuDevice dev, DevicePtr dx, DevicePtr dw, DevicePtr db, DevicePtr x,
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
        var (plan, pixelChunks, chunks) = ChannelsFirstParamLaunch(n, hw, limits);
        if (chunks == 0)
        {
            ElementwiseKernels.Fill(dev, dw, 0f, c);
            ElementwiseKernels.Fill(dev, db, 0f, c);
            return;
        }
        var partW = dev.Allocate(4L * chunks * c);
        var partB = dev.Allocate(4L * chunks * c);
        try
        {
            var p = new KernelArgs();
            p.Add(partW); p.Add(partB); p.Add(x); p.Add(mean); p.Add(rstd); p.Add(dy); p.Add(c); p.Add(hw); p.Add(pixelChunks);
            p.Launch(dev, "layernorm_cf_bwd_param_partial_kernel", plan);
            Finalize(dev, dw, db, partW, partB, chunks, c, limits);
        }
        finally
        {
            dev.Free(partW);
            dev.Free(partB);
        }
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

    /// <summary>Workspace bytes of a BatchNorm pass: float64 partial pairs plus four coefficients per
    /// channel.</summary>
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
