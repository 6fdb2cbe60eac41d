// One tensor of a state dictionary on the host: its shape and float32 data (how checkpoints arrive from safetensors
// before they are copied into a model).
namespace Slak.Models;

/// <summary>A named tensor's shape and data.</summary>
/// <param name="Shape">Dimensions (empty for a scalar).</param>
/// <param name="Data">Row-major elements; length = product of the shape.</param>
public readonly record struct StateEntry(int[] Shape, float[] Data);
