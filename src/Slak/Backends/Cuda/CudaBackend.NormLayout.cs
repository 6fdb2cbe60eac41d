// LayerNorm fused with the NCHW -> NHWC permute (IBackend.NormLayout.cs) on CUDA, composed from the permute and the
// last-dimension LayerNorm kernels: correct, launch for launch what the unfused permute + LayerNorm ran.
namespace Slak.Backends.Cuda;

partial class CudaBackend // accessibility and sealing are declared in CudaBackend.cs
{
    /// <inheritdoc />
    public void LayerNormNchwToNhwc(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        using var nhwc = Tensor.Empty(y.ShapeArray, y.Device);
        Permute(x, [0, 2, 3, 1], nhwc);
        LayerNormLastDim(nhwc, weight, bias, eps, y, mean, rstd);
    }

    /// <inheritdoc />
    public void LayerNormNchwToNhwcBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                            Tensor dx, Tensor dweight, Tensor dbias)
    {
        using var nhwc = Tensor.Empty(dy.ShapeArray, dy.Device);
        using var dnhwc = Tensor.Empty(dy.ShapeArray, dy.Device);
        Permute(x, [0, 2, 3, 1], nhwc);
        LayerNormLastDimBackward(nhwc, weight, mean, rstd, dy, dnhwc, dweight, dbias);
        Permute(dnhwc, [0, 3, 1, 2], dx);
    }
}
