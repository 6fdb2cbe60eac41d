// F.LinearGeluLinear (the block MLP as one operator with fused GEMM epilogues): forward and gradients against the
// float64 reference by central differences, against the unfused F.Linear -> F.Gelu -> F.Linear path on shapes large
// enough to reach the multi-threaded GEMM drivers, gradients only for what requires them, no graph without grad,
// and bad shapes rejected by name.
using NUnit.Framework;
using Slak.Autograd;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class LinearGeluLinearOpTests(string device) : DeviceTest(device)
{
    private static RefTensor Mlp(RefTensor[] r) =>
        Reference.Linear(Reference.Gelu(Reference.Linear(r[0], r[1], r[2])), r[3], r[4]);

    [TestCase(new[] { 3, 4 }, 6, 5)]
    [TestCase(new[] { 2, 2, 3, 5 }, 7, 4)]
    [TestCase(new[] { 1, 1 }, 1, 1)]
    public void ForwardAndGradientMatchFloat64(int[] xShape, int hidden, int outF)
    {
        int inF = xShape[^1];
        GradInput[] inputs =
        [
            new("x", Rng.NormalArray(RefTensor.Numel(xShape)), xShape),
            new("weight1", Rng.NormalArray(hidden * inF, 1 / Math.Sqrt(inF)), [hidden, inF]),
            new("bias1", Rng.NormalArray(hidden, 0.5), [hidden]),
            new("weight2", Rng.NormalArray(outF * hidden, 1 / Math.Sqrt(hidden)), [outF, hidden]),
            new("bias2", Rng.NormalArray(outF), [outF]),
        ];
        GradCheck.Check(Dev, Rng, $"LinearGeluLinear x {Slak.Shapes.Format(xShape)} -> {hidden} -> {outF}", inputs,
            t => F.LinearGeluLinear(t[0], t[1], t[2], t[3], t[4]), Mlp);
    }

    [Test]
    public void GradientOnlyForWhatRequiresIt()
    {
        int[] xs = [4, 3];
        GradInput[] Inputs(bool x, bool w1, bool b1, bool w2, bool b2) =>
        [
            new("x", Rng.NormalArray(12), xs, x), new("weight1", Rng.NormalArray(15, 0.6), [5, 3], w1),
            new("bias1", Rng.NormalArray(5), [5], b1), new("weight2", Rng.NormalArray(10, 0.5), [2, 5], w2),
            new("bias2", Rng.NormalArray(2), [2], b2),
        ];
        Tensor Fwd(Tensor[] t) => F.LinearGeluLinear(t[0], t[1], t[2], t[3], t[4]);
        GradCheck.Check(Dev, Rng, "frozen first layer", Inputs(true, false, false, true, true), Fwd, Mlp);
        GradCheck.Check(Dev, Rng, "constant input, frozen second layer", Inputs(false, true, true, false, false), Fwd, Mlp);
        GradCheck.Check(Dev, Rng, "only the first bias", Inputs(false, false, true, false, false), Fwd, Mlp);
        GradCheck.Check(Dev, Rng, "nothing requires grad", Inputs(false, false, false, false, false), Fwd, Mlp);
    }

    // slak_nano's stage-1 widths (31 -> 124 -> 31) on 128 rows (few row blocks: the epilogue runs after the product)
    // and 4608 rows (many row blocks: the epilogue runs per block inside the GEMM's tasks).
    [TestCase(2, 8, 31, 124)]
    [TestCase(8, 24, 24, 96)]
    public void MatchesTheUnfusedOperators(int n, int hw, int dim, int hidden)
    {
        int[] xShape = [n, hw, hw, dim];
        var xData = Rng.NormalArray(RefTensor.Numel(xShape));
        var w1 = Rng.NormalArray(hidden * dim, 1 / Math.Sqrt(dim));
        var b1 = Rng.NormalArray(hidden, 0.5);
        var w2 = Rng.NormalArray(dim * hidden, 1 / Math.Sqrt(hidden));
        var b2 = Rng.NormalArray(dim, 0.5);
        var gData = Rng.NormalArray(RefTensor.Numel(xShape));

        float[][] Run(bool fused)
        {
            using var scope = TensorScope.Begin();
            var t = new[]
            {
                T(xData, xShape), T(w1, hidden, dim), T(b1, hidden), T(w2, dim, hidden), T(b2, dim),
            };
            foreach (var p in t) p.RequiresGrad = true;
            var y = fused
                ? F.LinearGeluLinear(t[0], t[1], t[2], t[3], t[4])
                : F.Linear(F.Gelu(F.Linear(t[0], t[1], t[2])), t[3], t[4]);
            y.Backward(T(gData, xShape));
            return [y.ToArray(), .. t.Select(p => p.Grad!.ToArray())];
        }

        var fusedResult = Run(true);
        var plain = Run(false);
        string[] names = ["y", "dx", "dweight1", "dbias1", "dweight2", "dbias2"];
        for (int i = 0; i < names.Length; i++)
        {
            double scale = plain[i].Max(v => Math.Abs((double)v));
            Expect.AllClose(fusedResult[i], plain[i].Select(v => (double)v).ToArray(), 1e-5 * Math.Max(1, scale), 1e-5,
                Ctx($"{names[i]} of ({n}, {hw}, {hw}, {dim}) -> {hidden}: fused vs unfused"));
        }
        var again = Run(true);
        for (int i = 0; i < names.Length; i++)
            Expect.Exactly(again[i], fusedResult[i], Ctx($"{names[i]}: a second fused run must repeat bit for bit"));
    }

    [Test]
    public void NoGraphWithoutGrad()
    {
        var x = T(Rng.NormalArray(6), 2, 3);
        var w1 = T(Rng.NormalArray(12), 4, 3);
        w1.RequiresGrad = true;
        using (GradMode.NoGrad())
        {
            var y = F.LinearGeluLinear(x, w1, T(Rng.NormalArray(4), 4), T(Rng.NormalArray(8), 2, 4), T(Rng.NormalArray(2), 2));
            Assert.That(y.RequiresGrad, Is.False, Ctx("output under no-grad"));
        }
    }

    [Test]
    public void BadShapesAreRejectedByName()
    {
        var x = T(Rng.NormalArray(6), 2, 3);
        var w1 = T(Rng.NormalArray(12), 4, 3);
        var b1 = T(Rng.NormalArray(4), 4);
        var w2 = T(Rng.NormalArray(8), 2, 4);
        var b2 = T(Rng.NormalArray(2), 2);
        Expect.Throws<ArgumentException>(() => F.LinearGeluLinear(T(Rng.NormalArray(8), 2, 4), w1, b1, w2, b2), "x", Ctx("x width"), "(2, 4)");
        Expect.Throws<ArgumentException>(() => F.LinearGeluLinear(x, w1, b1, T(Rng.NormalArray(6), 2, 3), b2), "weight2", Ctx("weight2 width"), "(2, 3)");
        Expect.Throws<ArgumentException>(() => F.LinearGeluLinear(x, w1, T(Rng.NormalArray(3), 3), w2, b2), "bias1", Ctx("bias1 length"), "(4)");
        Expect.Throws<ArgumentException>(() => F.LinearGeluLinear(x, w1, b1, w2, T(Rng.NormalArray(3), 3)), "bias2", Ctx("bias2 length"), "(2)");
        Expect.Throws<ArgumentNullException>(() => F.LinearGeluLinear(x, w1, null!, w2, b2), "bias1", Ctx("null bias1"));
    }
}
