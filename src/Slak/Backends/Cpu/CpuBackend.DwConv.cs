// The depthwise convolutions on the CPU backend (family dwconv, IBackend.DwConv.cs): one family for the decomposed
// operator and the single convolution (its one-branch case). The calls map tensors onto CpuDwConvDecomposed, which
// loads each input plane once for all branches. Masked branches run the sparse-aware kernels over the live-tap list
// of their mask, cached per mask tensor and rebuilt only when its contents change (CpuDwConvTapCache). Branches whose
// output gradient is absent (null) are left out of the backward passes.
namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    private static ReadOnlyMemory<float> Mem(Tensor t) =>
        ((CpuStorage)t.Storage).Array.AsMemory(checked((int)t.Offset), checked((int)t.Numel));

    private static Memory<float> MemW(Tensor t) =>
        ((CpuStorage)t.Storage).Array.AsMemory(checked((int)t.Offset), checked((int)t.Numel));

    private static CpuDwConvBranch Branch(Tensor w, Tensor? mask) => new(w.Size(2), w.Size(3), Mem(w),
        mask is null ? default : Mem(mask), mask is null ? null : CpuDwConvTapCache.For(mask));

    /// <inheritdoc />
    public void DecomposedDwConvForward(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks,
                                        IReadOnlyList<Tensor> ys)
    {
        var branches = new CpuDwConvBranch[weights.Count];
        var outs = new Memory<float>[weights.Count];
        for (int b = 0; b < branches.Length; b++)
        {
            branches[b] = Branch(weights[b], masks[b]);
            outs[b] = MemW(ys[b]);
        }
        CpuDwConvDecomposed.Forward(x.Size(0), x.Size(1), x.Size(2), x.Size(3), branches, S(x), outs,
                                    Span<float>.Empty);
    }

    /// <inheritdoc />
    public void DecomposedDwConvForwardSum(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks,
                                           Tensor y)
    {
        var branches = new CpuDwConvBranch[weights.Count];
        for (int b = 0; b < branches.Length; b++) branches[b] = Branch(weights[b], masks[b]);
        CpuDwConvDecomposed.Forward(x.Size(0), x.Size(1), x.Size(2), x.Size(3), branches, S(x), [], S(y));
    }

    /// <inheritdoc />
    public void DecomposedDwConvBackwardData(IReadOnlyList<Tensor?> dys, IReadOnlyList<Tensor> weights,
                                             IReadOnlyList<Tensor?> masks, Tensor dx)
    {
        var branches = new List<CpuDwConvBranch>(weights.Count);
        var grads = new List<ReadOnlyMemory<float>>(weights.Count);
        for (int b = 0; b < weights.Count; b++)
        {
            if (dys[b] is not { } dy) continue;
            branches.Add(Branch(weights[b], masks[b]));
            grads.Add(Mem(dy));
        }
        if (branches.Count == 0)
        {
            S(dx).Clear();
            return;
        }
        CpuDwConvDecomposed.BackwardData(dx.Size(0), dx.Size(1), dx.Size(2), dx.Size(3), branches, grads, S(dx));
    }

    /// <inheritdoc />
    public void DecomposedDwConvBackwardFilter(Tensor x, IReadOnlyList<Tensor?> dys, IReadOnlyList<Tensor?> skipMasks,
                                               IReadOnlyList<Tensor?> dws)
    {
        var branches = new List<CpuDwConvBranch>(dws.Count);
        var grads = new List<ReadOnlyMemory<float>>(dws.Count);
        var outs = new List<Memory<float>>(dws.Count);
        for (int b = 0; b < dws.Count; b++)
        {
            if (dws[b] is not { } dw) continue;
            if (dys[b] is not { } dy)
            {
                S(dw).Clear();
                continue;
            }
            // Without a skip mask the branch is dense: no mask, no tap list (skipMasked then means "all taps").
            branches.Add(Branch(dw, skipMasks[b]));
            grads.Add(Mem(dy));
            outs.Add(MemW(dw));
        }
        if (branches.Count == 0) return;
        CpuDwConvDecomposed.BackwardFilter(x.Size(0), x.Size(1), x.Size(2), x.Size(3), branches, S(x), grads, outs,
                                           skipMasked: true);
    }
}
