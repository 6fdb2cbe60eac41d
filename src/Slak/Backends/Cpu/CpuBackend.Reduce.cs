// Reduction and layout kernels of the CPU backend (family reduce): column sums (bias gradients), full sums and sums
// of squares (accumulated in double), global average pooling and its gradient, permutation of axes.
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
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
        // Planes in row blocks, not one parallel item per plane: the head pools 1 x 1 to 8 x 8 maps, where a call
        // per plane cost more than its few additions.
        CpuParallel.For(0, RowBlocks(planes, hw), blk =>
        {
            var (p0, p1) = RowRange(blk, planes, hw);
            var xs = S(x);
            var ys = S(y);
            if (hw == 1)
            {
                xs[p0..p1].CopyTo(ys[p0..p1]);
                return;
            }
            for (int p = p0; p < p1; p++) ys[p] = TensorPrimitives.Sum(xs.Slice(p * hw, hw)) * inv;
        });
    }

    /// <inheritdoc />
    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx)
    {
        int planes = dx.Size(0) * dx.Size(1), hw = dx.Size(2) * dx.Size(3);
        float inv = 1f / hw;
        CpuParallel.For(0, RowBlocks(planes, hw), blk =>
        {
            var (p0, p1) = RowRange(blk, planes, hw);
            var dys = S(dy);
            var dxs = S(dx);
            if (hw == 1)
            {
                // inv is 1: the gradient passes through.
                dys[p0..p1].CopyTo(dxs[p0..p1]);
                return;
            }
            for (int p = p0; p < p1; p++) dxs.Slice(p * hw, hw).Fill(dys[p] * inv);
        });
    }
}
