// The training step with its fixed costs cut (issue 27): leaf gradients adopted instead of copied
// (AutogradEngine.AdoptLeafGradients) and gradients cleared by a plain walk of the module tree (Module.ZeroGrad) must
// give the same bits as the copying path, for a seed and thread count, and the same bits again on repeat. slak_nano and
// slak_nano64 (odd widths 31, 62, 124, 249; maps 8x8 ... 1x1 and 16x16 ... 2x2) with ERK masks, AdamW and mask upkeep,
// a few steps at 1, 2 and 3 threads; every parameter and AdamW moment is compared bit for bit.
using NUnit.Framework;
using Slak.Autograd;
using Slak.Backends.Cpu;
using Slak.Models;
using Slak.Optim;
using Slak.Sparse;
using Slak.Tests.Support;
using Slak.Train;

namespace Slak.Tests.Train;

[NonParallelizable] // switches AutogradEngine.AdoptLeafGradients and CpuParallel.Threads
public sealed class StepFixedCostsTests
{
    /// <summary>Trains <paramref name="preset"/> for <paramref name="steps"/> steps on a fixed random batch and returns
    /// every parameter and moment, by name.</summary>
    private static Dictionary<string, float[]> Train(string preset, int batch, int steps, int seed)
    {
        var (model, p) = SlakTrainable.Create(preset, 1, 10, 0.0, 1, Device.Cpu);
        var trainable = SlakTrainable.From(model);
        var optimizer = new AdamW(model.NamedParameters(), 1e-3f, 0.05f);
        var masking = new Masking(model.NamedParameters(),
            new SparseOptions { Density = p.Density, Init = SparseInit.Erk, UpdateFrequency = 2 },
            new SlakRandom(3)) { MaskBinder = trainable.MaskBinder };
        masking.SetTotalSteps(steps);
        masking.Initialize();
        masking.Attach(optimizer);
        var rng = new TestRandom(seed);
        var images = rng.NormalArray((long)batch * p.InputSize * p.InputSize);
        var labels = Enumerable.Range(0, batch).Select(_ => rng.Int(0, 9)).ToArray();
        for (int step = 1; step <= steps; step++)
        {
            using (TensorScope.Begin())
            {
                var x = Tensor.FromArray(images, [batch, 1, p.InputSize, p.InputSize], Device.Cpu);
                F.CrossEntropy(trainable.Forward(x), labels).Backward();
            }
            using (TensorScope.Begin())
            using (GradMode.NoGrad())
            {
                optimizer.Step();
                masking.AfterOptimizerStep(step, optimizer);
                model.ZeroGrad();
                Assert.That(model.Parameters().All(t => t.Grad is null),
                    $"{preset} step {step}: ZeroGrad clears every gradient [seed={seed}]");
            }
        }
        var result = model.NamedParameters().ToDictionary(n => n.Name, n => n.Tensor.ToArray());
        foreach (var s in optimizer.States)
        {
            result[s.Name + ".exp_avg"] = s.ExpAvg!.ToArray();
            result[s.Name + ".exp_avg_sq"] = s.ExpAvgSq!.ToArray();
        }
        return result;
    }

    [TestCase("slak_nano", 1)]
    [TestCase("slak_nano", 2)]
    [TestCase("slak_nano", 3)]
    [TestCase("slak_nano64", 2)]
    public void AdoptingLeafGradientsGivesTheSameBitsAsCopying(string preset, int threads)
    {
        var rng = TestRandom.ForCurrentTest();
        int keepThreads = CpuParallel.Threads;
        bool keepAdopt = AutogradEngine.AdoptLeafGradients;
        try
        {
            CpuParallel.Threads = threads;
            AutogradEngine.AdoptLeafGradients = false;
            var copied = Train(preset, 4, 3, rng.Seed);
            AutogradEngine.AdoptLeafGradients = true;
            var adopted = Train(preset, 4, 3, rng.Seed);
            var again = Train(preset, 4, 3, rng.Seed);
            Assert.That(adopted.Keys, Is.EquivalentTo(copied.Keys),
                rng.Ctx($"{preset}, {threads} threads: the same tensors"));
            foreach (var (name, values) in copied)
            {
                Expect.Exactly(adopted[name], values,
                    rng.Ctx($"{preset}, {threads} threads: {name} adopted against copied"));
                Expect.Exactly(again[name], adopted[name], rng.Ctx($"{preset}, {threads} threads: {name} on repeat"));
            }
            Assert.That(copied.Values.All(v => v.All(float.IsFinite)), rng.Ctx($"{preset}: finite after training"));
        }
        finally
        {
            CpuParallel.Threads = keepThreads;
            AutogradEngine.AdoptLeafGradients = keepAdopt;
        }
    }

    [Test]
    public void ParametersListsNamedParametersInOrder()
    {
        var (model, _) = SlakTrainable.Create("slak_nano", 1, 10, 0.0, 1, Device.Cpu);
        var named = model.NamedParameters().Select(n => n.Tensor).ToList();
        var plain = model.Parameters().ToList();
        Assert.That(plain.Count, Is.EqualTo(named.Count));
        for (int i = 0; i < named.Count; i++)
            Assert.That(plain[i], Is.SameAs(named[i]), $"parameter {i}");
    }
}
