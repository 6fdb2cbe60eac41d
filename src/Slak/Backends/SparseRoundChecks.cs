// The invariants of IBackend.SparsePruneRegrow, shared by the CPU and CUDA implementations. The arguments are not
// a user's: Masking (the public edge, which checks its parameters once) builds them, so these are debug assertions
// that document the contract, not argument validation.
using System.Diagnostics;

namespace Slak.Backends;

internal static class SparseRoundChecks
{
    /// <summary>Asserts (debug builds) that the round's tensors are on <paramref name="device"/> with the weight's
    /// element count (at most 2^32: the keys hold 32-bit indices), distinct, and that the gradient matches the
    /// growth rule.</summary>
    [Conditional("DEBUG")]
    public static void Assert(Device device, Tensor weight, Tensor mask, Tensor? grad, Tensor keep, long numRemove,
                              SparseRegrowth growth)
    {
        Debug.Assert(numRemove >= 0, "numRemove must be >= 0");
        Debug.Assert(Enum.IsDefined(growth), "unknown regrowth rule");
        Debug.Assert(weight.Numel <= uint.MaxValue, "prune/regrow keys hold 32-bit indices");
        Debug.Assert(weight.Device == device && mask.Device == device && keep.Device == device, "tensors on another device");
        Debug.Assert(mask.Numel == weight.Numel && keep.Numel == weight.Numel, "mask and keep must have the weight's size");
        Debug.Assert((growth == SparseRegrowth.Gradient) == (grad is not null), "a gradient exactly for gradient regrowth");
        Debug.Assert(grad is null || (grad.Device == device && grad.Numel == weight.Numel), "the gradient must match the weight");
        Debug.Assert(!ReferenceEquals(mask.Storage, keep.Storage) && !ReferenceEquals(weight.Storage, mask.Storage)
                     && !ReferenceEquals(weight.Storage, keep.Storage), "weight, mask and keep must be distinct tensors");
    }
}
