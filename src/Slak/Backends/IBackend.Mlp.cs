// The block MLP (Linear -> GELU -> Linear) as one backend operator each way, so that a backend can keep the hidden
// activations out of memory: the CPU backend runs both passes over blocks of rows whose hidden tensors stay in L2
// (CpuMlp.cs); CUDA and bf16 compose their existing fused GEMMs (MlpComposed.cs). Every tensor is contiguous; x is
// (rows, in), w1 (hidden, in), w2 (out, hidden) as in Linear; outputs are overwritten.
namespace Slak.Backends;

internal partial interface IBackend
{
    /// <summary>y = GELU(x w1^T + b1) w2^T + b2 (exact GELU): x (rows, in), y (rows, out). When
    /// <paramref name="pre"/> (rows, hidden) is given it receives x w1^T + b1 for the backward pass; null saves
    /// nothing (inference, or a backward that recomputes it).</summary>
    void MlpForward(Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor b2, Tensor? pre, Tensor y);

    /// <summary>All five gradients of <see cref="MlpForward"/> from dy (rows, out): dx (rows, in), dw1 (hidden, in),
    /// db1 (hidden), dw2 (out, hidden), db2 (out). <paramref name="pre"/> is the forward's pre-activation, or null to
    /// recompute it from x, w1 and b1.</summary>
    void MlpBackward(Tensor dy, Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor? pre,
        Tensor dx, Tensor dw1, Tensor db1, Tensor dw2, Tensor db2);
}
