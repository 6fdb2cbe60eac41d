// Typed launchers for cuda/kernels/reduce.cu: deterministic sums (two passes through per-block partials), column
// sums of (rows, C) matrices, global average pooling and permutation. Workspace comes from the device's caching
// allocator and goes back to it before returning (the kernels are ordered on the device's stream).
using System.Runtime.InteropServices;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the reduction and layout kernels.</summary>
public static class ReduceKernels
{
    private const int Block = 256;
    private const int SumBlocks = 256;

    /// <summary>result[0] = sum of x (of x^2 when <paramref name="squares"/>), deterministic.</summary>
    public static void Sum(IGpuDevice dev, DevicePtr result, DevicePtr x, long n, bool squares)
    {
        ArgumentNullException.ThrowIfNull(dev);
        var partials = dev.Allocate(SumBlocks * sizeof(float));
        try
        {
            var a = new KernelArgs(); a.Add(partials); a.Add(x); a.Add(squares ? 1 : 0); a.Add(n);
            a.Launch(dev, "sum_partial_kernel", SumBlocks, Block);
            var b = new KernelArgs(); b.Add(result); b.Add(partials); b.Add(0); b.Add((long)SumBlocks);
            b.Launch(dev, "sum_partial_kernel", 1, Block);
        }
        finally { dev.Free(partials); }
    }

    /// <summary>Rows per chunk and chunk count for a column reduction over <paramref name="rows"/> rows.</summary>
    public static (long RowsPerChunk, int Chunks) ColumnChunks(long rows, int c)
    {
        // Enough chunks to fill the GPU (~64k threads in flight) but at least 16 rows per chunk.
        long columnsBlocks = (c + Block - 1) / Block;
        long want = Math.Max(1, 256 / Math.Max(1, columnsBlocks));
        long perChunk = Math.Max(16, (rows + want - 1) / want);
        int chunks = (int)Math.Max(1, (rows + perChunk - 1) / perChunk);
        return (perChunk, chunks);
    }

    /// <summary>out[j] = sum over rows of a[r, j] (* b[r, j] when <paramref name="b"/> is not null).</summary>
    public static void ColumnSum(IGpuDevice dev, DevicePtr output, DevicePtr a, DevicePtr b, long rows, int c)
    {
        ArgumentNullException.ThrowIfNull(dev);
        var (perChunk, chunks) = ColumnChunks(rows, c);
        var partials = dev.Allocate((long)chunks * c * sizeof(float));
        try
        {
            var p = new KernelArgs(); p.Add(partials); p.Add(a); p.Add(b); p.Add(rows); p.Add(c); p.Add(perChunk);
            p.Launch(dev, "column_sum_partial_kernel", new Dim3((uint)((c + Block - 1) / Block), (uint)chunks), Block);
            Finalize(dev, output, partials, chunks, c);
        }
        finally { dev.Free(partials); }
    }

    /// <summary>out[j] = sum over k of partials[k, j] (partials laid out (chunks, c)).</summary>
    public static void Finalize(IGpuDevice dev, DevicePtr output, DevicePtr partials, int chunks, int c)
    {
        var f = new KernelArgs(); f.Add(output); f.Add(partials); f.Add(chunks); f.Add(c);
        f.Launch(dev, "column_sum_finalize_kernel", (c + Block - 1) / Block, Block);
    }

    /// <summary>y[p] = mean of plane p (planes of hw elements).</summary>
    public static void GlobalAvgPool(IGpuDevice dev, DevicePtr y, DevicePtr x, int planes, int hw)
    {
        var a = new KernelArgs(); a.Add(y); a.Add(x); a.Add(hw);
        a.Launch(dev, "global_avg_pool_kernel", planes, 128);
    }

    /// <summary>dx[p, i] = dy[p] / hw.</summary>
    public static void GlobalAvgPoolBackward(IGpuDevice dev, DevicePtr dx, DevicePtr dy, int hw, long n)
    {
        var a = new KernelArgs(); a.Add(dx); a.Add(dy); a.Add(hw); a.Add(n);
        a.Launch(dev, "global_avg_pool_bwd_kernel", KernelArgs.GridFor(n, Block), Block);
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
        if (n > 0) a.Launch(dev, "permute_kernel", KernelArgs.GridFor(n, Block), Block);
    }

    /// <summary>Mirror of <c>PermuteParams</c> in reduce.cu.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct PermuteParams
    {
        public int Rank;
        public fixed int OutShape[8];
        public fixed long InStride[8];
    }
}
