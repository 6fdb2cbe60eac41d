// Autograd semantics on every test device: gradients accumulate across uses of a tensor and across Backward calls
// until ZeroGrad; NoGrad records nothing; a second Backward through a freed graph and Backward on a non-scalar fail
// with clear messages; the graph (and what it saved) is released after Backward; Detach and the RequiresGrad rules;
// and a composite expression with shared subexpressions checked end to end against a float64 reference.
using System.Runtime.CompilerServices;
using NUnit.Framework;
using Slak.Autograd;
using Slak.Tests.Support;

namespace Slak.Tests.Autograd;

public sealed class AutogradTests(string device) : DeviceTest(device)
{
    private Tensor Leaf(float[] data, params int[] shape)
    {
        var t = T(data, shape);
        t.RequiresGrad = true;
        return t;
    }

    [Test]
    public void GradientsAccumulateAcrossUsesOfOneTensor()
    {
        var data = Rng.NormalArray(7);
        var x = Leaf(data, 7);
        // loss = sum(x * x + x + x): d/dx = 2x + 2, through Mul (x twice) and Add (x twice, as views of one gradient).
        F.Sum(F.Add(F.Mul(x, x), F.Add(x, x))).Backward();
        Expect.AllClose(x.Grad!.ToArray(), data.Select(v => 2.0 * v + 2).ToArray(), 1e-6, 1e-6, Ctx("d/dx of sum(x*x + x + x)"));
    }

    [Test]
    public void GradientsAccumulateAcrossBackwardCallsUntilZeroGrad()
    {
        var data = Rng.NormalArray(5);
        var x = Leaf(data, 5);
        var once = data.Select(v => 3.0 * v * v).ToArray();
        void Step() => F.Sum(F.Mul(F.Mul(x, x), x)).Backward();
        Step();
        Expect.AllClose(x.Grad!.ToArray(), once, 1e-5, 1e-5, Ctx("first backward"));
        Step();
        Expect.AllClose(x.Grad!.ToArray(), once.Select(v => 2 * v).ToArray(), 1e-5, 1e-5, Ctx("second backward accumulates"));
        x.ZeroGrad();
        Assert.That(x.Grad, Is.Null, Ctx("ZeroGrad drops the gradient"));
        Step();
        Expect.AllClose(x.Grad!.ToArray(), once, 1e-5, 1e-5, Ctx("after ZeroGrad, one backward's worth"));
    }

    [Test]
    public void NoGradRecordsNothingAndNests()
    {
        var x = Leaf(Rng.NormalArray(4), 4);
        Tensor y, z;
        using (GradMode.NoGrad())
        {
            using (GradMode.NoGrad()) y = F.Gelu(x);
            Assert.That(GradMode.IsEnabled, Is.False, Ctx("still disabled after an inner scope closes"));
            z = F.Sum(F.Mul(x, x));
        }
        Assert.That(GradMode.IsEnabled, Is.True, Ctx("enabled after the outer scope"));
        foreach (var t in new[] { y, z })
        {
            Assert.That(t.RequiresGrad, Is.False, Ctx("result under NoGrad does not require grad"));
            Assert.That(t.IsLeaf, Is.True, Ctx("result under NoGrad has no graph node"));
        }
        var ex = Assert.Throws<InvalidOperationException>(() => z.Backward(), Ctx("Backward on a NoGrad result"));
        Assert.That(ex!.Message, Does.Contain("does not require grad"), Ctx("message"));
        Assert.That(F.Gelu(x).RequiresGrad, Is.True, Ctx("recording resumes after NoGrad"));
    }

    [Test]
    public void SecondBackwardThroughTheSameGraphThrowsClearly()
    {
        var x = Leaf(Rng.NormalArray(3), 3);
        var loss = F.Sum(F.Gelu(x));
        loss.Backward();
        var ex = Assert.Throws<InvalidOperationException>(() => loss.Backward(), Ctx("second Backward"));
        Assert.That(ex!.Message, Does.Contain("second time").And.Contain("Sum"), Ctx("message names the situation and the node"));

        // Two losses sharing a subgraph: the second one reaches the freed part.
        var shared = F.Gelu(x);
        var l1 = F.Sum(shared);
        var l2 = F.Mean(shared);
        l1.Backward();
        var ex2 = Assert.Throws<InvalidOperationException>(() => l2.Backward(), Ctx("backward into a freed shared node"));
        Assert.That(ex2!.Message, Does.Contain("second time").And.Contain("Gelu"), Ctx("message names the freed node"));
    }

    [Test]
    public void BackwardNeedsAScalar()
    {
        var x = Leaf(Rng.NormalArray(6), 2, 3);
        var y = F.Gelu(x);
        var ex = Assert.Throws<InvalidOperationException>(() => y.Backward(), Ctx("Backward on (2, 3)"));
        Assert.That(ex!.Message, Does.Contain("scalar").And.Contain("(2, 3)"), Ctx("message names the requirement and the shape"));
        // A one-element tensor of any rank is accepted.
        F.Reshape(F.Sum(y), 1, 1).Backward();
        Assert.That(x.Grad, Is.Not.Null, Ctx("Backward from a (1, 1) tensor"));
    }

