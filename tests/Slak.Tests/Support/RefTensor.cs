// Float64 arrays with shapes: the data type of the plain reference implementations the tests compare against.
// Row-major like Tensor; the indexers exist so references read like the math (x[n, c, h, w]).
namespace Slak.Tests.Support;

/// <summary>A row-major float64 array with a shape (the tests' reference tensor).</summary>
public sealed class RefTensor
{
    private readonly int[] _strides;

    /// <summary>A zero-filled reference tensor.</summary>
    public RefTensor(params int[] shape) : this(new double[Numel(shape)], shape) { }

    /// <summary>Wraps <paramref name="data"/> (not copied) with <paramref name="shape"/>.</summary>
    public RefTensor(double[] data, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        if (data.Length != Numel(shape))
            throw new ArgumentException($"data has {data.Length} elements, shape {Shapes.Format(shape)} needs {Numel(shape)}", nameof(data));
        Data = data;
        Shape = (int[])shape.Clone();
        _strides = new int[shape.Length];
        int s = 1;
        for (int d = shape.Length - 1; d >= 0; d--) { _strides[d] = s; s *= shape[d]; }
    }

    /// <summary>The elements (row-major).</summary>
    public double[] Data { get; }

    /// <summary>The shape.</summary>
    public int[] Shape { get; }

    /// <summary>Number of elements.</summary>
    public int Length => Data.Length;

    /// <summary>Size of dimension <paramref name="d"/> (negative counts from the end).</summary>
    public int Size(int d) => Shape[d < 0 ? d + Shape.Length : d];

    /// <summary>Element access by flat index.</summary>
    public double this[int i] { get => Data[i]; set => Data[i] = value; }

    /// <summary>Element access for rank 2.</summary>
    public double this[int i, int j] { get => Data[i * _strides[0] + j]; set => Data[i * _strides[0] + j] = value; }

    /// <summary>Element access for rank 3.</summary>
    public double this[int i, int j, int k]
    {
        get => Data[i * _strides[0] + j * _strides[1] + k];
        set => Data[i * _strides[0] + j * _strides[1] + k] = value;
    }

    /// <summary>Element access for rank 4.</summary>
    public double this[int i, int j, int k, int l]
    {
        get => Data[i * _strides[0] + j * _strides[1] + k * _strides[2] + l];
        set => Data[i * _strides[0] + j * _strides[1] + k * _strides[2] + l] = value;
    }

    /// <summary>Exact float64 copy of float32 data.</summary>
    public static RefTensor From(float[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        var d = new double[data.Length];
        for (int i = 0; i < d.Length; i++) d[i] = data[i];
        return new RefTensor(d, shape);
    }

    /// <summary>Exact float64 copy of a tensor's contents (any device).</summary>
    public static RefTensor From(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return From(t.ToArray(), t.ShapeArray);
    }

    /// <summary>A deep copy.</summary>
    public RefTensor Clone() => new((double[])Data.Clone(), Shape);

    /// <summary>Same data with another shape (a copy).</summary>
    public RefTensor Reshape(params int[] shape) => new((double[])Data.Clone(), shape);

    /// <summary>Product of the dimensions.</summary>
    public static int Numel(int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        int n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }

    /// <summary>"(2, 3)".</summary>
    public override string ToString() => $"RefTensor{Shapes.Format(Shape)}";
}
