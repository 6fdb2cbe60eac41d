// The CPU backend: memory, copies and the helpers its kernel families share. Kernels are vectorized through
// System.Numerics.Tensors (TensorPrimitives picks AVX-512/AVX2 at run time) and split over threads with CpuParallel
// for large tensors. Each kernel family lives in CpuBackend.<Family>.cs, named like its cuda/kernels file
// (docs/layout.md).
namespace Slak.Backends.Cpu;

/// <summary>The CPU backend (a product path, and the oracle the CUDA kernels are checked against).</summary>
internal sealed partial class CpuBackend : IBackend
{
    /// <summary>Elements per parallel chunk of element-wise work (below this a kernel runs on one thread).</summary>
    private const int Chunk = 1 << 16;

    private CpuBackend() { }

    /// <summary>The single instance.</summary>
    public static CpuBackend Instance { get; } = new();

    /// <inheritdoc />
    public Device Device => Device.Cpu;

    private static Span<float> S(Tensor t) => t.Data;

    /// <summary>Runs <paramref name="body"/>(start, length) over [0, n) in chunks, in parallel when large.</summary>
    private static void Chunked(long n, Action<int, int> body)
    {
        int total = checked((int)n);
        int chunks = (total + Chunk - 1) / Chunk;
        if (chunks <= 1) { body(0, total); return; }
        CpuParallel.For(0, chunks, c =>
        {
            int start = c * Chunk;
            body(start, Math.Min(Chunk, total - start));
        });
    }

    // ---- memory ----------------------------------------------------------------------------------------------

    /// <inheritdoc />
    public Storage Allocate(long length) => new CpuStorage(length);

    /// <inheritdoc />
    public void CopyFromHost(ReadOnlySpan<float> source, Tensor destination) => source.CopyTo(S(destination));

    /// <inheritdoc />
    public void CopyToHost(Tensor source, Span<float> destination) => S(source).CopyTo(destination);

    /// <inheritdoc />
    public void Copy(Tensor source, Tensor destination) => S(source).CopyTo(S(destination));

    // ---- helpers -------------------------------------------------------------------------------------------

    /// <summary>Sum over chunks in double so long reductions do not drift.</summary>
    private static double ReduceAll(Tensor x, Func<ReadOnlySpan<float>, float> partial)
    {
        int total = checked((int)x.Numel);
        const int block = 4096;
        int blocks = (total + block - 1) / block;
        var parts = new double[Math.Max(blocks, 1)];
        CpuParallel.For(0, blocks, b =>
        {
            int s = b * block;
            parts[b] = partial(S(x).Slice(s, Math.Min(block, total - s)));
        });
        double sum = 0;
        foreach (double p in parts) sum += p;
        return sum;
    }

    // One block per MinParallelWork elements (a single block runs inline), at most 4 per thread.
    private static int RowBlocks(int rows, int width) =>
        Math.Max(1, Math.Min(rows, (int)Math.Min(4L * CpuParallel.Threads, (long)rows * width / CpuParallel.MinParallelWork + 1)));

    private static (int Start, int End) RowRange(int block, int rows, int width)
    {
        int blocks = RowBlocks(rows, width);
        int per = (rows + blocks - 1) / blocks;
        return (Math.Min(rows, block * per), Math.Min(rows, (block + 1) * per));
    }

    /// <summary>result[j] = sum over rows r of contributions accumulated by <paramref name="addRow"/> (double
    /// accumulators per thread block, combined in a fixed order so results are deterministic).</summary>
    private static void ColumnReduce(int rows, int width, Span<float> result, Action<int, double[]> addRow)
    {
        int blocks = RowBlocks(rows, width);
        var partials = new double[blocks][];
        CpuParallel.For(0, blocks, blk =>
        {
            var acc = new double[width];
            var (r0, r1) = RowRange(blk, rows, width);
            for (int r = r0; r < r1; r++) addRow(r, acc);
            partials[blk] = acc;
        });
        for (int j = 0; j < width; j++)
        {
            double s = 0;
            for (int b = 0; b < blocks; b++) s += partials[b][j];
            result[j] = (float)s;
        }
    }
}
