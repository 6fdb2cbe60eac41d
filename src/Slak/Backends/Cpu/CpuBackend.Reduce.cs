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
        CpuParallel.For(0, planes, x.Numel, p => S(y)[p] = TensorPrimitives.Sum(S(x).Slice(p * hw, hw)) * inv);
    }

    /// <inheritdoc />
    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx)
    {
        int planes = dx.Size(0) * dx.Size(1), hw = dx.Size(2) * dx.Size(3);
        float inv = 1f / hw;
        CpuParallel.For(0, planes, dx.Numel, p => S(dx).Slice(p * hw, hw).Fill(S(dy)[p] * inv));
    }
}
