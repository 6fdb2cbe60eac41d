// IDeviceAllReduce on NCCL (Slak.Cuda.Interop.Nccl): rank 0 creates the unique id, MPI broadcasts its 128 bytes
// (ICollectives.Broadcast), every rank joins the communicator with its rank on its CUDA device, and each sum is one
// in-place ncclAllReduce (float32, ncclSum) on the device's compute stream. NCCL's ring/tree order is fixed for a given
// rank count, topology and size, so a run repeats bit for bit; it is a float32 sum, not the host path's float64.
using Slak.Backends.Cuda;
using Slak.Cuda.Interop;
using Slak.Cuda.Runtime;

namespace Slak.Distributed;

/// <summary>Sums device tensors over NCCL.</summary>
internal sealed class NcclAllReduce : IDeviceAllReduce
{
    private readonly Nccl _nccl;
    private readonly CudaDriverDevice _device;
    private nint _comm;

    private NcclAllReduce(Nccl nccl, CudaDriverDevice device, nint comm, int size)
    {
        _nccl = nccl;
        _device = device;
        _comm = comm;
        Size = size;
        Description = $"NCCL {nccl.VersionString()}";
    }

    /// <summary>Joins every rank of <paramref name="collectives"/> into one NCCL communicator on the GPU of
    /// <paramref name="device"/> (rank 0's unique id is broadcast over MPI). Collective: every rank must
    /// call it.</summary>
    public static NcclAllReduce Create(ICollectives collectives, Device device)
    {
        ArgumentNullException.ThrowIfNull(collectives);
        if (device.Type != DeviceType.Cuda) throw new ArgumentException($"NCCL needs a cuda device, got {device}", nameof(device));
        var gpu = ((CudaBackend)Backends.BackendRegistry.For(device)).Gpu as CudaDriverDevice
            ?? throw new InvalidOperationException($"device {device} is not a CUDA driver device");
        var nccl = Nccl.Api;
        var id = collectives.Rank == 0 ? nccl.NewUniqueId() : new byte[Nccl.UniqueIdBytes];
        collectives.Broadcast(id, 0, "the NCCL unique id");
        nint comm = nccl.InitRank(collectives.Size, id, collectives.Rank);
        return new NcclAllReduce(nccl, gpu, comm, collectives.Size);
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public int Size { get; }

    /// <inheritdoc />
    public void SumInPlace(Tensor values, string what)
    {
        ArgumentNullException.ThrowIfNull(values);
        ObjectDisposedException.ThrowIf(_comm == 0, this);
        var storage = values.Storage as CudaStorage ?? throw new ArgumentException($"{what}: {values.Describe()} is not on a cuda device", nameof(values));
        var pointer = storage.Pointer.Offset(values.Offset * sizeof(float));
        _nccl.AllReduceSumInPlace(pointer.Address, values.Numel, _comm, _device.StreamHandle);
    }

    /// <summary>Destroys the communicator.</summary>
    public void Dispose()
    {
        if (_comm == 0) return;
        _nccl.Destroy(_comm);
        _comm = 0;
    }
}
