// Activation kernels of the CPU backend (family activation): exact GELU and its derivative (CpuGelu), layer scale
// (per-channel multiply on channels-last tensors) with its gradient, per-sample scaling (DropPath), bias add.
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
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
}
