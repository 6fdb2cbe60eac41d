// The fused MLP operators on CUDA, composed from the GEMM (cuBLAS on a GPU, the CPU SGEMM on the emulator) and the
// existing bias, GELU and column-sum kernels: correct, launch for launch what the unfused operators ran.
namespace Slak.Backends.Cuda;

partial class CudaBackend // accessibility and sealing are declared in CudaBackend.cs
{
    /// <inheritdoc />
    public void LinearBias(Tensor x, Tensor w, Tensor bias, Tensor y)
    {
        int outF = w.Size(0), inF = w.Size(1), rows = checked((int)(y.Numel / outF));
        Gemm(false, true, rows, outF, inF, 1f, x, w, 0f, y);
        AddBiasLastDim(y, bias);
    }

    /// <inheritdoc />
    public void LinearBiasGelu(Tensor x, Tensor w, Tensor bias, Tensor pre, Tensor y)
    {
        LinearBias(x, w, bias, pre);
        Gelu(pre, y);
    }

    /// <inheritdoc />
    public void LinearBackwardDataGelu(Tensor dy, Tensor w, Tensor pre, Tensor dpre, Tensor dbias)
    {
        int outF = w.Size(0), inF = w.Size(1), rows = checked((int)(dpre.Numel / inF));
        using var da = Tensor.Empty(dpre.ShapeArray, dpre.Device); // gelu_bwd_kernel's dx and dy are __restrict__
        Gemm(false, false, rows, inF, outF, 1f, dy, w, 0f, da);
        GeluBackward(pre, da, dpre);
        SumToLastDim(dpre, dbias);
    }
}
