// Element types Slak reads and writes in .npy files (little-endian only).
namespace Slak.IO;

/// <summary>Element type of an .npy array: the three numpy descriptors Slak supports.</summary>
public enum NpyDType
{
    /// <summary>'&lt;f4': little-endian float32.</summary>
    Float32,
    /// <summary>'&lt;f8': little-endian float64.</summary>
    Float64,
    /// <summary>'&lt;i8': little-endian int64.</summary>
    Int64,
}
