// The block MLP's two operators (IBackend.Mlp.cs) composed from a backend's fused GEMMs (IBackend.Fused.cs), with
// the hidden tensors as whole temporaries: what F.LinearGeluLinear ran before the MLP became one operator. The CUDA
// and bf16 backends run this; the CPU backend runs it where its row-block form does not pay (CpuBackend.Conv2d.Mlp.cs).
namespace Slak.Backends;

internal static class MlpComposed
{
    /// <inheritdoc cref="IBackend.MlpForward"/>
    public static void Forward(IBackend be, Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor b2, Tensor? pre, Tensor y)
    {
        var (rows, _, hidden, _) = Dims(x, w1, w2);
        using var act = Tensor.Empty([rows, hidden], x.Device);
        var preT = pre ?? Tensor.Empty([rows, hidden], x.Device);
        try
        {
            be.LinearBiasGelu(x, w1, b1, preT, act);
            be.LinearBias(act, w2, b2, y);
        }
        finally
        {
            if (pre is null) preT.Dispose();
        }
    }

    /// <inheritdoc cref="IBackend.MlpBackward"/>
    public static void Backward(IBackend be, Tensor dy, Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor? pre,
        Tensor dx, Tensor dw1, Tensor db1, Tensor dw2, Tensor db2)
    {
        var (rows, inF, hidden, outF) = Dims(x, w1, w2);
        using var act = Tensor.Empty([rows, hidden], x.Device);
        using var dpre = Tensor.Empty([rows, hidden], x.Device);
        var preT = pre ?? Tensor.Empty([rows, hidden], x.Device);
        try
        {
            if (pre is null) be.LinearBiasGelu(x, w1, b1, preT, act);
            else be.Gelu(pre, act);
            be.Gemm(true, false, outF, hidden, rows, 1f, dy, act, 0f, dw2);
            be.SumToLastDim(dy, db2);
            be.LinearBackwardDataGelu(dy, w2, preT, dpre, db1);
            be.Gemm(false, false, rows, inF, hidden, 1f, dpre, w1, 0f, dx);
            be.Gemm(true, false, hidden, inF, rows, 1f, dpre, x, 0f, dw1);
        }
        finally
        {
            if (pre is null) preT.Dispose();
        }
    }

    /// <summary>(rows, in, hidden, out) of an MLP call.</summary>
    public static (int Rows, int In, int Hidden, int Out) Dims(Tensor x, Tensor w1, Tensor w2)
    {
        int inF = w1.Size(1), hidden = w1.Size(0), outF = w2.Size(0);
        return (checked((int)(x.Numel / Math.Max(inF, 1))), inF, hidden, outF);
    }
}
