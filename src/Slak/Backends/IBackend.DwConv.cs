// The fused decomposed depthwise convolution (SLaK's large kernel: M x N, N x M and optionally N x N branches, or
// the dense M x M (+ N x N) of the baselines) as backend kernels: one pass over the input for all branches, the
// branch outputs written separately (each feeds its own training BatchNorm), the input gradient of all branches
// summed in one pass, and per-branch weight gradients. Each branch b has weight (C, 1, Kh_b, Kw_b) used as
// weight * mask when its mask is not null; kernel sizes are odd, padding "same", stride 1. This is the backend's only
// depthwise family: a single depthwise convolution (F.DepthwiseConv2d) is the one-branch case.
namespace Slak.Backends;

internal partial interface IBackend
{
    /// <summary>ys[b] = depthwise conv of x (N, C, H, W) with weights[b] * masks[b] (mask null = dense); every ys[b]
    /// has x's shape and is overwritten. Pruned taps (mask 0) are not computed.</summary>
    void DecomposedDwConvForward(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks,
                                 IReadOnlyList<Tensor> ys);

    /// <summary>y = sum over branches of the depthwise conv of x with weights[b] * masks[b] (inference: only the sum is
    /// written, no branch output). Overwrites y.</summary>
    void DecomposedDwConvForwardSum(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks, Tensor y);

    /// <summary>dx = sum over branches b with dys[b] not null of the input gradient of branch b (the correlation of
    /// dys[b] with the flipped weights[b] * masks[b]). Overwrites dx (zeros when every dys[b] is null).</summary>
    void DecomposedDwConvBackwardData(IReadOnlyList<Tensor?> dys, IReadOnlyList<Tensor> weights,
                                      IReadOnlyList<Tensor?> masks, Tensor dx);

    /// <summary>For each b with dws[b] not null: dws[b] = gradient of branch b's weight given x and dys[b]
    /// (zeros when dys[b] is null). Where <paramref name="skipMasks"/>[b] is not null only its live taps are
    /// computed and every other tap is written as exactly 0; otherwise the dense gradient is written.</summary>
    void DecomposedDwConvBackwardFilter(Tensor x, IReadOnlyList<Tensor?> dys, IReadOnlyList<Tensor?> skipMasks,
                                        IReadOnlyList<Tensor?> dws);
}
