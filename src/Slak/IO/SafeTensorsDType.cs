// Element types of the safetensors format. The codes ("F32", "BF16", ...) are the strings used in the JSON header.
namespace Slak.IO;

/// <summary>Element type of a safetensors tensor; <see cref="SafeTensorsDTypes"/> maps it to and from the header
/// codes and gives the item size.</summary>
public enum SafeTensorsDType
{
    /// <summary>"BOOL": one byte, 0 or 1.</summary>
    Bool,
    /// <summary>"U8": unsigned byte.</summary>
    U8,
    /// <summary>"I8": signed byte.</summary>
    I8,
    /// <summary>"I16": little-endian signed 16-bit.</summary>
    I16,
    /// <summary>"U16": little-endian unsigned 16-bit.</summary>
    U16,
    /// <summary>"F16": IEEE half precision.</summary>
    F16,
    /// <summary>"BF16": bfloat16 (the upper half of a float32).</summary>
    BF16,
    /// <summary>"I32": little-endian signed 32-bit.</summary>
    I32,
    /// <summary>"U32": little-endian unsigned 32-bit.</summary>
    U32,
    /// <summary>"F32": IEEE single precision.</summary>
    F32,
    /// <summary>"F64": IEEE double precision.</summary>
    F64,
    /// <summary>"I64": little-endian signed 64-bit.</summary>
    I64,
    /// <summary>"U64": little-endian unsigned 64-bit.</summary>
    U64,
}
