// Element types. Tensors hold float32; masks and labels are stored as float32 in memory and converted at the file
// boundary (U8, I64). Checkpoint and array files name their own types (SafeTensorsDType, NpyDType).
namespace Slak;

/// <summary>Element type of a tensor.</summary>
public enum DType
{
    /// <summary>IEEE 754 single precision.</summary>
    Float32,
}
