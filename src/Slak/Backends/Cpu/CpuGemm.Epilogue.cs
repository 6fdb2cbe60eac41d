// GEMM epilogues: element-wise work applied to each block of C as soon as the drivers have finished it, while it is
// still in L1/L2, instead of in a separate pass over the whole matrix afterwards (the Linear -> GELU -> Linear MLP of
// every SLaK block: bias + GELU on the first pointwise GEMM's output, GELU's derivative and the bias gradient on the
// input-gradient GEMM that produces dL/dGELU). The row-block driver (tall A, the forward and dX products) calls the
// epilogue per finished row block from its worker tasks; the other drivers call it after the product over a fixed
// partition of the rows. Either way every element of C is handed to the epilogue exactly once, and the row blocks
// depend only on the shapes and the thread count, so per-block reductions added in block order are deterministic.
using System.Buffers;

namespace Slak.Backends.Cpu;

/// <summary>Work applied to finished blocks of a GEMM's output C (see <see cref="CpuGemm"/>).</summary>
internal abstract unsafe class GemmEpilogue
{
    /// <summary>False (the default): the GELU epilogues work in passes over the block (bias, then GELU over whole
    /// rows as one span; GELU' over it, then the column sum). True: one pass per row (bias, GELU or GELU' and the
    /// bias-gradient sum together, a ragged row end as one masked vector). With the erfcc GELU the one-pass form was
    /// measured slower (bench nano-gemm, bench/results/training-profile.md: 7-9 % at slak_nano's stage 1): the
    /// epilogue's cost was GELU's arithmetic (~45 vector operations and an exp per 16 elements, two exps for GELU'),
    /// not the extra passes over rows that are still in L1/L2, and each 124-wide row also ended in a 12-element tail
    /// through a zeroed stack buffer and copies. With the table-form GELU (~25 instructions, masked tails) the two
    /// forms measure the same within noise (bench gelu-bench, bench/results/gelu.md), so the default stays; the
    /// one-pass form is kept as the benches' and the tests' variant. Per instance, so that no global switch is shared
    /// between concurrent GEMMs.</summary>
    internal bool OnePass { get; init; }

    /// <summary>Called on the calling thread before the first block, with C's shape and the number of row blocks
    /// (the <c>rowBlock</c> ids passed to <see cref="Apply"/> are in [0, <paramref name="rowBlocks"/>)).</summary>
    public virtual void Begin(int m, int n, int rowBlocks) { }

    /// <summary>Rows [row0, row0 + rows) x columns [col0, col0 + cols) of C (row stride <paramref name="ldc"/>) are
    /// final. Blocks with the same <paramref name="rowBlock"/> cover the same rows and disjoint columns; calls may run
    /// concurrently on different blocks.</summary>
    public abstract void Apply(float* c, int ldc, int row0, int rows, int col0, int cols, int rowBlock);

    /// <summary>Called on the calling thread after the last block.</summary>
    public virtual void End() { }
}

/// <summary>C[i, j] += bias[j] (a Linear layer's bias).</summary>
internal sealed unsafe class BiasEpilogue(float* bias) : GemmEpilogue
{
    /// <inheritdoc />
    public override void Apply(float* c, int ldc, int row0, int rows, int col0, int cols, int rowBlock)
        => CpuRowOps.AddBias(c + (long)row0 * ldc + col0, ldc, rows, cols, bias + col0);
}

/// <summary>C[i, j] += bias[j] (C keeps the pre-activation), then y[i, j] = GELU(C[i, j]) (y has row stride
/// n).</summary>
internal sealed unsafe class BiasGeluEpilogue(float* bias, float* y) : GemmEpilogue
{
    private int _n;

    /// <inheritdoc />
    public override void Begin(int m, int n, int rowBlocks) => _n = n;

    /// <inheritdoc />
    public override void Apply(float* c, int ldc, int row0, int rows, int col0, int cols, int rowBlock)
    {
        var b = new ReadOnlySpan<float>(bias + col0, cols);
        if (OnePass)
        {
            for (int i = row0; i < row0 + rows; i++)
                CpuGelu.BiasForward(new Span<float>(c + (long)i * ldc + col0, cols), b,
                    new Span<float>(y + (long)i * _n + col0, cols));
            return;
        }
        CpuRowOps.AddBias(c + (long)row0 * ldc + col0, ldc, rows, cols, bias + col0);
        if (cols == ldc && ldc == _n) // whole rows: one contiguous span (GELU's vector loop over the block, one tail)
        {
            CpuGelu.Forward(new ReadOnlySpan<float>(c + (long)row0 * ldc, rows * cols),
                new Span<float>(y + (long)row0 * _n, rows * cols));
            return;
        }
        for (int i = row0; i < row0 + rows; i++)
            CpuGelu.Forward(new ReadOnlySpan<float>(c + (long)i * ldc + col0, cols), new Span<float>(y + (long)i * _n + col0, cols));
    }
}

/// <summary>C[i, j] *= GELU'(pre[i, j]) (C becomes the gradient w.r.t. the pre-activation; pre has row stride n), and
/// dbias[j] = sum over rows of the new C: per row block in row order, then the blocks in block order
/// (double).</summary>
internal sealed unsafe class GeluGradBiasSumEpilogue(float* pre, float* dbias) : GemmEpilogue
{
    private int _n, _blocks;
    private float[]? _partial;

    /// <inheritdoc />
    public override void Begin(int m, int n, int rowBlocks)
    {
        _n = n;
        _blocks = Math.Max(rowBlocks, 1);
        // Pooled, not allocated per call (one GEMM per MLP per step); only the used part is cleared and read.
        _partial = ArrayPool<float>.Shared.Rent(checked(_blocks * n));
        Array.Clear(_partial, 0, _blocks * n);
    }

    /// <inheritdoc />
    public override void Apply(float* c, int ldc, int row0, int rows, int col0, int cols, int rowBlock)
    {
        var acc = _partial.AsSpan(rowBlock * _n + col0, cols);
        if (OnePass)
        {
            for (int i = row0; i < row0 + rows; i++)
                CpuGelu.BackwardAccumulate(new ReadOnlySpan<float>(pre + (long)i * _n + col0, cols),
                    new Span<float>(c + (long)i * ldc + col0, cols), acc);
            return;
        }
        if (cols == ldc && ldc == _n) // whole rows: one contiguous span
        {
            var block = new Span<float>(c + (long)row0 * ldc, rows * cols);
            CpuGelu.Backward(new ReadOnlySpan<float>(pre + (long)row0 * _n, rows * cols), block, block);
        }
        else
        {
            for (int i = row0; i < row0 + rows; i++)
            {
                var row = new Span<float>(c + (long)i * ldc + col0, cols);
                CpuGelu.Backward(new ReadOnlySpan<float>(pre + (long)i * _n + col0, cols), row, row);
            }
        }
        fixed (float* pAcc = acc) CpuRowOps.AccumulateColumns(c + (long)row0 * ldc + col0, ldc, rows, cols, pAcc);
    }

    /// <inheritdoc />
    public override void End()
    {
        var partial = _partial!;
        for (int j = 0; j < _n; j++)
        {
            double s = 0;
            for (int blk = 0; blk < _blocks; blk++) s += partial[blk * _n + j];
            dbias[j] = (float)s;
        }
        ArrayPool<float>.Shared.Return(partial);
        _partial = null;
    }
}
