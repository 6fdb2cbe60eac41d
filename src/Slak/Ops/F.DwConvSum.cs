// The inference form of the decomposed depthwise convolution: the sum of every branch's output plus an optional
// per-channel bias, written as one output (no tensor per branch, no additions). ReparamLargeKernelConv uses it when
// its BatchNorms are folded into the branch weights (no graph recorded), the bias being the folded shifts.
using Slak.Autograd;

namespace Slak;

public static partial class F
{
    /// <summary>y = sum over branches b of the depthwise convolution of x (N, C, H, W) with weights[b] * masks[b]
    /// ("same" zero padding, stride 1), plus bias[c] on channel c when <paramref name="bias"/> (C) is given; pruned
    /// taps are skipped. Inference only: throws when autograd would record (train with
    /// <see cref="DecomposedDepthwiseConv2d"/>).</summary>
    internal static Tensor DecomposedDepthwiseConv2dSum(Tensor x, IReadOnlyList<Tensor> weights,
        IReadOnlyList<Tensor?>? masks = null, Tensor? bias = null)
    {
        const string op = nameof(DecomposedDepthwiseConv2dSum);
        var (w, m, _) = CheckDecomposed(op, x, weights, masks, null);
        if (bias is not null) Check.Vector(op, bias, nameof(bias), x.Size(1), x, nameof(x));
        if (AutogradEngine.WillRecord([x, .. w, bias]))
            throw new InvalidOperationException(
                $"{op} has no gradient; an input requires one (use DecomposedDepthwiseConv2d, or GradMode.NoGrad())");
        var y = Like(x);
        var be = x.Backend;
        be.DecomposedDwConvForwardSum(x, w, m, y);
        if (bias is not null) be.AddBiasChannels(y, bias);
        return y;
    }
}
