// The fused MLP operators on CUDA, composed from the GEMM (cuBLAS on a GPU, the CPU SGEMM on the emulator) and the
// existing bias, GELU and column-sum kernels: correct, launch for launch what the unfused operators ran. Under bf16
// (IBf16KernelBackend, CudaBackend.Bf16.cs) the same operators run their GEMM through GemmBf16 on 16-bit operands; the
// bias, GELU and bias-gradient epilogues stay float32 in both.
namespace Slak.Backends.Cuda;

partial class CudaBackend // accessibility and sealing are declared in CudaBackend.cs
{
    /// <inheritdoc />
    public void LinearBias(Tensor x, Tensor w, Tensor bias, Tensor y) => LinearBias(x, w, bias, y, bf16: false);

    /// <inheritdoc />
    public void LinearBiasGelu(Tensor x, Tensor w, Tensor bias, Tensor pre, Tensor y) =>
        LinearBiasGelu(x, w, bias, pre, y, bf16: false);

    /// <inheritdoc />
    public void LinearBackwardDataGelu(Tensor dy, Tensor w, Tensor pre, Tensor dpre, Tensor dbias) =>
        LinearBackwardDataGelu(dy, w, pre, dpre, dbias, bf16: false);

    // bf16: the GEMM through TryGemmBf16 (bf16 operands: a held block read directly, else a packed copy; float32
    // accumulation and output), else the float32 GEMM.
    private void LinearGemm(bool bf16, bool transA, bool transB, int m, int n, int k, Tensor a, Tensor b, Tensor c)
    {
        if (bf16) TryGemmBf16(transA, transB, m, n, k, 1f, a, b, 0f, c);
        else Gemm(transA, transB, m, n, k, 1f, a, b, 0f, c);
    }

    private void LinearBias(Tensor x, Tensor w, Tensor bias, Tensor y, bool bf16)
    {
        int outF = w.Size(0), inF = w.Size(1), rows = checked((int)(y.Numel / outF));
        LinearGemm(bf16, false, true, rows, outF, inF, x, w, y);
        AddBiasLastDim(y, bias);
    }

    private void LinearBiasGelu(Tensor x, Tensor w, Tensor bias, Tensor pre, Tensor y, bool bf16)
    {
        LinearBias(x, w, bias, pre, bf16);
        Gelu(pre, y);
    }

    private void LinearBackwardDataGelu(Tensor dy, Tensor w, Tensor pre, Tensor dpre, Tensor dbias, bool bf16)
    {
        int outF = w.Size(0), inF = w.Size(1), rows = checked((int)(dpre.Numel / inF));
        using var da = Tensor.Empty(dpre.ShapeArray, dpre.Device); // gelu_bwd_kernel's dx and dy are __restrict__
        LinearGemm(bf16, false, false, rows, inF, outF, dy, w, da);
        GeluBackward(pre, da, dpre);
        SumToLastDim(dpre, dbias);
    }
}
