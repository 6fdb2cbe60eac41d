// LayerNorm fused with the layout change around it: the SLaK block permutes its NCHW map to NHWC and normalises
// the channels of every pixel (models/SLaK.py Block: permute(0, 2, 3, 1) then LayerNorm). One operator reads the
// NCHW input and writes the normalised NHWC output (and, backward, reads the NHWC gradient and writes the NCHW input
// gradient), so the permuted copy of the input and of its gradient are never materialised. A backend may also
// compose it from its permute and last-dimension LayerNorm kernels. Every tensor is contiguous.
namespace Slak.Backends;

internal partial interface IBackend
{
    /// <summary>y = LayerNorm over C of x permuted to channels-last: x (N, C, H, W), weight and bias (C), y (N, H, W,
    /// C); saves the mean and 1/std of every pixel in mean and rstd (N * H * W, in NHWC pixel order).</summary>
    void LayerNormNchwToNhwc(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd);

    /// <summary>Backward of <see cref="LayerNormNchwToNhwc"/>: dy (N, H, W, C); dx (N, C, H, W), dweight and dbias (C)
    /// overwritten.</summary>
    void LayerNormNchwToNhwcBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                     Tensor dx, Tensor dweight, Tensor dbias);
}
