// Argument checks of IBackend.SparsePruneRegrow, shared by the CPU and CUDA implementations so both reject the same
// calls with the same messages.
namespace Slak.Backends;

internal static class SparseRoundChecks
{
    /// <summary>Throws, naming the argument and the values, unless the round's tensors are on
    /// <paramref name="device"/> with the weight's element count and the gradient matches the growth rule.</summary>
    public static void Validate(Device device, Tensor weight, Tensor mask, Tensor? grad, Tensor keep, long numRemove,
                                SparseRegrowth growth)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentNullException.ThrowIfNull(keep);
        if (numRemove < 0) throw new ArgumentOutOfRangeException(nameof(numRemove), numRemove, "numRemove must be >= 0");
        if (!Enum.IsDefined(growth)) throw new ArgumentOutOfRangeException(nameof(growth), growth, "unknown regrowth rule");
        if (weight.Numel > uint.MaxValue)
            throw new ArgumentException($"prune/regrow keys hold 32-bit indices; {weight.Describe()} has {weight.Numel} elements", nameof(weight));
        Same(device, weight, weight, nameof(weight));
        Same(device, weight, mask, nameof(mask));
        Same(device, weight, keep, nameof(keep));
        if (growth == SparseRegrowth.Gradient)
        {
            if (grad is null) throw new ArgumentNullException(nameof(grad), $"gradient regrowth needs the gradient of {weight.Describe()}");
            Same(device, weight, grad, nameof(grad));
        }
        else if (grad is not null)
            throw new ArgumentException($"{growth} regrowth is random and takes no gradient, got {grad.Describe()}", nameof(grad));
        if (ReferenceEquals(mask.Storage, keep.Storage) || ReferenceEquals(weight.Storage, mask.Storage) || ReferenceEquals(weight.Storage, keep.Storage))
            throw new ArgumentException($"weight, mask and keep must be distinct tensors ({weight.Describe()}, {mask.Describe()}, {keep.Describe()})", nameof(keep));
    }

    private static void Same(Device device, Tensor weight, Tensor t, string name)
    {
        if (t.Device != device) throw new ArgumentException($"{name} {t.Describe()} is not on device {device}", name);
        if (t.Numel != weight.Numel)
            throw new ArgumentException($"{name} {t.Describe()} has {t.Numel} elements, the weight {weight.Describe()} has {weight.Numel}", name);
    }
}
