// Matrix multiply and dense convolution entry points of the CPU backend (family conv2d). Slak.F validated the
// shapes; these forward to the span kernels: CpuGemm (packed, register-blocked SGEMM) and CpuConv2d (im2col + GEMM,
// patchify fast path). The depthwise convolutions are in CpuBackend.DwConv.cs.
namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, Tensor b, float beta, Tensor c) =>
        CpuGemm.Sgemm(transA, transB, m, n, k, alpha, S(a), transA ? m : k, S(b), transB ? k : n, beta, S(c), n);

    private static Conv2dShape ConvShape(Tensor x, Tensor w, int sh, int sw, int ph, int pw) =>
        new(x.Size(0), x.Size(1), x.Size(2), x.Size(3), w.Size(0), w.Size(2), w.Size(3), sh, sw, ph, pw);

    /// <inheritdoc />
    public void Conv2dForward(Tensor x, Tensor w, Tensor? bias, Tensor y, int strideH, int strideW, int padH, int padW) =>
        CpuConv2d.Forward(ConvShape(x, w, strideH, strideW, padH, padW), S(x), S(w), bias is null ? default : S(bias), S(y));

    /// <inheritdoc />
    public void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int strideH, int strideW, int padH, int padW) =>
        CpuConv2d.BackwardData(ConvShape(dx, w, strideH, strideW, padH, padW), S(dy), S(w), S(dx));

    /// <inheritdoc />
    public void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor? dbias, int strideH, int strideW, int padH, int padW) =>
        CpuConv2d.BackwardFilter(ConvShape(x, dw, strideH, strideW, padH, padW), S(x), S(dy), S(dw), dbias is null ? default : S(dbias));
}
