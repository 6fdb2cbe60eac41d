// The CPU backend: memory, copies and the element-wise kernels. Vectorized through System.Numerics.Tensors
// (TensorPrimitives picks AVX-512/AVX2 at run time) and split over threads with CpuParallel for large tensors.
// The other kernel families live in CpuBackend.*.cs.
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

/// <summary>The CPU backend (a product path, and the oracle the CUDA kernels are checked against).</summary>
public sealed partial class CpuBackend : IBackend
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

    /// <inheritdoc />
    public void Fill(Tensor destination, float value) => S(destination).Fill(value);

    /// <inheritdoc />
    public void FillFromScalar(Tensor destination, Tensor scalar, float scale) => S(destination).Fill(S(scalar)[0] * scale);

    // ---- element-wise ----------------------------------------------------------------------------------------

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor y) =>
        Chunked(y.Numel, (s, n) => TensorPrimitives.Add(S(a).Slice(s, n), S(b).Slice(s, n), S(y).Slice(s, n)));

    /// <inheritdoc />
    public void AddScaled(Tensor y, Tensor x, float alpha) =>
        Chunked(y.Numel, (s, n) => TensorPrimitives.MultiplyAdd(S(x).Slice(s, n), alpha, S(y).Slice(s, n), S(y).Slice(s, n)));

    /// <inheritdoc />
    public void Mul(Tensor a, Tensor b, Tensor y) =>
        Chunked(y.Numel, (s, n) => TensorPrimitives.Multiply(S(a).Slice(s, n), S(b).Slice(s, n), S(y).Slice(s, n)));

    /// <inheritdoc />
    public void Scale(Tensor x, float alpha, Tensor y) =>
        Chunked(y.Numel, (s, n) => TensorPrimitives.Multiply(S(x).Slice(s, n), alpha, S(y).Slice(s, n)));

    /// <inheritdoc />
    public void Gelu(Tensor x, Tensor y) =>
        Chunked(y.Numel, (s, n) => CpuGelu.Forward(S(x).Slice(s, n), S(y).Slice(s, n)));

    /// <inheritdoc />
    public void GeluBackward(Tensor x, Tensor dy, Tensor dx) =>
        Chunked(dx.Numel, (s, n) => CpuGelu.Backward(S(x).Slice(s, n), S(dy).Slice(s, n), S(dx).Slice(s, n)));

    /// <inheritdoc />
    public void MulLastDim(Tensor x, Tensor gamma, Tensor y)
    {
        int c = gamma.Size(0);
        int rows = checked((int)(x.Numel / c));
        CpuParallel.For(0, RowBlocks(rows, c), blk =>
        {
            var (r0, r1) = RowRange(blk, rows, c);
            var gs = S(gamma);
            for (int r = r0; r < r1; r++)
                TensorPrimitives.Multiply(S(x).Slice(r * c, c), gs, S(y).Slice(r * c, c));
        });
    }

    /// <inheritdoc />
    public void MulLastDimBackward(Tensor x, Tensor gamma, Tensor dy, Tensor? dx, Tensor? dgamma)
    {
        int c = gamma.Size(0);
        int rows = checked((int)(dy.Numel / c));
        if (dx is not null) MulLastDim(dy, gamma, dx);
        if (dgamma is null) return;
        ColumnReduce(rows, c, S(dgamma), (r, acc) => AddProductWiden(S(x).Slice(r * c, c), S(dy).Slice(r * c, c), acc));
    }

    /// <inheritdoc />
    public void MulRows(Tensor x, Tensor rowScale, Tensor y)
    {
        int rows = x.Size(0);
        int row = rows == 0 ? 0 : checked((int)(x.Numel / rows));
        CpuParallel.For(0, rows, r =>
            TensorPrimitives.Multiply(S(x).Slice(r * row, row), S(rowScale)[r], S(y).Slice(r * row, row)));
    }

    /// <inheritdoc />
    public void AddBiasLastDim(Tensor y, Tensor bias)
    {
        int c = bias.Size(0);
        int rows = checked((int)(y.Numel / c));
        CpuParallel.For(0, RowBlocks(rows, c), blk =>
        {
            var (r0, r1) = RowRange(blk, rows, c);
            var bs = S(bias);
            for (int r = r0; r < r1; r++)
            {
                var ys = S(y).Slice(r * c, c);
                TensorPrimitives.Add(ys, bs, ys);
            }
        });
    }

    /// <inheritdoc />
    public void AddBiasChannels(Tensor y, Tensor bias)
    {
        if (y.Numel == 0) return;
        int c = y.Size(1), planes = checked(y.Size(0) * c);
        int plane = checked((int)(y.Numel / planes));
        CpuParallel.For(0, planes, y.Numel, p =>
        {
            var ys = S(y).Slice(p * plane, plane);
            TensorPrimitives.Add(ys, S(bias)[p % c], ys);
        });
    }

    /// <inheritdoc />
    public void SumToLastDim(Tensor dy, Tensor db)
    {
        int c = db.Size(0);
        int rows = checked((int)(dy.Numel / c));
        ColumnReduce(rows, c, S(db), (r, acc) => AddWiden(S(dy).Slice(r * c, c), acc));
    }

    /// <inheritdoc />
    public void Permute(Tensor x, ReadOnlySpan<int> perm, Tensor y) => CpuPermute.Run(S(x), x.Shape, perm, S(y));

    /// <inheritdoc />
    public void SumAll(Tensor x, Tensor y) => S(y)[0] = (float)ReduceAll(x, static s => TensorPrimitives.Sum(s));

    /// <inheritdoc />
    public void SumSquares(Tensor x, Tensor y) => S(y)[0] = (float)ReduceAll(x, static s => TensorPrimitives.SumOfSquares(s));

    /// <inheritdoc />
    public void GlobalAvgPool(Tensor x, Tensor y)
    {
        int planes = x.Size(0) * x.Size(1), hw = x.Size(2) * x.Size(3);
        float inv = 1f / hw;
        CpuParallel.For(0, planes, x.Numel, p => S(y)[p] = TensorPrimitives.Sum(S(x).Slice(p * hw, hw)) * inv);
    }

    /// <inheritdoc />
    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx)
    {
        int planes = dx.Size(0) * dx.Size(1), hw = dx.Size(2) * dx.Size(3);
        float inv = 1f / hw;
        CpuParallel.For(0, planes, dx.Numel, p => S(dx).Slice(p * hw, hw).Fill(S(dy)[p] * inv));
    }

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
