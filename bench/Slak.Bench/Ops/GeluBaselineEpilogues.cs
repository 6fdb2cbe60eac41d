// The GELU epilogues of commit 25a04d6 (CpuGemm.Epilogue.cs, their default two-pass form) over the erfcc-form kernels
// of GeluErfccBaseline: the "old" column of gelu-bench's fused-GEMM table.
using System.Buffers;
using System.Numerics.Tensors;
using Slak.Backends.Cpu;

namespace Slak.Bench.Ops;

/// <summary>C += bias, then y = GELU(C) by the erfcc form, in passes over the block (the old default).</summary>
internal sealed unsafe class BaselineBiasGeluEpilogue(float* bias, float* y) : GemmEpilogue
{
    private int _n;

    /// <inheritdoc />
    public override void Begin(int m, int n, int rowBlocks) => _n = n;

    /// <inheritdoc />
    public override void Apply(float* c, int ldc, int row0, int rows, int col0, int cols, int rowBlock)
    {
        var b = new ReadOnlySpan<float>(bias + col0, cols);
        for (int i = row0; i < row0 + rows; i++)
        {
            var row = new Span<float>(c + (long)i * ldc + col0, cols);
            TensorPrimitives.Add(row, b, row);
        }
        if (cols == ldc && ldc == _n)
        {
            GeluErfccBaseline.Forward(new ReadOnlySpan<float>(c + (long)row0 * ldc, rows * cols),
                new Span<float>(y + (long)row0 * _n, rows * cols));
            return;
        }
        for (int i = row0; i < row0 + rows; i++)
            GeluErfccBaseline.Forward(new ReadOnlySpan<float>(c + (long)i * ldc + col0, cols),
                new Span<float>(y + (long)i * _n + col0, cols));
    }
}

/// <summary>C *= GELU'(pre) by the erfcc form, then the bias gradient's column sums, in passes (the old default).</summary>
internal sealed unsafe class BaselineGeluGradBiasSumEpilogue(float* pre, float* dbias) : GemmEpilogue
{
    private int _n, _blocks;
    private float[]? _partial;

    /// <inheritdoc />
    public override void Begin(int m, int n, int rowBlocks)
    {
        _n = n;
        _blocks = Math.Max(rowBlocks, 1);
        _partial = ArrayPool<float>.Shared.Rent(checked(_blocks * n));
        Array.Clear(_partial, 0, _blocks * n);
    }

    /// <inheritdoc />
    public override void Apply(float* c, int ldc, int row0, int rows, int col0, int cols, int rowBlock)
    {
        var acc = _partial.AsSpan(rowBlock * _n + col0, cols);
        if (cols == ldc && ldc == _n)
        {
            var block = new Span<float>(c + (long)row0 * ldc, rows * cols);
            GeluErfccBaseline.Backward(new ReadOnlySpan<float>(pre + (long)row0 * _n, rows * cols), block, block);
        }
        else
        {
            for (int i = row0; i < row0 + rows; i++)
            {
                var row = new Span<float>(c + (long)i * ldc + col0, cols);
                GeluErfccBaseline.Backward(new ReadOnlySpan<float>(pre + (long)i * _n + col0, cols), row, row);
            }
        }
        for (int i = row0; i < row0 + rows; i++)
            TensorPrimitives.Add(acc, new ReadOnlySpan<float>(c + (long)i * ldc + col0, cols), acc);
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
