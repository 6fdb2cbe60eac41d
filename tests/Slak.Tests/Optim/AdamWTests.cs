// AdamW against a float64 reference of PyTorch's AdamW step, the decay groups, and masked steps.
using NUnit.Framework;
using Slak.Optim;
using Slak.Tests.Support;

namespace Slak.Tests.Optim;

public class AdamWTests
{
    private sealed class Holder : Slak.NN.Module
    {
        public Tensor Add(string name, Tensor t) => RegisterParameter(name, t);
    }

    private static (double[] P, double[] M, double[] V) ReferenceSteps(double[] p0, double[][] grads, double lr, double wd,
        double b1 = 0.9, double b2 = 0.999, double eps = 1e-8)
    {
        var p = (double[])p0.Clone();
        var m = new double[p.Length];
        var v = new double[p.Length];
        for (int t = 1; t <= grads.Length; t++)
        {
            for (int i = 0; i < p.Length; i++)
            {
                double g = grads[t - 1][i];
                p[i] *= 1 - lr * wd;
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                double bc1 = 1 - Math.Pow(b1, t), bc2 = 1 - Math.Pow(b2, t);
                p[i] -= lr / bc1 * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(bc2) + eps);
            }
        }
        return (p, m, v);
    }

    [Test]
    public void StepsMatchFloat64ReferenceWithDecayGroups()
    {
        int seed = TestRandom.NewSeed();
        var rng = new SlakRandom((ulong)seed);
        var h = new Holder();
        var w = h.Add("weight", Tensor.RandN(rng, [5, 7], Device.Cpu));
        var b = h.Add("bias", Tensor.RandN(rng, [5], Device.Cpu));
        var opt = new AdamW(h.NamedParameters(), lr: 0.01f, weightDecay: 0.1f);
        Assert.That(opt["weight"].Decay, Is.True);
        Assert.That(opt["bias"].Decay, Is.False);
        var w0 = w.ToArray().Select(x => (double)x).ToArray();
        var b0 = b.ToArray().Select(x => (double)x).ToArray();
        var gw = new double[3][];
        var gb = new double[3][];
        for (int t = 0; t < 3; t++)
        {
            var g1 = Tensor.RandN(rng, [5, 7], Device.Cpu);
            var g2 = Tensor.RandN(rng, [5], Device.Cpu);
            gw[t] = g1.ToArray().Select(x => (double)x).ToArray();
            gb[t] = g2.ToArray().Select(x => (double)x).ToArray();
            w.Grad = g1; b.Grad = g2;
            opt.Step();
        }
        var (rw, rm, rv) = ReferenceSteps(w0, gw, 0.01, 0.1);
        var (rb, _, _) = ReferenceSteps(b0, gb, 0.01, 0.0);
        var aw = w.ToArray();
        var am = opt["weight"].ExpAvg!.ToArray();
        var av = opt["weight"].ExpAvgSq!.ToArray();
        var ab = b.ToArray();
        for (int i = 0; i < aw.Length; i++)
        {
            Assert.That(aw[i], Is.EqualTo(rw[i]).Within(1e-6 + 1e-5 * Math.Abs(rw[i])), $"weight[{i}], seed {seed}");
            Assert.That(am[i], Is.EqualTo(rm[i]).Within(1e-6 + 1e-5 * Math.Abs(rm[i])), $"exp_avg[{i}], seed {seed}");
            Assert.That(av[i], Is.EqualTo(rv[i]).Within(1e-7 + 1e-5 * Math.Abs(rv[i])), $"exp_avg_sq[{i}], seed {seed}");
        }
        for (int i = 0; i < ab.Length; i++)
            Assert.That(ab[i], Is.EqualTo(rb[i]).Within(1e-6 + 1e-5 * Math.Abs(rb[i])), $"bias[{i}] (no decay), seed {seed}");
        Assert.That(opt["weight"].Step, Is.EqualTo(3));
    }

    [Test]
    public void DecayGroupsFollowTheReferenceRule()
    {
        Assert.Multiple(() =>
        {
            Assert.That(AdamW.UsesWeightDecay("head.weight", Tensor.Zeros(3, 4)), Is.True);
            Assert.That(AdamW.UsesWeightDecay("stages.0.0.large_kernel.LoRA1.conv.weight", Tensor.Zeros(2, 1, 5, 3)), Is.True);
            Assert.That(AdamW.UsesWeightDecay("norm.weight", Tensor.Zeros(4)), Is.False);
            Assert.That(AdamW.UsesWeightDecay("stages.0.0.gamma", Tensor.Zeros(4)), Is.False);
            Assert.That(AdamW.UsesWeightDecay("downsample_layers.1.1.bias", Tensor.Zeros(4)), Is.False);
        });
    }

    [Test]
    public void MaskedStepKeepsPrunedWeightsAndMomentsZero()
    {
        int seed = TestRandom.NewSeed();
        var rng = new SlakRandom((ulong)seed);
        var h = new Holder();
        var w = h.Add("weight", Tensor.RandN(rng, [4, 6], Device.Cpu));
        var maskData = Enumerable.Range(0, 24).Select(i => i % 3 == 0 ? 0f : 1f).ToArray();
        var mask = Tensor.FromArray(maskData, 4, 6);
        var opt = new AdamW(h.NamedParameters(), lr: 0.05f);
        opt.SetMask("weight", mask);
        for (int t = 0; t < 3; t++)
        {
            w.Grad = Tensor.RandN(rng, [4, 6], Device.Cpu);
            opt.Step();
        }
        var aw = w.ToArray();
        var am = opt["weight"].ExpAvg!.ToArray();
        var av = opt["weight"].ExpAvgSq!.ToArray();
        for (int i = 0; i < 24; i++)
            if (maskData[i] == 0)
                Assert.That((aw[i], am[i], av[i]), Is.EqualTo((0f, 0f, 0f)), $"pruned position {i}, seed {seed}");
    }

    [Test]
    public void RejectsBadArguments()
    {
        var h = new Holder();
        h.Add("weight", Tensor.Zeros(2, 2));
        Assert.That(() => new AdamW(h.NamedParameters(), lr: -1f), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("lr"));
        var opt = new AdamW(h.NamedParameters());
        Assert.That(() => opt.SetMask("weight", Tensor.Zeros(3)), Throws.ArgumentException.With.Message.Contains("does not match"));
    }
}
