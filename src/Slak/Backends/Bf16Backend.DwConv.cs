// The depthwise convolutions under bf16 (see Bf16Backend.cs): input, weights and incoming gradients read as bf16
// (masks as they are: 0/1 is exact), fp32 accumulation, forward outputs stored as bf16, gradients fp32. These are the
// points where the bf16 instantiations of the depthwise kernels (cuda/kernels/dwconv_fused.cu, dw_store_t) read and
// write bf16. Where the backend has real bf16 kernels (IBf16KernelBackend: CUDA), the forward and the inference sum
// run them (same rounding points), and so does the weight gradient where a kernel with a bf16 x takes the shape
// (the bf16-x instances of dwconv_fused_wgrad_kernel and of dwconv_small_wgrad.cu); the input gradient keeps the
// rounding path: its operands are the incoming gradients and the weights, neither held as bf16, and its output (an
// activation gradient) stays float32 here while the bf16 instantiation would store it as bf16.
namespace Slak.Backends;

internal sealed partial class Bf16Backend
{
    /// <inheritdoc/>
    public void DecomposedDwConvForward(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks,
                                        IReadOnlyList<Tensor> ys)
    {
        if (_inner is IBf16KernelBackend real && real.TryDecomposedDwConvForwardBf16(x, weights, masks, ys)) return;
        using (var o = Bf16Operands()) _inner.DecomposedDwConvForward(o.Of(x), o.Of(weights), masks, ys);
        foreach (var y in ys) Store(y);
    }

    /// <inheritdoc/>
    public void DecomposedDwConvForwardSum(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks, Tensor y)
    {
        if (_inner is IBf16KernelBackend real && real.TryDecomposedDwConvForwardSumBf16(x, weights, masks, y)) return;
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
        var rounded = o.OfOrNull(dys);
        // A weight gradient with a 16-bit x (CUDA: the fused and small-map kernels) reads a held x as it is held (no
        // widened copy), else a packed 16-bit copy; dy stays a float32 copy of its bf16 values (gradients are float32).
        if (_inner is IBf16KernelBackend real && real.TryDecomposedDwConvBackwardFilterBf16(x, rounded, skipMasks, dws))
            return;
        _inner.DecomposedDwConvBackwardFilter(o.Of(x), rounded, skipMasks, dws);
    }
}
