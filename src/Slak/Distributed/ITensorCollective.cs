// Where data-parallel training reduces tensors (gradient buckets, SyncBatchNorm statistics): on host buffers over
// MPI (HostTensorCollective: any device; the values travel through host memory) or on device buffers (
// DeviceTensorCollective: NCCL on the compute stream when every rank is on cuda, chosen by CollectiveChoice). The
// training code sees only this interface.
namespace Slak.Distributed;

/// <summary>Collective reductions of tensors on the training device.</summary>
internal interface ITensorCollective
{
    /// <summary>What reduces, for the start-up line, e.g. "MPI on host buffers (Open MPI v4.1.4)".</summary>
    string Description { get; }

    /// <summary>True when the values stay on the device (no host round trip).</summary>
    bool OnDevice { get; }

    /// <summary>Starts replacing <paramref name="values"/> (a contiguous float32 tensor on the training device) on
    /// every rank with the mean over the ranks. <paramref name="values"/> must not be read or written until the
    /// returned reduction has completed (<see cref="IPendingReduction.Wait"/>).</summary>
    IPendingReduction StartAverage(Tensor values, string what);

    /// <summary>Replaces <paramref name="values"/> on every rank with the sum over the ranks (complete when the
    /// next operation on the tensor's device runs).</summary>
    void Sum(Tensor values, string what);
}
