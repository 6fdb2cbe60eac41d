// A leaf's first gradient of a backward pass becomes its Tensor.Grad without a copy when nothing else holds that
// gradient's memory (AutogradEngine.AdoptLeafGradients, SLAK_LEAF_GRAD_ADOPT; issue 27). Checked on every test device:
// the values are the same bits as the copying path's and match a float64 reference; gradients that share memory
// (Add's backward hands both inputs views of one tensor) are still copied, so each leaf owns its gradient; an adopted
// gradient outlives the step's TensorScope and later passes add into it; the pool the gradient's memory comes from is
// poisoned with NaN first, so a gradient that was not fully written would show.
using NUnit.Framework;
using Slak.Autograd;
using Slak.Tests.Support;

namespace Slak.Tests.Autograd;

[NonParallelizable] // switches AutogradEngine.AdoptLeafGradients
public sealed class LeafGradientAdoptionTests(string device) : DeviceTest(device)
{
    private Tensor Leaf(float[] data, params int[] shape)
    {
        var t = T(data, shape);
        t.RequiresGrad = true;
        return t;
    }

    /// <summary>Returns NaN-filled memory of <paramref name="numel"/> elements to the device's pool a few times, so
    /// the next tensors of that size start from NaN.</summary>
    private void PoisonPool(long numel)
    {
        var held = Enumerable.Range(0, 4)
            .Select(_ => T(Enumerable.Repeat(float.NaN, checked((int)numel)).ToArray(), (int)numel))
            .ToList();
        foreach (var t in held) t.Dispose();
    }

    private static float[] Grad(Tensor leaf) => leaf.Grad!.ToArray();

    [TestCase(31, 62)]
    [TestCase(249, 7)]
    [TestCase(2, 3)] // small: below the CPU pool's size floor
    public void AdoptedGradientHasTheBitsOfTheCopyAndMatchesFloat64(int rows, int cols)
    {
        var xs = Rng.NormalArray(rows * cols);
        var ws = Rng.NormalArray(rows * cols);
        var x = Leaf(xs, rows, cols);
        var w = T(ws, rows, cols);
        bool was = AutogradEngine.AdoptLeafGradients;
        try
        {
            var bits = new Dictionary<bool, float[]>();
            foreach (bool adopt in new[] { false, true, false, true })
            {
                AutogradEngine.AdoptLeafGradients = adopt;
                PoisonPool(rows * cols);
                using (TensorScope.Begin())
                    F.Sum(F.Mul(F.Mul(x, x), w)).Backward(); // d/dx = 2 x w
                var g = Grad(x);
                x.ZeroGrad();
                if (bits.TryGetValue(adopt, out var before))
                    Expect.Exactly(g, before, Ctx($"adopt {adopt}: the same bits on repeat"));
                bits[adopt] = g;
                Expect.AllClose(g, xs.Zip(ws, (a, b) => 2.0 * a * b).ToArray(), 1e-6, 1e-6,
                    Ctx($"adopt {adopt}: d/dx of sum(x*x*w) against float64"));
            }
            Expect.Exactly(bits[true], bits[false], Ctx("adopted gradient against the copied one"));
        }
        finally
        {
            AutogradEngine.AdoptLeafGradients = was;
        }
    }

    [Test]
    public void GradientsSharingMemoryAreCopiedSoEachLeafOwnsItsOwn()
    {
        var a = Leaf(Rng.NormalArray(31), 31);
        var b = Leaf(Rng.NormalArray(31), 31);
        bool was = AutogradEngine.AdoptLeafGradients;
        try
        {
            AutogradEngine.AdoptLeafGradients = true;
            using (TensorScope.Begin())
                F.Sum(F.Add(a, b)).Backward(); // Add's backward: both inputs get views of the one incoming gradient
            Assert.That(a.Grad!.Storage, Is.Not.SameAs(b.Grad!.Storage),
                Ctx("the two leaves' gradients do not share memory"));
            a.Grad.Backend.Fill(a.Grad, 7f);
            Expect.Exactly(Grad(b), Enumerable.Repeat(1f, 31).ToArray(), Ctx("writing a's gradient leaves b's alone"));
            using (TensorScope.Begin())
                F.Sum(F.Add(a, b)).Backward();
            Expect.Exactly(Grad(a), Enumerable.Repeat(8f, 31).ToArray(), Ctx("a: 7 + the second pass's 1"));
            Expect.Exactly(Grad(b), Enumerable.Repeat(2f, 31).ToArray(), Ctx("b: two passes of 1"));
        }
        finally
        {
            AutogradEngine.AdoptLeafGradients = was;
        }
    }

    [Test]
    public void AdoptedGradientOutlivesTheScopeAndLaterPassesAddIntoIt()
    {
        var xs = Rng.NormalArray(62 * 4);
        var x = Leaf(xs, 62, 4);
        bool was = AutogradEngine.AdoptLeafGradients;
        try
        {
            AutogradEngine.AdoptLeafGradients = true;
            using (TensorScope.Begin())
                F.Sum(F.Mul(x, x)).Backward();
            Assert.That(x.Grad!.IsDisposed, Is.False, Ctx("the gradient survives the scope its memory was made in"));
            Assert.That(x.Grad.Storage.HasOneReference, Is.True,
                Ctx("the leaf's gradient is the only tensor on its memory"));
            var once = xs.Select(v => 2.0 * v).ToArray();
            Expect.AllClose(Grad(x), once, 1e-6, 1e-6, Ctx("first pass"));
            using (TensorScope.Begin())
                F.Sum(F.Mul(x, x)).Backward();
            Expect.AllClose(Grad(x), once.Select(v => 2 * v).ToArray(), 1e-6, 1e-6, Ctx("second pass accumulates"));
        }
        finally
        {
            AutogradEngine.AdoptLeafGradients = was;
        }
    }
}
