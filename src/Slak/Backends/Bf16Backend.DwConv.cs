// The depthwise convolutions under bf16 (see Bf16Backend.cs): input, weights and incoming gradients read as bf16
// (masks as they are: 0/1 is exact), fp32 accumulation, forward outputs stored as bf16, gradients fp32. These are the
// points where the bf16 instantiations of the depthwise kernels (cuda/kernels/dwconv_fused.cu, dw_store_t) read and
// write bf16.
namespace Slak.Backends;

internal sealed partial class Bf16Backend
{
    /// <inheritdoc/>
    public void DwConv2dForward(Tensor x, Tensor w, Tensor? mask, Tensor y)
    {
        using (var o = Bf16Operands()) _inner.DwConv2dForward(o.Of(x), o.Of(w), mask, y);
        Store(y);
    }

    /// <inheritdoc/>
    public void DwConv2dBackwardData(Tensor dy, Tensor w, Tensor? mask, Tensor dx)
    {
        using var o = Bf16Operands();
        _inner.DwConv2dBackwardData(o.Of(dy), o.Of(w), mask, dx);
    }

    /// <inheritdoc/>
    public void DwConv2dBackwardFilter(Tensor x, Tensor dy, Tensor? mask, Tensor dw, bool skipMasked)
    {
        using var o = Bf16Operands();
        _inner.DwConv2dBackwardFilter(o.Of(x), o.Of(dy), mask, dw, skipMasked);
    }

    /// <inheritdoc/>
    public void DecomposedDwConvForward(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks,
                                        IReadOnlyList<Tensor> ys)
    {
        using (var o = Bf16Operands()) _inner.DecomposedDwConvForward(o.Of(x), o.Of(weights), masks, ys);
        foreach (var y in ys) Store(y);
    }

    /// <inheritdoc/>
    public void DecomposedDwConvForwardSum(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks, Tensor y)
    {
        using (var o = Bf16Operands()) _inner.DecomposedDwConvForwardSum(o.Of(x), o.Of(weights), masks, y);
        Store(y);
    }

    /// <inheritdoc/>
    public void DecomposedDwConvBackwardData(IReadOnlyList<Tensor?> dys, IReadOnlyList<Tensor> weights,
                                             IReadOnlyList<Tensor?> masks, Tensor dx)
    {
        using var o = Bf16Operands();
        _inner.DecomposedDwConvBackwardData(o.OfOrNull(dys), o.Of(weights), masks, dx);
    }

    /// <inheritdoc/>
    public void DecomposedDwConvBackwardFilter(Tensor x, IReadOnlyList<Tensor?> dys, IReadOnlyList<Tensor?> skipMasks,
                                               IReadOnlyList<Tensor?> dws)
    {
        using var o = Bf16Operands();
        _inner.DecomposedDwConvBackwardFilter(o.Of(x), o.OfOrNull(dys), skipMasks, dws);
    }
}
