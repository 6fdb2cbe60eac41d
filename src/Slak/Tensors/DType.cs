// Element types. Computation is float32 today; the field exists so bf16/fp16 storage can follow without changing
// the Tensor API. Masks and labels are stored as float32 in memory and converted at the file boundary (U8, I64).
namespace Slak;

/// <summary>Element type of a tensor.</summary>
public enum DType
{
    /// <summary>IEEE 754 single precision (the only compute type today).</summary>
    Float32,
    /// <summary>IEEE 754 half precision (storage only, future).</summary>
    Float16,
    /// <summary>bfloat16 (storage only, future).</summary>
    BFloat16,
}

/// <summary>Helpers for <see cref="DType"/>.</summary>
public static class DTypeExtensions
{
    /// <summary>Size of one element in bytes.</summary>
    public static int SizeInBytes(this DType dtype) => dtype switch
    {
        DType.Float32 => 4,
        DType.Float16 or DType.BFloat16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };
}
