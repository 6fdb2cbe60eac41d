// The three depthwise passes the kernel-specialisation tests compare between devices: each branch's forward, the
// inference sum and the input gradient, every output poisoned with NaN before its call.
namespace Slak.Tests.Cuda;

internal static class DwConvPasses
{
    /// <summary>Per-branch forward outputs, the inference sum and the input gradient, read back to the host.</summary>
    internal readonly record struct Result(float[][] Ys, float[] Sum, float[] Dx);

    /// <summary>Runs the forward, the inference sum and the input gradient of an N x C x H x W input with branches
    /// <paramref name="ks"/> (weights, masks and per-branch output gradients as host arrays) on
    /// <paramref name="d"/>.</summary>
    internal static Result Run(Device d, int n, int c, int h, int w, (int Kh, int Kw)[] ks, float[] x, float[][] wts,
                               float[][] masks, float[][] dys)
    {
        Tensor T(float[] v, params int[] shape) => Tensor.FromArray(v, shape, d);
        Tensor Poison(params int[] shape) => Tensor.Full(shape, float.NaN, d);
        var xt = T(x, n, c, h, w);
        var wt = ks.Select((k, b) => T(wts[b], c, 1, k.Kh, k.Kw)).ToArray();
        var mt = ks.Select((k, b) => (Tensor?)T(masks[b], c, 1, k.Kh, k.Kw)).ToArray();
        var ys = ks.Select(_ => Poison(n, c, h, w)).ToArray();
        xt.Backend.DecomposedDwConvForward(xt, wt, mt, ys);
        var sum = Poison(n, c, h, w);
        xt.Backend.DecomposedDwConvForwardSum(xt, wt, mt, sum);
        var dx = Poison(n, c, h, w);
        xt.Backend.DecomposedDwConvBackwardData(dys.Select(v => (Tensor?)T(v, n, c, h, w)).ToArray(), wt, mt, dx);
        return new Result(ys.Select(y => y.ToArray()).ToArray(), sum.ToArray(), dx.ToArray());
    }
}
