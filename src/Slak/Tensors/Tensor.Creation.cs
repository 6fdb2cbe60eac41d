// Factories. Random tensors are drawn on the host from an explicit SlakRandom (never a hidden global), so runs are
// reproducible for a seed and the generator state can be checkpointed.
using Slak.Backends;

namespace Slak;

public sealed partial class Tensor
{
    /// <summary>An uninitialized tensor (contents undefined: every kernel must write all of it).</summary>
    public static Tensor Empty(ReadOnlySpan<int> shape, Device device)
    {
        var dims = shape.ToArray();
        var storage = BackendRegistry.For(device).Allocate(Shapes.Numel(dims));
        return new Tensor(storage, 0, dims);
    }

    /// <summary>A tensor filled with <paramref name="value"/>.</summary>
    public static Tensor Full(ReadOnlySpan<int> shape, float value, Device device)
    {
        var t = Empty(shape, device);
        t.Backend.Fill(t, value);
        return t;
    }

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(ReadOnlySpan<int> shape, Device device) => Full(shape, 0f, device);

    /// <summary>A tensor of ones.</summary>
    public static Tensor Ones(ReadOnlySpan<int> shape, Device device) => Full(shape, 1f, device);

    /// <summary>A zero tensor with the shape and device of <paramref name="like"/>.</summary>
    public static Tensor ZerosLike(Tensor like) => Zeros(like.Shape, like.Device);

    /// <summary>A CPU tensor of zeros (shorthand).</summary>
    public static Tensor Zeros(params int[] shape) => Zeros(shape, Device.Cpu);

    /// <summary>A tensor holding a copy of <paramref name="data"/> with the given shape.</summary>
    public static Tensor FromArray(ReadOnlySpan<float> data, ReadOnlySpan<int> shape, Device device)
    {
        long n = Shapes.Numel(shape);
        if (data.Length != n)
            throw new ArgumentException($"data has {data.Length} elements but shape {Shapes.Format(shape)} needs {n}", nameof(data));
        var t = Empty(shape, device);
        t.Backend.CopyFromHost(data, t);
        return t;
    }

    /// <summary>A CPU tensor holding a copy of <paramref name="data"/> (shorthand).</summary>
    public static Tensor FromArray(float[] data, params int[] shape) => FromArray(data, shape, Device.Cpu);

    /// <summary>A scalar (shape ()) tensor.</summary>
    public static Tensor Scalar(float value, Device device) => FromArray([value], [], device);

    /// <summary>Normal(mean, std) samples drawn from <paramref name="rng"/>.</summary>
    public static Tensor RandN(SlakRandom rng, ReadOnlySpan<int> shape, Device device, float mean = 0f, float std = 1f)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var data = new float[Shapes.Numel(shape)];
        for (int i = 0; i < data.Length; i++) data[i] = mean + std * rng.NextNormal();
        return FromArray(data, shape, device);
    }

    /// <summary>Uniform [low, high) samples drawn from <paramref name="rng"/>.</summary>
    public static Tensor Uniform(SlakRandom rng, ReadOnlySpan<int> shape, Device device, float low = 0f, float high = 1f)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var data = new float[Shapes.Numel(shape)];
        for (int i = 0; i < data.Length; i++) data[i] = low + (high - low) * rng.NextFloat();
        return FromArray(data, shape, device);
    }
}
