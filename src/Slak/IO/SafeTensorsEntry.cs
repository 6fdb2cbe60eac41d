// One tensor of a parsed safetensors file: name, dtype, shape and a view of its raw little-endian bytes, with the
// conversions the model loader needs (any float type to float32, integer types to int64).
using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Slak.IO;

/// <summary>A tensor of a safetensors file. Created by <see cref="SafeTensorsFile"/> after the whole header has
/// been validated, so <see cref="Data"/> always has exactly <c>ElementCount * ItemSize</c> bytes.</summary>
public sealed class SafeTensorsEntry
{
    private readonly int[] _shape;

    internal SafeTensorsEntry(string name, SafeTensorsDType dtype, int[] shape, long elementCount,
        long dataBegin, long dataEnd, ReadOnlyMemory<byte> data)
    {
        Name = name;
        DType = dtype;
        _shape = shape;
        ElementCount = elementCount;
        DataBegin = dataBegin;
        DataEnd = dataEnd;
        Data = data;
    }

    /// <summary>Tensor name, e.g. <c>stages.0.0.large_kernel.LoRA1.conv.weight</c>.</summary>
    public string Name { get; }

    /// <summary>Element type.</summary>
    public SafeTensorsDType DType { get; }

    /// <summary>Shape, outermost first (row-major); empty for a 0-d tensor.</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>Number of elements (product of the shape; 1 for a 0-d tensor).</summary>
    public long ElementCount { get; }

    /// <summary>Start of the data, relative to the first byte after the header.</summary>
    public long DataBegin { get; }

    /// <summary>End (exclusive) of the data, relative to the first byte after the header.</summary>
    public long DataEnd { get; }

    /// <summary>The raw little-endian bytes.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The shape as a new array.</summary>
    public int[] GetShape() => (int[])_shape.Clone();

    /// <summary>Shape as text, e.g. "(124, 1, 51, 5)", for messages.</summary>
    public string ShapeText => "(" + string.Join(", ", _shape) + ")";

    /// <summary>The elements as float32, converting from F32, F16, BF16 or F64.</summary>
    public float[] ToFloat32()
    {
        var result = new float[CheckedCount()];
        CopyToFloat32(result);
        return result;
    }

    /// <summary>Writes the elements as float32 into <paramref name="destination"/>, whose length must equal
    /// <see cref="ElementCount"/>; converts from F32, F16, BF16 or F64.</summary>
    public void CopyToFloat32(Span<float> destination)
    {
        if (destination.Length != ElementCount)
        {
            throw new ArgumentException(
                $"destination holds {destination.Length} floats but tensor '{Name}' {ShapeText} has {ElementCount}",
                nameof(destination));
        }
        ReadOnlySpan<byte> src = Data.Span;
        switch (DType)
        {
            case SafeTensorsDType.F32:
                if (BitConverter.IsLittleEndian)
                {
                    MemoryMarshal.Cast<byte, float>(src).CopyTo(destination);
                }
                else
                {
                    for (int i = 0; i < destination.Length; i++)
                        destination[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
                }
                break;
            case SafeTensorsDType.F16:
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]);
                break;
            case SafeTensorsDType.BF16:
                for (int i = 0; i < destination.Length; i++)
                {
                    int bits = BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16;
                    destination[i] = BitConverter.Int32BitsToSingle(bits);
                }
                break;
            case SafeTensorsDType.F64:
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(8 * i)..]);
                break;
            default:
                throw new InvalidOperationException(
                    $"tensor '{Name}' has dtype {DType.Code()}; only F32, F16, BF16 and F64 convert to float32");
        }
    }

    /// <summary>The elements as int64, converting from I64, I32, I16, I8, U8, U16, U32 or BOOL (U64 values above
    /// long.MaxValue are rejected).</summary>
    public long[] ToInt64()
    {
        var result = new long[CheckedCount()];
        ReadOnlySpan<byte> src = Data.Span;
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = DType switch
            {
                SafeTensorsDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(src[(8 * i)..]),
                SafeTensorsDType.U64 => ToSigned(BinaryPrimitives.ReadUInt64LittleEndian(src[(8 * i)..]), i),
                SafeTensorsDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(src[(4 * i)..]),
                SafeTensorsDType.U32 => BinaryPrimitives.ReadUInt32LittleEndian(src[(4 * i)..]),
                SafeTensorsDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(src[(2 * i)..]),
                SafeTensorsDType.U16 => BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]),
                SafeTensorsDType.I8 => (sbyte)src[i],
                SafeTensorsDType.U8 or SafeTensorsDType.Bool => src[i],
                _ => throw new InvalidOperationException(
                    $"tensor '{Name}' has dtype {DType.Code()}; only integer and BOOL tensors convert to int64"),
            };
        }
        return result;
    }

    /// <summary>The raw bytes of a U8 or BOOL tensor (a copy).</summary>
    public byte[] ToUInt8()
    {
        if (DType is not (SafeTensorsDType.U8 or SafeTensorsDType.Bool))
            throw new InvalidOperationException($"tensor '{Name}' has dtype {DType.Code()}, not U8 or BOOL");
        return Data.ToArray();
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {DType.Code()} {ShapeText}";

    private long ToSigned(ulong value, int index) => value <= long.MaxValue ? (long)value
        : throw new OverflowException($"tensor '{Name}' element {index} = {value} does not fit in int64");

    private int CheckedCount() => ElementCount <= Array.MaxLength ? (int)ElementCount
        : throw new InvalidOperationException(
            $"tensor '{Name}' {ShapeText} has {ElementCount} elements, more than one .NET array holds");
}
