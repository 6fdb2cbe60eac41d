// LayerNorm over the channels of an NCHW map with the result in NHWC: the same values as
// F.LayerNorm(F.ToChannelsLast(x), weight, bias, eps), as one operator (IBackend.NormLayout.cs), so that the permuted
// copies of the input and of its gradient are not made. The SLaK block's permute + norm.
using Slak.Autograd;

namespace Slak;

public static partial class F
{
    /// <summary>LayerNorm over C of x (N, C, H, W), written channels-last: y (N, H, W, C); weight and
    /// bias (C).</summary>
    internal static Tensor LayerNormToChannelsLast(Tensor x, Tensor weight, Tensor bias, float eps)
    {
        const string op = nameof(LayerNormToChannelsLast);
        Check.Rank(x, 4, op, nameof(x), "(N, C, H, W)");
        int c = x.Size(1);
        Check.Vector(op, weight, nameof(weight), c, x, nameof(x));
        Check.Vector(op, bias, nameof(bias), c, x, nameof(x));
        Check.Positive(eps, op, nameof(eps));
        var y = Tensor.Empty([x.Size(0), x.Size(2), x.Size(3), c], x.Device);
        int pixels = checked(x.Size(0) * x.Size(2) * x.Size(3));
        var mean = Tensor.Empty([pixels], x.Device);
        var rstd = Tensor.Empty([pixels], x.Device);
        var be = x.Backend;
        be.LayerNormNchwToNhwc(x, weight, bias, eps, y, mean, rstd);
        return AutogradEngine.Record(y, op, [x, weight, bias], g =>
        {
            var gx = Like(x); var gw = Like(weight); var gb = Like(bias);
            be.LayerNormNchwToNhwcBackward(x, weight, mean, rstd, g, gx, gw, gb);
            return [gx, gw, gb];
        });
    }
}
