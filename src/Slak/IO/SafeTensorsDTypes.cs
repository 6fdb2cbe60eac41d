// Header codes and item sizes of SafeTensorsDType, kept apart from the enum so the enum stays a plain list.
namespace Slak.IO;

/// <summary>Conversions between <see cref="SafeTensorsDType"/> and the header codes, and item sizes.</summary>
public static class SafeTensorsDTypes
{
    private static readonly (SafeTensorsDType Type, string Code, int Size)[] Table =
    [
        (SafeTensorsDType.Bool, "BOOL", 1), (SafeTensorsDType.U8, "U8", 1), (SafeTensorsDType.I8, "I8", 1),
        (SafeTensorsDType.I16, "I16", 2), (SafeTensorsDType.U16, "U16", 2), (SafeTensorsDType.F16, "F16", 2),
        (SafeTensorsDType.BF16, "BF16", 2), (SafeTensorsDType.I32, "I32", 4), (SafeTensorsDType.U32, "U32", 4),
        (SafeTensorsDType.F32, "F32", 4), (SafeTensorsDType.F64, "F64", 8), (SafeTensorsDType.I64, "I64", 8),
        (SafeTensorsDType.U64, "U64", 8),
    ];

    /// <summary>The header code of <paramref name="dtype"/>, e.g. "F32".</summary>
    public static string Code(this SafeTensorsDType dtype) => Find(dtype).Code;

    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int ItemSize(this SafeTensorsDType dtype) => Find(dtype).Size;

    /// <summary>Parses a header code (case-sensitive, as the format defines); false when unknown.</summary>
    public static bool TryParse(string code, out SafeTensorsDType dtype)
    {
        foreach (var row in Table)
        {
            if (row.Code == code)
            {
                dtype = row.Type;
                return true;
            }
        }
        dtype = default;
        return false;
    }

    /// <summary>All known header codes, for error messages.</summary>
    public static string KnownCodes => string.Join(", ", Table.Select(r => r.Code));

    private static (SafeTensorsDType Type, string Code, int Size) Find(SafeTensorsDType dtype)
    {
        foreach (var row in Table)
        {
            if (row.Type == dtype) return row;
        }
        throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a safetensors dtype");
    }
}
