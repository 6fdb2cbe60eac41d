// Shape operators and reductions: Reshape (zero-copy view), Permute (copy), Sum, Mean, GlobalAvgPool.
using Slak.Autograd;

namespace Slak;

public static partial class F
{
    /// <summary>Same data with a new shape (one dimension may be -1). Zero-copy.</summary>
    public static Tensor Reshape(Tensor x, params int[] shape)
    {
        Check.NotNull(x, nameof(Reshape), nameof(x));
        ArgumentNullException.ThrowIfNull(shape);
        var dims = (int[])shape.Clone();
        int infer = Array.IndexOf(dims, -1);
        if (dims.Count(d => d == -1) > 1)
            throw new ArgumentException($"{nameof(Reshape)}: at most one dimension may be -1, got {Shapes.Format(shape)} for {x.Describe()}", nameof(shape));
        foreach (int d in dims)
            if (d < -1)
                throw new ArgumentException($"{nameof(Reshape)}: dimension {d} in {Shapes.Format(shape)} is invalid (sizes are >= 0, or -1 once)", nameof(shape));
        if (infer >= 0)
        {
            long rest = 1;
            for (int i = 0; i < dims.Length; i++) if (i != infer) rest *= dims[i];
            if (rest == 0 || x.Numel % rest != 0)
                throw new ArgumentException($"{nameof(Reshape)}: cannot infer -1 in {Shapes.Format(shape)} for {x.Describe()}", nameof(shape));
            dims[infer] = (int)(x.Numel / rest);
        }
        if (Shapes.Numel(dims) != x.Numel)
            throw new ArgumentException($"{nameof(Reshape)}: shape {Shapes.Format(shape)} has {Shapes.Numel(dims)} elements but {x.Describe()} has {x.Numel}", nameof(shape));
        x.Storage.AddRef();
        var y = new Tensor(x.Storage, x.Offset, dims);
        var xShape = x.ShapeArray;
        return AutogradEngine.Record(y, nameof(Reshape), [x], g =>
        {
            g.Storage.AddRef();
            return [new Tensor(g.Storage, g.Offset, xShape)];
        });
    }

    // The largest rank Permute takes: the CUDA kernel's parameter block (PermuteParams) holds 8 dimensions.
    private const int MaxPermuteRank = 8;

    /// <summary>Permutes dimensions (a copy): result.shape[i] = x.shape[perm[i]]; x has rank at most 8.</summary>
    public static Tensor Permute(Tensor x, params int[] perm)
    {
        Check.NotNull(x, nameof(Permute), nameof(x));
        ArgumentNullException.ThrowIfNull(perm);
        if (x.Rank > MaxPermuteRank)
            throw new ArgumentException($"{nameof(Permute)}: x has rank {x.Rank}; at most {MaxPermuteRank} dimensions can be permuted ({x.Describe()})", nameof(x));
        if (perm.Length != x.Rank || perm.Distinct().Count() != perm.Length || perm.Any(p => p < 0 || p >= x.Rank))
            throw new ArgumentException($"{nameof(Permute)}: perm {Shapes.Format(perm)} is not a permutation of the {x.Rank} dims of {x.Describe()}", nameof(perm));
        var shape = new int[perm.Length];
        for (int i = 0; i < perm.Length; i++) shape[i] = x.Size(perm[i]);
        var y = Tensor.Empty(shape, x.Device);
        x.Backend.Permute(x, perm, y);
        var inverse = new int[perm.Length];
        for (int i = 0; i < perm.Length; i++) inverse[perm[i]] = i;
        return AutogradEngine.Record(y, nameof(Permute), [x], g =>
        {
            var gx = Like(x);
            x.Backend.Permute(g, inverse, gx);
            return [gx];
        });
    }

    /// <summary>NCHW -> NHWC.</summary>
    public static Tensor ToChannelsLast(Tensor x) => Permute(x, 0, 2, 3, 1);

    /// <summary>NHWC -> NCHW.</summary>
    public static Tensor ToChannelsFirst(Tensor x) => Permute(x, 0, 3, 1, 2);

    /// <summary>Sum of all elements (a scalar).</summary>
    public static Tensor Sum(Tensor x) => SumScaled(x, 1f, nameof(Sum));

    /// <summary>Mean of all elements (a scalar).</summary>
    public static Tensor Mean(Tensor x)
    {
        Check.NotNull(x, nameof(Mean), nameof(x));
        if (x.Numel == 0) throw new ArgumentException($"{nameof(Mean)}: x is empty", nameof(x));
        return SumScaled(x, 1f / x.Numel, nameof(Mean));
    }

    private static Tensor SumScaled(Tensor x, float scale, string op)
    {
        Check.NotNull(x, op, nameof(x));
        var y = Tensor.Empty([], x.Device);
        x.Backend.SumAll(x, y);
        if (scale != 1f) x.Backend.Scale(y, scale, y);
        return AutogradEngine.Record(y, op, [x], g =>
        {
            var gx = Like(x);
            x.Backend.FillFromScalar(gx, g, scale);
            return [gx];
        });
    }

    /// <summary>(N, C, H, W) -> (N, C): mean over the spatial dimensions.</summary>
    public static Tensor GlobalAvgPool(Tensor x)
    {
        Check.Rank(x, 4, nameof(GlobalAvgPool), nameof(x), "(N, C, H, W)");
        var y = Tensor.Empty([x.Size(0), x.Size(1)], x.Device);
        x.Backend.GlobalAvgPool(x, y);
        return AutogradEngine.Record(y, nameof(GlobalAvgPool), [x], g =>
        {
            var gx = Like(x);
            x.Backend.GlobalAvgPoolBackward(g, gx);
            return [gx];
        });
    }
}
