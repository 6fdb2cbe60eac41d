// The MLP of a ConvNeXt/SLaK block, Linear -> GELU -> Linear, as one operator, so that the backend can apply the
// element-wise work inside the GEMMs (IBackend.Fused.cs): the first GEMM's output gets its bias and the GELU while
// it is produced, the second GEMM's bias likewise, and in the backward pass the GEMM that produces the gradient of the
// GELU's output multiplies it by GELU's derivative and reduces the first bias's gradient on the way. Same values as
// F.Linear(F.Gelu(F.Linear(x, w1, b1)), w2, b2) up to float32 summation order (the bias gradient).
// By default the whole MLP is one backend operator each way (IBackend.Mlp.cs: on the CPU over blocks of rows whose
// hidden tensors stay in cache, CpuMlp.cs), which keeps only the pre-activation for the backward pass (or nothing,
// MlpRecompute); MlpOneOperator = false (SLAK_MLP_FUSED=0) runs the per-GEMM composition below, the path before.
using Slak.Autograd;

namespace Slak;

public static partial class F
{
    /// <summary>True (the default; SLAK_MLP_FUSED=0 sets false): <see cref="LinearGeluLinear"/> runs the backend's
    /// MlpForward / MlpBackward; false: the fused GEMMs one by one with act and dpre as whole tensors. Internal and
    /// settable so that the bench (mlp-step) and the tests run both in one process.</summary>
    internal static bool MlpOneOperator { get; set; } = Environment.GetEnvironmentVariable("SLAK_MLP_FUSED") != "0";

    /// <summary>With <see cref="MlpOneOperator"/>: false (the default) keeps the pre-activation (rows x hidden) for
    /// the backward pass; true (SLAK_MLP_RECOMPUTE=1) keeps nothing and the backward recomputes the first product
    /// (less memory, one more GEMM). Internal and settable for the bench and the tests.</summary>
    internal static bool MlpRecompute { get; set; } = Environment.GetEnvironmentVariable("SLAK_MLP_RECOMPUTE") == "1";

    /// <summary>y = GELU(x w1^T + b1) w2^T + b2 over the last dimension (exact GELU): x (..., in), weight1 (hidden,
    /// in), bias1 (hidden), weight2 (out, hidden), bias2 (out); y (..., out).</summary>
    public static Tensor LinearGeluLinear(Tensor x, Tensor weight1, Tensor bias1, Tensor weight2, Tensor bias2)
    {
        const string op = nameof(LinearGeluLinear);
        Check.NotNull(x, op, nameof(x));
        Check.Rank(weight1, 2, op, nameof(weight1), "(hidden, in)");
        Check.Rank(weight2, 2, op, nameof(weight2), "(out, hidden)");
        Check.SameDevice(op, x, nameof(x), weight1, nameof(weight1));
        Check.SameDevice(op, x, nameof(x), weight2, nameof(weight2));
        int inF = weight1.Size(1), hidden = weight1.Size(0), outF = weight2.Size(0);
        if (x.Rank == 0 || x.Size(-1) != inF)
            throw new ArgumentException($"{op}: x has shape {Shapes.Format(x.Shape)} but weight1 {Shapes.Format(weight1.Shape)} expects last dimension {inF}", nameof(x));
        if (weight2.Size(1) != hidden)
            throw new ArgumentException($"{op}: weight2 has shape {Shapes.Format(weight2.Shape)} but weight1 {Shapes.Format(weight1.Shape)} gives {hidden} hidden features", nameof(weight2));
        Check.Vector(op, bias1, nameof(bias1), hidden, x, nameof(x));
        Check.Vector(op, bias2, nameof(bias2), outF, x, nameof(x));
        int rows = checked((int)(x.Numel / Math.Max(inF, 1)));
        var hiddenShape = x.ShapeArray;
        hiddenShape[^1] = hidden;
        var outShape = x.ShapeArray;
        outShape[^1] = outF;
        var be = x.Backend;
        if (MlpOneOperator) return MlpAsOneOperator(x, weight1, bias1, weight2, bias2, hiddenShape, outShape);
        var pre = Tensor.Empty(hiddenShape, x.Device);
        var act = Tensor.Empty(hiddenShape, x.Device);
        be.LinearBiasGelu(x, weight1, bias1, pre, act);
        var y = Tensor.Empty(outShape, x.Device);
        be.LinearBias(act, weight2, bias2, y);
        Tensor[] inputs = [x, weight1, bias1, weight2, bias2];
        if (!AutogradEngine.WillRecord(inputs))
        {
            pre.Dispose();
            act.Dispose();
            return y;
        }
        return AutogradEngine.Record(y, op, inputs, g =>
        {
            Tensor? gx = null, gw1 = null, gb1 = null, gw2 = null, gb2 = null;
            if (weight2.RequiresGrad) { gw2 = Like(weight2); be.Gemm(true, false, outF, hidden, rows, 1f, g, act, 0f, gw2); }
            if (bias2.RequiresGrad) { gb2 = Like(bias2); be.SumToLastDim(g, gb2); }
            if (x.RequiresGrad || weight1.RequiresGrad || bias1.RequiresGrad)
            {
                var dpre = Tensor.Empty(hiddenShape, x.Device);
                gb1 = Like(bias1);
                be.LinearBackwardDataGelu(g, weight2, pre, dpre, gb1);
                if (x.RequiresGrad) { gx = Like(x); be.Gemm(false, false, rows, inF, hidden, 1f, dpre, weight1, 0f, gx); }
                if (weight1.RequiresGrad) { gw1 = Like(weight1); be.Gemm(true, false, hidden, inF, rows, 1f, dpre, x, 0f, gw1); }
                dpre.Dispose();
                if (!bias1.RequiresGrad) { gb1.Dispose(); gb1 = null; }
            }
            return [gx, gw1, gb1, gw2, gb2];
        });
    }

    private static Tensor MlpAsOneOperator(Tensor x, Tensor weight1, Tensor bias1, Tensor weight2, Tensor bias2,
        int[] hiddenShape, int[] outShape)
    {
        var be = x.Backend;
        var y = Tensor.Empty(outShape, x.Device);
        Tensor[] inputs = [x, weight1, bias1, weight2, bias2];
        bool record = AutogradEngine.WillRecord(inputs);
        var pre = record && !MlpRecompute ? Tensor.Empty(hiddenShape, x.Device) : null;
        be.MlpForward(x, weight1, bias1, weight2, bias2, pre, y);
        if (!record) return y;
        return AutogradEngine.Record(y, nameof(LinearGeluLinear), inputs, g =>
        {
            Tensor gx = Like(x), gw1 = Like(weight1), gb1 = Like(bias1), gw2 = Like(weight2), gb2 = Like(bias2);
            be.MlpBackward(g, x, weight1, bias1, weight2, pre, gx, gw1, gb1, gw2, gb2);
            pre?.Dispose();
            return [Keep(gx, x), Keep(gw1, weight1), Keep(gb1, bias1), Keep(gw2, weight2), Keep(gb2, bias2)];
        });
    }

    // A gradient the backend computed with the others, dropped where its input does not need it.
    private static Tensor? Keep(Tensor grad, Tensor input)
    {
        if (input.RequiresGrad) return grad;
        grad.Dispose();
        return null;
    }
}
