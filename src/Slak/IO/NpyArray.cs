// An array read from an .npy file: dtype, shape and the raw little-endian C-order bytes, with conversions.
using System.Buffers.Binary;

namespace Slak.IO;

/// <summary>An .npy array in memory (C order, little-endian).</summary>
public sealed class NpyArray
{
    private readonly int[] _shape;
    private readonly byte[] _data;

    internal NpyArray(NpyDType dtype, int[] shape, long count, byte[] data)
    {
        DType = dtype;
        _shape = shape;
        Count = count;
        _data = data;
    }

    /// <summary>Element type.</summary>
    public NpyDType DType { get; }

    /// <summary>Shape, outermost first; empty for a 0-d array.</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>Number of elements (1 for a 0-d array).</summary>
    public long Count { get; }

    /// <summary>The raw little-endian bytes in C order.</summary>
    public ReadOnlySpan<byte> RawData => _data;

    /// <summary>The shape as a new array.</summary>
    public int[] GetShape() => (int[])_shape.Clone();

    /// <summary>Shape in numpy's notation, e.g. "(3, 1, 28, 28)", for messages.</summary>
    public string ShapeText => Npy.ShapeText(_shape);

    /// <summary>The elements as float32 (float64 is rounded, int64 converted).</summary>
    public float[] ToFloat32()
    {
        var result = new float[_data.Length / Npy.ItemSize(DType)];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = DType switch
            {
                NpyDType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(_data.AsSpan(4 * i)),
                NpyDType.Float64 => (float)BinaryPrimitives.ReadDoubleLittleEndian(_data.AsSpan(8 * i)),
                _ => BinaryPrimitives.ReadInt64LittleEndian(_data.AsSpan(8 * i)),
            };
        }
        return result;
    }

    /// <summary>The elements as float64 (exact for float32, converted for int64).</summary>
    public double[] ToFloat64()
    {
        var result = new double[_data.Length / Npy.ItemSize(DType)];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = DType switch
            {
                NpyDType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(_data.AsSpan(4 * i)),
                NpyDType.Float64 => BinaryPrimitives.ReadDoubleLittleEndian(_data.AsSpan(8 * i)),
                _ => BinaryPrimitives.ReadInt64LittleEndian(_data.AsSpan(8 * i)),
            };
        }
        return result;
    }

    /// <summary>The elements of an int64 array; throws for float arrays (no silent truncation).</summary>
    public long[] ToInt64()
    {
        if (DType != NpyDType.Int64)
        {
            throw new InvalidOperationException(
                $"the array is '{Npy.Descriptor(DType)}', not '<i8'; convert explicitly");
        }
        var result = new long[_data.Length / 8];
        for (int i = 0; i < result.Length; i++) result[i] = BinaryPrimitives.ReadInt64LittleEndian(_data.AsSpan(8 * i));
        return result;
    }
}