    [Test]
    public void GraphIsReleasedAfterBackward()
    {
        var x = Leaf(Rng.NormalArray(16), 4, 4);
        var (loss, saved) = BuildGraph(x);
        var node = loss.GradFn!;
        loss.Backward();
        Assert.That(node.Backward, Is.Null, Ctx("root node's closure dropped"));
        Assert.That(node.Inputs, Is.Empty, Ctx("root node's inputs dropped"));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.That(saved.IsAlive, Is.False, Ctx("intermediate saved by the graph is unreachable after Backward"));
        GC.KeepAlive(loss);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (Tensor Loss, WeakReference Saved) BuildGraph(Tensor x)
    {
        var hidden = F.Gelu(F.Scale(x, 2f));   // saved by Mul's backward closure
        var loss = F.Sum(F.Mul(hidden, hidden));
        return (loss, new WeakReference(hidden));
    }

    [Test]
    public void DetachSharesDataAndCutsTheGraph()
    {
        var data = Rng.NormalArray(5);
        var x = Leaf(data, 5);
        var d = x.Detach();
        Assert.That(d.RequiresGrad, Is.False, Ctx("detached view does not require grad"));
        Assert.That(d.IsLeaf, Is.True, Ctx("detached view is a leaf"));
        Assert.That(ReferenceEquals(d.Storage, x.Storage), Is.True, Ctx("detached view shares storage"));
        // loss = sum(stop_grad(x) * x): d/dx = x (one path only).
        F.Sum(F.Mul(d, x)).Backward();
        Expect.AllClose(x.Grad!.ToArray(), data.Select(v => (double)v).ToArray(), 1e-6, 1e-6, Ctx("gradient flows only through the attached use"));
        var y = F.Gelu(x);
        Assert.That(y.Detach().IsLeaf, Is.True, Ctx("Detach of a non-leaf is a leaf"));
    }

    [Test]
    public void RequiresGradRules()
    {
        var a = T(Rng.NormalArray(3), 3);
        var b = T(Rng.NormalArray(3), 3);
        Assert.That(a.RequiresGrad, Is.False, Ctx("new tensors do not require grad"));
        var c = F.Mul(a, b);
        Assert.That(c.RequiresGrad || !c.IsLeaf, Is.False, Ctx("no input requires grad: nothing recorded"));
        b.RequiresGrad = true;
        var e = F.Mul(a, b);
        Assert.That(e.RequiresGrad && !e.IsLeaf, Is.True, Ctx("one input requires grad: recorded"));
        var ex = Assert.Throws<InvalidOperationException>(() => e.RequiresGrad = false, Ctx("clearing RequiresGrad on a non-leaf"));
        Assert.That(ex!.Message, Does.Contain("Mul").And.Contain("Detach"), Ctx("message names the producer and the fix"));
        F.Sum(e).Backward();
        Assert.That(a.Grad, Is.Null, Ctx("input without RequiresGrad gets no gradient"));
        Assert.That(b.Grad, Is.Not.Null, Ctx("input with RequiresGrad gets a gradient"));
        var s = Leaf([2f], 1);
        s.Backward();
        Assert.That(s.Grad!.ToArray(), Is.EqualTo(new[] { 1f }), Ctx("Backward on a leaf scalar: d s / d s = 1"));
    }

    [Test]
    public void CompositeExpressionWithSharedSubexpressionsMatchesReference()
    {
        // A block-like expression: h = gelu(linear(x, w1, b1)); y = LayerNorm(h + h * g) summed with h; every
        // intermediate is used twice, so the engine's accumulation order is exercised end to end.
        int rows = 3, inF = 4, hid = 5;
        GradInput[] inputs =
        [
            new("x", Rng.NormalArray(rows * inF), [rows, inF]),
            new("w1", Rng.NormalArray(hid * inF, 0.5), [hid, inF]),
            new("b1", Rng.NormalArray(hid), [hid]),
            new("g", Rng.NormalArray(hid), [hid]),
            new("lnw", Rng.NormalArray(hid), [hid]),
            new("lnb", Rng.NormalArray(hid), [hid]),
        ];
        GradCheck.Check(Dev, Rng, "composite", inputs,
            t =>
            {
                var h = F.Gelu(F.Linear(t[0], t[1], t[2]));
                var y = F.LayerNorm(F.Add(h, F.MulLastDim(h, t[3])), t[4], t[5], 1e-5f);
                return F.Add(y, h);
            },
            r =>
            {
                var h = Reference.Gelu(Reference.Linear(r[0], r[1], r[2]));
                var y = Reference.LayerNorm(Reference.Add(h, Reference.MulLastDim(h, r[3])), r[4], r[5], 1e-5);
                return Reference.Add(y, h);
            }, forwardAtol: 2e-5);
    }
}
