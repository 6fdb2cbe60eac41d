// Typed launchers for cuda/kernels/reduce.cu: deterministic sums (two passes through per-block partials), column
// sums of (rows, C) matrices, global average pooling and permutation. Workspace comes from the device's caching
// allocator and goes back to it before returning (the kernels are ordered on the device's stream). Grids, chunks and
// workspace sizes: slak_plan.h.
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the reduction and layout kernels.</summary>
internal static class ReduceKernels
{
    /// <summary>result[0] = sum of x (of x^2 when <paramref name="squares"/>), deterministic: a fixed first pass of
    /// <see cref="LaunchPlans.SumBlocks"/> blocks, then one block over their partials.</summary>
    public static void Sum(IGpuDevice dev, DevicePtr result, DevicePtr x, long n, bool squares)
    {
        var limits = DeviceLimits.For(dev);
        int blocks = LaunchPlans.SumBlocks;
        var partials = dev.Allocate(blocks * sizeof(float));
        try
        {
            var a = new KernelArgs(); a.Add(partials); a.Add(x); a.Add(squares ? 1 : 0); a.Add(n);
            a.Launch(dev, "sum_partial_kernel", LaunchPlans.Rows(blocks, LaunchPlans.Block, limits));
            var b = new KernelArgs(); b.Add(result); b.Add(partials); b.Add(0); b.Add((long)blocks);
            b.Launch(dev, "sum_partial_kernel", LaunchPlans.Rows(1, LaunchPlans.Block, limits));
        }
        finally { dev.Free(partials); }
    }

    /// <summary>out[j] = sum over rows of a[r, j] (* b[r, j] when <paramref name="b"/> is not null).</summary>
    public static void ColumnSum(IGpuDevice dev, DevicePtr output, DevicePtr a, DevicePtr b, long rows, int c)
    {
        var plan = LaunchPlans.ColumnSum(rows, c, DeviceLimits.For(dev));
        if (plan.KernelChoice == PlanKernel.None)
        {
            if (c > 0) ElementwiseKernels.Fill(dev, output, 0f, c);
            return;
        }
        var partials = dev.Allocate(plan.WorkspaceBytes);
        try
        {
            var p = new KernelArgs(); p.Add(partials); p.Add(a); p.Add(b); p.Add(rows); p.Add(c); p.Add((long)plan.PerChunk);
            p.Launch(dev, "column_sum_partial_kernel", plan);
            Finalize(dev, output, partials, plan.Chunks, c);
        }
        finally { dev.Free(partials); }
    }

    /// <summary>out[j] = sum over k of partials[k, j] (partials laid out (chunks, c)).</summary>
    public static void Finalize(IGpuDevice dev, DevicePtr output, DevicePtr partials, int chunks, int c)
    {
        var f = new KernelArgs(); f.Add(output); f.Add(partials); f.Add(chunks); f.Add(c);
        f.Launch(dev, "column_sum_finalize_kernel", LaunchPlans.Elements(c, LaunchPlans.Block, DeviceLimits.For(dev)));
    }

    /// <summary>y[p] = mean of plane p (planes of hw elements).</summary>
    public static void GlobalAvgPool(IGpuDevice dev, DevicePtr y, DevicePtr x, int planes, int hw)
    {
        var a = new KernelArgs(); a.Add(y); a.Add(x); a.Add(hw);
        a.Launch(dev, "global_avg_pool_kernel", LaunchPlans.Rows(planes, LaunchPlans.RowBlock, DeviceLimits.For(dev)));
    }

    /// <summary>dx[p, i] = dy[p] / hw.</summary>
    public static void GlobalAvgPoolBackward(IGpuDevice dev, DevicePtr dx, DevicePtr dy, int hw, long n)
    {
        var a = new KernelArgs(); a.Add(dx); a.Add(dy); a.Add(hw); a.Add(n);
        a.Launch(dev, "global_avg_pool_bwd_kernel", LaunchPlans.GridStride(n, DeviceLimits.For(dev)));
    }

    /// <summary>y = x with dimensions permuted (y.shape[i] = xShape[perm[i]]), rank at most 8.</summary>
    public static unsafe void Permute(IGpuDevice dev, DevicePtr y, DevicePtr x, ReadOnlySpan<int> xShape,
                                      ReadOnlySpan<int> perm)
    {
        int rank = xShape.Length;
        if (rank > 8) throw new ArgumentException($"permute supports rank <= 8, got {rank}", nameof(xShape));
        var p = new PermuteParams { Rank = rank };
        long n = 1;
        Span<long> strides = stackalloc long[Math.Max(rank, 1)];
        for (int d = rank - 1; d >= 0; d--) { strides[d] = n; n *= xShape[d]; }
        for (int i = 0; i < rank; i++) { p.OutShape[i] = xShape[perm[i]]; p.InStride[i] = strides[perm[i]]; }
        var a = new KernelArgs(); a.Add(y); a.Add(x); a.Add(p); a.Add(n);
        if (n > 0) a.Launch(dev, "permute_kernel", LaunchPlans.GridStride(n, DeviceLimits.For(dev)));
    }
}
