// The fused decomposed depthwise convolution on the CUDA backend (IBackend.DwConv.cs): forward and input gradient
// through dwconv_fused.cu (one kernel for all branches; sparse-aware through per-block live-tap lists compacted from
// the mask, so they can never be stale and need no host round trip) and the weight gradients of all branches
// through its partial-sum kernel (one read of each x tile for all branches, live taps only, then a deterministic
// reduction). Branches whose output gradient is absent are left out. One family for the decomposed operator and the
// single convolution (its one-branch case); the plans fall back to the per-branch kernels of dwconv.cu.
using Slak.Cuda.Kernels;

namespace Slak.Backends.Cuda;

internal sealed partial class CudaBackend
{
    private static DwConvFusedBranch FusedBranch(Tensor w, Tensor? mask) => new(P(w), PorNull(mask), w.Size(2), w.Size(3));

    /// <inheritdoc />
    public void DecomposedDwConvForward(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks,
                                        IReadOnlyList<Tensor> ys)
    {
        var branches = new DwConvFusedBranch[weights.Count];
        var outs = new Slak.Cuda.Runtime.DevicePtr[weights.Count];
        for (int b = 0; b < branches.Length; b++)
        {
            branches[b] = FusedBranch(weights[b], masks[b]);
            outs[b] = P(ys[b]);
        }
        DwConvFusedKernels.Forward(Gpu, outs, P(x), branches, x.Size(0), x.Size(1), x.Size(2), x.Size(3));
    }

    /// <inheritdoc />
    public void DecomposedDwConvForwardSum(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks,
                                           Tensor y)
    {
        var branches = new DwConvFusedBranch[weights.Count];
        for (int b = 0; b < branches.Length; b++) branches[b] = FusedBranch(weights[b], masks[b]);
        DwConvFusedKernels.ForwardSum(Gpu, P(y), P(x), branches, x.Size(0), x.Size(1), x.Size(2), x.Size(3));
    }

    /// <inheritdoc />
    public void DecomposedDwConvBackwardData(IReadOnlyList<Tensor?> dys, IReadOnlyList<Tensor> weights,
                                             IReadOnlyList<Tensor?> masks, Tensor dx)
    {
        var branches = new List<DwConvFusedBranch>(weights.Count);
        var grads = new List<Slak.Cuda.Runtime.DevicePtr>(weights.Count);
        for (int b = 0; b < weights.Count; b++)
        {
            if (dys[b] is not { } dy) continue;
            branches.Add(FusedBranch(weights[b], masks[b]));
            grads.Add(P(dy));
        }
        if (branches.Count == 0)
        {
            Fill(dx, 0f);
            return;
        }
        DwConvFusedKernels.BackwardData(Gpu, P(dx), grads.ToArray(), branches.ToArray(),
                                        dx.Size(0), dx.Size(1), dx.Size(2), dx.Size(3));
    }

    /// <inheritdoc />
    public void DecomposedDwConvBackwardFilter(Tensor x, IReadOnlyList<Tensor?> dys, IReadOnlyList<Tensor?> skipMasks,
                                               IReadOnlyList<Tensor?> dws)
    {
        var branches = new List<DwConvFusedBranch>(dws.Count);
        var grads = new List<Slak.Cuda.Runtime.DevicePtr>(dws.Count);
        var outs = new List<Slak.Cuda.Runtime.DevicePtr>(dws.Count);
        for (int b = 0; b < dws.Count; b++)
        {
            if (dws[b] is not { } dw) continue;
            if (dys[b] is not { } dy)
            {
                Fill(dw, 0f);
                continue;
            }
            branches.Add(FusedBranch(dw, skipMasks[b]));
            grads.Add(P(dy));
            outs.Add(P(dw));
        }
        if (branches.Count == 0) return;
        DwConvFusedKernels.BackwardFilter(Gpu, outs.ToArray(), P(x), grads.ToArray(), branches.ToArray(),
                                          x.Size(0), x.Size(1), x.Size(2), x.Size(3));
    }
}
