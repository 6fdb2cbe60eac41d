// A stand-in for NCCL where there is no GPU (tests on cuda-emu, SLAK_DP_FAKE_NCCL=1): the same IDeviceAllReduce
// contract (an in-place float32 sum of a device tensor, every rank the same bits) carried out by copying the values to
// the host, summing them over MPI in rank order in float64 and rounding to float32 once. It exercises everything the
// NCCL path does on the training side (device buckets, the scaling on the device, SyncBatchNorm's device statistics)
// except the NCCL call itself.
namespace Slak.Distributed;

/// <summary>Sums device tensors through host copies over <see cref="ICollectives"/>.</summary>
internal sealed class StagedDeviceAllReduce(ICollectives collectives) : IDeviceAllReduce
{
    /// <summary>Environment variable: 1 selects this stand-in on cuda-emu ranks (tests).</summary>
    public const string Variable = "SLAK_DP_FAKE_NCCL";

    /// <inheritdoc />
    public string Description => "an NCCL stand-in (host-staged MPI sums, SLAK_DP_FAKE_NCCL)";

    /// <inheritdoc />
    public int Size => collectives.Size;

    /// <inheritdoc />
    public void SumInPlace(Tensor values, string what)
    {
        ArgumentNullException.ThrowIfNull(values);
        var host = values.ToArray();
        var sums = new double[host.Length];
        for (int i = 0; i < host.Length; i++) sums[i] = host[i];
        collectives.Sum(sums, what);
        for (int i = 0; i < host.Length; i++) host[i] = (float)sums[i];
        values.Backend.CopyFromHost(host, values);
    }

    /// <inheritdoc />
    public void Dispose() { }
}
