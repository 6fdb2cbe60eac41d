// Gradient checking for a float32 library against float64 math: the analytic gradients come from our float32
// backward, the numeric ones from central differences of the FLOAT64 REFERENCE forward of the same operator, at the
// same input values (float32 inputs are exact in float64). The loss is sum(out * R) with a fixed random R, so every
// output element matters (a plain sum would hide errors that cancel, e.g. in normalizations whose outputs sum to a
// constant). With h ~ 1e-6 in float64 the numeric gradient is accurate to ~1e-9, so the tolerance only has to cover
// float32 round-off in the backward kernels.
using NUnit.Framework;

namespace Slak.Tests.Support;

/// <summary>One input of a gradient check: float32 values, shape, and whether gradients are requested.</summary>
public sealed record GradInput(string Name, float[] Data, int[] Shape, bool RequiresGrad = true);

/// <summary>Analytic (float32 backward) vs numeric (float64 reference, central differences) gradients.</summary>
public static class GradCheck
{
    /// <summary>Checks forward and backward of one operator. <paramref name="forward"/> runs the library operator on
    /// tensors created from <paramref name="inputs"/> (in order), <paramref name="reference"/> the float64 reference on
    /// the same values. Gradient tolerance: atol * max(1, max |numeric|) + rtol * |numeric|.</summary>
    public static void Check(Device device, TestRandom rng, string context, GradInput[] inputs,
                             Func<Tensor[], Tensor> forward, Func<RefTensor[], RefTensor> reference,
                             double atol = 1e-4, double rtol = 1e-3, double forwardAtol = 1e-5, double forwardRtol = 1e-4,
                             double h = 1e-6)
    {
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(forward);
        ArgumentNullException.ThrowIfNull(reference);
        var refInputs = inputs.Select(i => RefTensor.From(i.Data, i.Shape)).ToArray();
        var refOut = reference(refInputs);
        var r = rng.NormalArray(refOut.Length);
        var analytic = new float[inputs.Length][];
        using (var scope = TensorScope.Begin())
        {
            var tensors = new Tensor[inputs.Length];
            for (int k = 0; k < inputs.Length; k++)
            {
                tensors[k] = Tensor.FromArray(inputs[k].Data, inputs[k].Shape, device);
                tensors[k].RequiresGrad = inputs[k].RequiresGrad;
            }
            var output = forward(tensors);
            Expect.AllClose(output, refOut, forwardAtol, forwardRtol, rng.Ctx($"{context}: forward"));
            Assert.That(output.RequiresGrad, Is.EqualTo(inputs.Any(i => i.RequiresGrad)), rng.Ctx($"{context}: output.RequiresGrad"));
            if (!output.RequiresGrad) return;
            var loss = F.Sum(F.Mul(output, Tensor.FromArray(r, output.Shape, device)));
            loss.Backward();
            for (int k = 0; k < inputs.Length; k++)
            {
                if (!inputs[k].RequiresGrad)
                {
                    Assert.That(tensors[k].Grad, Is.Null, rng.Ctx($"{context}: input '{inputs[k].Name}' does not require grad but got one"));
                    continue;
                }
                Assert.That(tensors[k].Grad, Is.Not.Null, rng.Ctx($"{context}: no gradient for '{inputs[k].Name}'"));
                analytic[k] = tensors[k].Grad!.ToArray();
                tensors[k].ZeroGrad();
            }
        }
        var rd = r.Select(v => (double)v).ToArray();
        for (int k = 0; k < inputs.Length; k++)
        {
            if (!inputs[k].RequiresGrad) continue;
            var numeric = NumericVjp(reference, refInputs, rd, k, h);
            double scale = Math.Max(1.0, numeric.Max(v => Math.Abs(v)));
            Expect.AllClose(analytic[k], numeric, atol * scale, rtol,
                rng.Ctx($"{context}: d loss / d {inputs[k].Name} (analytic float32 vs central differences of the float64 reference)"),
                inputs[k].Shape);
        }
    }

    /// <summary>Numeric vector-Jacobian product: d/d inputs[wrt] of sum(reference(inputs) * r), by central
    /// differences with step h * max(1, |x|). Inputs are restored afterwards.</summary>
    public static double[] NumericVjp(Func<RefTensor[], RefTensor> reference, RefTensor[] inputs, double[] r, int wrt, double h = 1e-6)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(r);
        var x = inputs[wrt];
        var grad = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double saved = x[i], step = h * Math.Max(1.0, Math.Abs(saved));
            x[i] = saved + step;
            double plus = Dot(reference(inputs), r);
            x[i] = saved - step;
            double minus = Dot(reference(inputs), r);
            x[i] = saved;
            grad[i] = (plus - minus) / (2 * step);
        }
        return grad;
    }

    private static double Dot(RefTensor y, double[] r)
    {
        if (y.Length != r.Length) throw new InvalidOperationException($"reference output changed size: {y.Length} vs {r.Length}");
        double s = 0;
        for (int i = 0; i < r.Length; i++) s += y[i] * r[i];
        return s;
    }
}
