// Rounding for mixed precision (Bf16Backend, docs/mixed-precision.md): values rounded to bfloat16 and kept in
// float32 storage, so that every backend stores exactly the values a bf16 tensor would hold.
namespace Slak.Backends;

internal partial interface IBackend
{
    /// <summary>y = x rounded to the nearest bfloat16 (ties to even; NaN stays NaN), stored as float32; same element
    /// count, y may alias x.</summary>
    void RoundToBf16(Tensor x, Tensor y);
}
