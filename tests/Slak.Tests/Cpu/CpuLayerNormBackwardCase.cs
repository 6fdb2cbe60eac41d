// The set-up the CPU LayerNorm backward tests share (CpuLayerNormChannelsFirstBackwardTests,
// CpuLayerNormLayoutBackwardTests): random inputs for an N x C x H x W LayerNorm over the channels, the forward run
// once for the saved statistics, and the backward run into NaN-poisoned outputs, in either of the two layouts.
using Slak.Backends.Cpu;
using Slak.Tests.Support;
using static Slak.Tests.Support.CpuTensors;

namespace Slak.Tests.Cpu;

/// <summary>Which CPU LayerNorm over the channels of an NCHW input a <see cref="CpuLayerNormBackwardCase"/> runs.</summary>
internal enum LayerNormOverChannels
{
    /// <summary>IBackend.LayerNormChannelsFirst: y and dy NCHW, statistics (N, H, W).</summary>
    ChannelsFirst,

    /// <summary>IBackend.LayerNormNchwToNhwc, fused with the permute: y and dy NHWC, statistics (N*H*W).</summary>
    NchwToNhwc,
}

/// <summary>One drawn case: the host inputs (for float64 references), the forward's saved statistics, and
/// <see cref="Backward"/>, which may be run repeatedly (for example under different path switches).</summary>
internal sealed class CpuLayerNormBackwardCase
{
    /// <summary>The forward's epsilon.</summary>
    internal const float Eps = 1e-6f;

    private readonly LayerNormOverChannels _layout;
    private readonly int _n, _c, _h, _w;
    private readonly Tensor _x, _weight, _mean, _rstd, _dy;

    /// <summary>x, NCHW.</summary>
    internal float[] X { get; }

    /// <summary>The LayerNorm weight, (C).</summary>
    internal float[] Weight { get; }

    /// <summary>The output gradient, in the layout's y layout.</summary>
    internal float[] Dy { get; }

    /// <summary>The forward's y (in its layout), mean and rstd, as it wrote them.</summary>
    internal float[][] Forward { get; }

    private CpuLayerNormBackwardCase(LayerNormOverChannels layout, int n, int c, int h, int w, float[] x, float[] weight,
                                     float[] bias, float[] dy)
    {
        (_layout, _n, _c, _h, _w) = (layout, n, c, h, w);
        (X, Weight, Dy) = (x, weight, dy);
        _x = CpuCopy(x, n, c, h, w);
        _weight = CpuCopy(weight, c);
        var b = CpuCopy(bias, c);
        bool cf = layout == LayerNormOverChannels.ChannelsFirst;
        _dy = cf ? CpuCopy(dy, n, c, h, w) : CpuCopy(dy, n, h, w, c);
        var y = cf ? Nan(n, c, h, w) : Nan(n, h, w, c);
        _mean = cf ? Nan(n, h, w) : Nan(n * h * w);
        _rstd = cf ? Nan(n, h, w) : Nan(n * h * w);
        if (cf)
            CpuBackend.Instance.LayerNormChannelsFirst(_x, _weight, b, Eps, y, _mean, _rstd);
        else
            CpuBackend.Instance.LayerNormNchwToNhwc(_x, _weight, b, Eps, y, _mean, _rstd);
        Forward = [y.ToArray(), _mean.ToArray(), _rstd.ToArray()];
    }

    /// <summary>Draws, in this order, x ~ N(<paramref name="xMean"/>, <paramref name="xStd"/>) of N x C x H x W, the
    /// weight and the bias ~ N(0, 1) of C, and dy ~ N(0, 1), then runs the layout's forward (outputs poisoned).</summary>
    internal static CpuLayerNormBackwardCase Draw(TestRandom rng, LayerNormOverChannels layout, int n, int c, int h, int w,
                                                  double xStd, double xMean)
    {
        var x = rng.NormalArray(n * c * h * w, xStd, xMean);
        var weight = rng.NormalArray(c);
        var bias = rng.NormalArray(c);
        var dy = rng.NormalArray(n * c * h * w);
        return new CpuLayerNormBackwardCase(layout, n, c, h, w, x, weight, bias, dy);
    }

    /// <summary>Runs the layout's backward into NaN-poisoned dx (NCHW), dweight and dbias and reads them back.</summary>
    internal (float[] Dx, float[] Dw, float[] Db) Backward()
    {
        var dx = Nan(_n, _c, _h, _w);
        var dw = Nan(_c);
        var db = Nan(_c);
        if (_layout == LayerNormOverChannels.ChannelsFirst)
            CpuBackend.Instance.LayerNormChannelsFirstBackward(_x, _weight, _mean, _rstd, _dy, dx, dw, db);
        else
            CpuBackend.Instance.LayerNormNchwToNhwcBackward(_x, _weight, _mean, _rstd, _dy, dx, dw, db);
        return (dx.ToArray(), dw.ToArray(), db.ToArray());
    }
}
