// ITensorCollective on device buffers: the values never leave the device. The sum is an in-place all-reduce enqueued
// on the device's compute stream (IDeviceAllReduce: NCCL on a GPU), so it runs after the kernels that produced the
// values and before the ones queued after it, with no host wait; a mean is that float32 sum scaled by 1/ranks on the
// device. Because NCCL runs on the compute stream it does not run concurrently with later backward kernels: what
// overlaps is the host's work (launching the rest of backward) with the exchange, not two kernels.
namespace Slak.Distributed;

/// <summary>An in-place float32 sum over the ranks of a device tensor, ordered on the device's compute
/// stream.</summary>
internal interface IDeviceAllReduce : IDisposable
{
    /// <summary>What it is, e.g. "NCCL 2.21.5".</summary>
    string Description { get; }

    /// <summary>Number of ranks.</summary>
    int Size { get; }

    /// <summary>Enqueues values = sum over the ranks of values (in place, on the compute stream).</summary>
    void SumInPlace(Tensor values, string what);
}

/// <summary>Reductions of tensors on the device through an <see cref="IDeviceAllReduce"/>.</summary>
internal sealed class DeviceTensorCollective : ITensorCollective
{
    private static readonly IPendingReduction Enqueued = new Done();
    private readonly IDeviceAllReduce _allReduce;

    /// <summary>Reduces through <paramref name="allReduce"/>.</summary>
    public DeviceTensorCollective(IDeviceAllReduce allReduce)
    {
        ArgumentNullException.ThrowIfNull(allReduce);
        _allReduce = allReduce;
    }

    /// <inheritdoc />
    public string Description => $"{_allReduce.Description} on device buffers (compute stream)";

    /// <inheritdoc />
    public bool OnDevice => true;

    /// <inheritdoc />
    public IPendingReduction StartAverage(Tensor values, string what)
    {
        ArgumentNullException.ThrowIfNull(values);
        _allReduce.SumInPlace(values, what);
        if (_allReduce.Size > 1) values.Backend.Scale(values, 1f / _allReduce.Size, values);
        return Enqueued; // stream-ordered: whatever reads the values next is queued after it
    }

    /// <inheritdoc />
    public void Sum(Tensor values, string what)
    {
        ArgumentNullException.ThrowIfNull(values);
        _allReduce.SumInPlace(values, what);
    }

    private sealed class Done : IPendingReduction
    {
        public bool Poll() => true;

        public void Wait() { }
    }
}
