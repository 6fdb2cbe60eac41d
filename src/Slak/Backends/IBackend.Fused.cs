// Fused pointwise-GEMM operators of the block MLP (Linear -> GELU -> Linear): the bias, the GELU and GELU's derivative
// applied to a GEMM's output as it is produced (the CPU backend runs them as GEMM epilogues on blocks of the output
// still in cache; a backend may also compose them from its GEMM and element-wise kernels). Every tensor is
// contiguous; x is (rows, in), w is (out, in) as in Linear, outputs are overwritten.
namespace Slak.Backends;

internal partial interface IBackend
{
    /// <summary>y = x w^T + bias: x (rows, in), w (out, in), bias (out), y (rows, out).</summary>
    void LinearBias(Tensor x, Tensor w, Tensor bias, Tensor y);

    /// <summary>pre = x w^T + bias and y = GELU(pre) (exact form): x (rows, in), w (out, in), bias (out), pre and y
    /// (rows, out).</summary>
    void LinearBiasGelu(Tensor x, Tensor w, Tensor bias, Tensor pre, Tensor y);

    /// <summary>The input gradient of a Linear layer followed by the GELU's derivative: dpre = (dy w) * GELU'(pre),
    /// and dbias = the sum of dpre over rows: dy (rows, out), w (out, in), pre and dpre (rows, in), dbias
    /// (in).</summary>
    void LinearBackwardDataGelu(Tensor dy, Tensor w, Tensor pre, Tensor dpre, Tensor dbias);
}
