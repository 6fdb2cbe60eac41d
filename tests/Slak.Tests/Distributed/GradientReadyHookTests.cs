// The autograd engine's gradient-ready hook (AutogradEngine.OnLeafGradient), which data-parallel training uses to
// start gradient buckets during backward: every leaf with a gradient is reported exactly once per pass, at a moment
// when its gradient already has its final value; leaves without a gradient are not reported; a leaf consumed only
// by the last layer is reported before the first layer's backward has run (the engine adds a leaf's gradient right
// after its last consumer, not at the end of the pass); and gradients are the same bits with and without the hook.
using NUnit.Framework;
using Slak.Autograd;

namespace Slak.Tests.Distributed;

public class GradientReadyHookTests
{
    private sealed record Net(Tensor X, Tensor W1, Tensor B1, Tensor W2, Tensor B2, Tensor Shared, Tensor Unused)
    {
        public Tensor[] Leaves => [W1, B1, W2, B2, Shared, Unused];

        public Tensor Loss()
        {
            var h = F.Gelu(F.Linear(X, W1, B1));
            var y = F.Linear(h, W2, B2);
            // Shared is used twice (two consumers); Unused is never used.
            return F.Mean(F.Add(F.Mul(y, Shared), F.Mul(F.Scale(y, 0.5f), Shared)));
        }
    }

    private static Net Make()
    {
        var rng = new SlakRandom(7);
        Tensor P(params int[] shape)
        {
            var t = Tensor.RandN(rng, shape, Device.Cpu, 0, 0.5f);
            t.RequiresGrad = true;
            return t;
        }
        return new Net(Tensor.RandN(rng, [5, 6], Device.Cpu, 0, 1f), P(4, 6), P(4), P(3, 4), P(3), P(5, 3), P(2));
    }

    [Test]
    public void EachLeafIsReportedOnceWithItsFinalGradient_LastLayerFirst()
    {
        var net = Make();
        var seen = new List<(Tensor Leaf, float[] Grad, bool FirstLayerDone)>();
        using (AutogradEngine.OnLeafGradient(leaf => seen.Add((leaf, leaf.Grad!.ToArray(), net.W1.Grad is not null))))
            net.Loss().Backward();

        Assert.That(seen.Select(s => s.Leaf), Is.EquivalentTo(new[] { net.W1, net.B1, net.W2, net.B2, net.Shared }), "every leaf with a gradient, once");
        foreach (var (leaf, grad, _) in seen)
            Assert.That(grad, Is.EqualTo(leaf.Grad!.ToArray()), "the reported gradient is the final one");
        Assert.That(net.Unused.Grad, Is.Null);
        var w2 = seen.Single(s => ReferenceEquals(s.Leaf, net.W2));
        Assert.That(w2.FirstLayerDone, Is.False, "W2 was reported before the first layer's gradient existed");
        Assert.That(seen.FindIndex(s => ReferenceEquals(s.Leaf, net.W2)), Is.LessThan(seen.FindIndex(s => ReferenceEquals(s.Leaf, net.W1))));
    }

    [Test]
    public void GradientsAreTheSameBitsWithAndWithoutTheHook_AndAccumulatedPassesReportTheTotal()
    {
        var plain = Make();
        plain.Loss().Backward();
        plain.Loss().Backward();
        var hooked = Make();
        hooked.Loss().Backward();
        var reported = new Dictionary<Tensor, float[]>(ReferenceEqualityComparer.Instance);
        using (AutogradEngine.OnLeafGradient(leaf => reported[leaf] = leaf.Grad!.ToArray()))
            hooked.Loss().Backward(); // the second (last) pass of an accumulation
        for (int i = 0; i < plain.Leaves.Length; i++)
        {
            var expected = plain.Leaves[i].Grad?.ToArray();
            Assert.That(hooked.Leaves[i].Grad?.ToArray(), Is.EqualTo(expected), $"leaf {i}");
            if (expected is not null) Assert.That(reported[hooked.Leaves[i]], Is.EqualTo(expected), $"leaf {i}: the accumulated total");
        }
        int calls = 0;
        using (AutogradEngine.OnLeafGradient(_ => calls++)) { }
        Make().Loss().Backward();
        Assert.That(calls, Is.Zero, "the hook ends with its scope");
    }
}
