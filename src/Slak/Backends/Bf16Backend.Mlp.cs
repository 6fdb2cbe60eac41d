// The block MLP's two operators (IBackend.Mlp.cs) under bf16: composed from this backend's own fused GEMMs, so the
// products see bf16 operands exactly as they did when F.LinearGeluLinear called them one by one.
namespace Slak.Backends;

internal sealed partial class Bf16Backend
{
    /// <inheritdoc />
    public void MlpForward(Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor b2, Tensor? pre, Tensor y) =>
        MlpComposed.Forward(this, x, w1, b1, w2, b2, pre, y);

    /// <inheritdoc />
    public void MlpBackward(Tensor dy, Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor? pre,
        Tensor dx, Tensor dw1, Tensor db1, Tensor dw2, Tensor db2) =>
        MlpComposed.Backward(this, dy, x, w1, b1, w2, pre, dx, dw1, db1, dw2, db2);
}
