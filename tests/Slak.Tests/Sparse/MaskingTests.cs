// Masking: initial densities (uniform, ERK, SNIP against a direct float64 computation), the dense-layer drop,
// prune/regrow counts within the binomial expectation, and both semantics through optimizer steps and updates.
using NUnit.Framework;
using Slak.Optim;
using Slak.Sparse;
using Slak.Tests.Support;
using Slak.Tests.Train;

namespace Slak.Tests.Sparse;

public class MaskingTests
{
    private sealed class Holder : Slak.NN.Module
    {
        public Tensor Add(string name, Tensor t) => RegisterParameter(name, t);
    }

    private static (Holder Module, ulong Seed) MakeHolder()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        var rng = new SlakRandom(seed);
        var h = new Holder();
        h.Add("conv", Tensor.RandN(rng, [32, 1, 7, 5], Device.Cpu));
        h.Add("fc", Tensor.RandN(rng, [64, 48], Device.Cpu));
        h.Add("head", Tensor.RandN(rng, [10, 64], Device.Cpu));
        h.Add("bias", Tensor.RandN(rng, [64], Device.Cpu));
        return (h, seed);
    }

    private static void RandomGrads(Holder h, SlakRandom rng)
    {
        foreach (var p in h.Parameters()) p.Grad = Tensor.RandN(rng, p.Shape, Device.Cpu);
    }

    [Test]
    public void UniformInitHasTheGlobalDensityAndMasksOnlyRank2And4()
    {
        var (h, seed) = MakeHolder();
        var m = new Masking(h.NamedParameters(), new SparseOptions { Init = SparseInit.Uniform, Density = 0.6 }, new SlakRandom(seed));
        m.Initialize();
        Assert.That(m.Layers.Select(l => l.Name), Is.EqualTo(new[] { "conv", "fc", "head" }), $"seed {seed}");
        foreach (var l in m.Layers)
        {
            double sd = Math.Sqrt(0.24 / l.Numel);
            Assert.That(l.Density, Is.EqualTo(0.6).Within(5 * sd), $"{l.Name}, seed {seed}");
            var w = l.Parameter.ToArray();
            var mask = l.MaskBytes();
            for (int i = 0; i < w.Length; i++) if (mask[i] == 0) Assert.That(w[i], Is.Zero, $"{l.Name}[{i}] masked after init");
        }
    }

    [Test]
    public void ErkDensitiesMeetTheBudgetAndForceDenseLayers()
    {
        var shapes = new List<int[]> { new[] { 8, 1, 3, 3 }, new[] { 256, 128 }, new[] { 10, 256 }, new[] { 128, 1, 51, 5 } };
        var d = Masking.ErkDensities(shapes, 0.6);
        double total = shapes.Sum(s => s.Aggregate(1.0, (a, x) => a * x));
        double kept = shapes.Select((s, i) => d[i] * s.Aggregate(1.0, (a, x) => a * x)).Sum();
        Assert.That(d[0], Is.EqualTo(1.0), "the tiny stem is forced dense");
        // rhs = density * sparse sizes - (1 - density) * dense sizes, so the kept total is exactly density * total.
        Assert.That(kept, Is.EqualTo(0.6 * total).Within(1e-6 * total));
        Assert.That(d.All(x => x is > 0 and <= 1), Is.True, string.Join(", ", d));
        var raw = shapes.Select(s => s.Sum() / s.Aggregate(1.0, (a, x) => a * x)).ToArray();
        Assert.That(d[1], Is.LessThan(1.0));
        Assert.That(d[3], Is.LessThan(1.0));
        Assert.That(d[3] / d[1], Is.EqualTo(raw[3] / raw[1]).Within(1e-9), "sparse layers keep the ERK ratio");
        var noDense = Masking.ErkDensities([new[] { 64, 64 }, new[] { 32, 128 }], 0.5);
        Assert.That(noDense[0] * 4096 + noDense[1] * 4096, Is.EqualTo(0.5 * 8192).Within(1e-6));
    }

    [Test]
    public void SnipDensitiesMatchADirectThresholdCount()
    {
        var (h, seed) = MakeHolder();
        var rng = new SlakRandom(seed + 7);
        var grads = h.NamedParameters().ToDictionary(p => p.Name, p => Tensor.RandN(rng, p.Tensor.Shape, Device.Cpu).ToArray());
        var m = new Masking(h.NamedParameters(), new SparseOptions { Init = SparseInit.Snip, Density = 0.6, DenseThreshold = 1.0 }, new SlakRandom(seed));
        var scores = m.Candidates.Select(c => c.Parameter.ToArray().Zip(grads[c.Name], (w, g) => (double)Math.Abs(w * g)).ToArray()).ToList();
        var all = scores.SelectMany(s => s).OrderByDescending(x => x).ToArray();
        int k = (int)(all.Length * 0.6);
        double threshold = all[k - 1];
        var expected = scores.Select(s => (double)s.Count(x => x > threshold) / s.Length).ToArray();
        var actual = m.SnipDensities(m.Candidates.Select(c => c.Parameter.ToArray().Zip(grads[c.Name], (w, g) => MathF.Abs(w * g)).ToArray()).ToList());
        Assert.That(actual, Is.EqualTo(expected).Within(1e-9), $"seed {seed}");
        m.Initialize(grads);
        double live = m.Layers.Sum(l => l.Live), total = m.Layers.Sum(l => l.Numel);
        Assert.That(live / total, Is.EqualTo(0.6).Within(0.05), $"seed {seed}");
    }

    [Test]
    public void NearlyDenseLayersAreDropped()
    {
        var (h, seed) = MakeHolder();
        var m = new Masking(h.NamedParameters(), new SparseOptions { Init = SparseInit.Uniform, Density = 0.999 }, new SlakRandom(seed));
        m.Initialize();
        Assert.That(m.Layers.Where(l => l.Density >= 0.99), Is.Empty, $"seed {seed}");
    }

    [TestCase(SparseGrowth.Random)]
    [TestCase(SparseGrowth.Gradient)]
    public void OurSemanticsKeepPrunedWeightsAndMomentsZeroAndCountsStable(SparseGrowth growth)
    {
        var (h, seed) = MakeHolder();
        var rng = new SlakRandom(seed + 1);
        var opts = new SparseOptions { Init = SparseInit.Uniform, Density = 0.5, UpdateFrequency = 2, PruneRate = 0.3, Growth = growth };
        var m = new Masking(h.NamedParameters(), opts, new SlakRandom(seed));
        m.Initialize();
        m.SetTotalSteps(10);
        var opt = new AdamW(h.NamedParameters(), lr: 0.01f);
        m.Attach(opt);
        for (long step = 1; step <= 8; step++)
        {
            RandomGrads(h, rng);
            opt.Step();
            var before = m.Layers.ToDictionary(l => l.Name, l => (Mask: l.MaskBytes(), Live: l.Live));
            bool updated = m.AfterOptimizerStep(step, opt);
            Assert.That(updated, Is.EqualTo(step % 2 == 0));
            foreach (var l in m.Layers)
            {
                var mask = l.MaskBytes();
                var w = l.Parameter.ToArray();
                var st = opt[l.Name];
                var mm = st.ExpAvg!.ToArray();
                var vv = st.ExpAvgSq!.ToArray();
                for (int i = 0; i < mask.Length; i++)
                {
                    if (mask[i] == 0)
                        Assert.That((w[i], mm[i], vv[i]), Is.EqualTo((0f, 0f, 0f)), $"{l.Name}[{i}] pruned, step {step}, seed {seed}");
                    else if (before[l.Name].Mask[i] == 0)
                        Assert.That((w[i], mm[i], vv[i]), Is.EqualTo((0f, 0f, 0f)), $"{l.Name}[{i}] regrown starts at 0, step {step}, seed {seed}");
                }
                long b = before[l.Name].Live;
                Assert.That(l.Live, Is.EqualTo(b), $"{l.Name}: our semantics regrow exactly as many as pruned, step {step}, seed {seed}");
                if (updated) Assert.That(mask.SequenceEqual(before[l.Name].Mask), Is.False, $"{l.Name} mask changed at step {step}");
            }
            h.ZeroGrad();
        }
    }

    [Test]
    public void ReferenceRandomGrowthKeepsCountsWithinTheBinomialExpectation()
    {
        var (h, seed) = MakeHolder();
        var opts = new SparseOptions { Init = SparseInit.Uniform, Density = 0.5, UpdateFrequency = 1, PruneRate = 0.3, Semantics = SparseSemantics.Reference };
        var m = new Masking(h.NamedParameters(), opts, new SlakRandom(seed));
        m.Initialize();
        int changed = 0;
        for (int round = 0; round < 4; round++)
        {
            var before = m.Layers.ToDictionary(l => l.Name, l => l.Live);
            m.Update(0.3, null);
            foreach (var l in m.Layers)
            {
                long b = before[l.Name], removed = (long)Math.Ceiling(0.3 * b), inactive = l.Numel - b + removed;
                double q = (double)removed / inactive, sd = Math.Sqrt(inactive * q * (1 - q));
                // Regrown ~ Binomial(inactive, q): the live count moves by (regrown - removed), mean 0.
                Assert.That(Math.Abs(l.Live - b), Is.LessThanOrEqualTo(5 * sd + 1), $"{l.Name} round {round}, seed {seed}");
                if (l.Live != b) changed++;
            }
        }
        Assert.That(changed, Is.GreaterThan(0), $"reference growth is Bernoulli, so some count should move (seed {seed})");
    }

    [Test]
    public void ReferenceSemanticsKeepDenseMomentsAndReZeroWeights()
    {
        var (h, seed) = MakeHolder();
        var rng = new SlakRandom(seed + 1);
        var opts = new SparseOptions { Init = SparseInit.Uniform, Density = 0.5, UpdateFrequency = 0, Semantics = SparseSemantics.Reference };
        var m = new Masking(h.NamedParameters(), opts, new SlakRandom(seed));
        m.Initialize();
        m.SetTotalSteps(10);
        var opt = new AdamW(h.NamedParameters(), lr: 0.01f);
        m.Attach(opt);
        Assert.That(opt.MaskMoments, Is.False);
        RandomGrads(h, rng);
        opt.Step();
        var l = m.Layers[0];
        var mask = l.MaskBytes();
        var w = l.Parameter.ToArray();
        var mm = opt[l.Name].ExpAvg!.ToArray();
        int prunedWithMoment = 0;
        for (int i = 0; i < mask.Length; i++)
        {
            if (mask[i] == 0)
            {
                Assert.That(w[i], Is.Zero, $"weight re-zeroed at {i}, seed {seed}");
                if (mm[i] != 0) prunedWithMoment++;
            }
        }
        Assert.That(prunedWithMoment, Is.GreaterThan(0), $"moments stay dense under reference semantics, seed {seed}");
    }

    [Test]
    public void DepthwiseMaskZeroesPrunedTapGradients()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        var model = TinyNet.Make(seed, dropPath: 0f);
        var m = new Masking(model.Module.NamedParameters(), new SparseOptions { Init = SparseInit.Uniform, Density = 0.5 }, new SlakRandom(seed))
        {
            MaskBinder = model.MaskBinder,
        };
        m.Initialize();
        var x = Tensor.RandN(new SlakRandom(seed + 3), [3, 1, 8, 8], Device.Cpu);
        F.CrossEntropy(model.Forward(x), [0, 1, 2]).Backward();
        var dw = m.Find("dw.weight")!;
        var g = dw.Parameter.Grad!.ToArray();
        var mask = dw.MaskBytes();
        for (int i = 0; i < g.Length; i++) if (mask[i] == 0) Assert.That(g[i], Is.Zero, $"dw grad at pruned tap {i}, seed {seed}");
        Assert.That(g.Where((v, i) => mask[i] == 1).Any(v => v != 0), Is.True, $"live taps get gradients, seed {seed}");
    }

    [Test]
    public void LoadMasksRejectsBadInput()
    {
        var (h, seed) = MakeHolder();
        var m = new Masking(h.NamedParameters(), new SparseOptions(), new SlakRandom(seed));
        Assert.That(() => m.LoadMasks(new Dictionary<string, byte[]> { ["nope"] = [1] }), Throws.ArgumentException.With.Message.Contains("nope"));
        var m2 = new Masking(h.NamedParameters(), new SparseOptions(), new SlakRandom(seed));
        Assert.That(() => m2.LoadMasks(new Dictionary<string, byte[]> { ["fc"] = new byte[3] }), Throws.ArgumentException.With.Message.Contains("3 elements"));
    }
}
