// Masks under bf16: the nano SLaK trained for 2 epochs x 3 steps on the CPU with --precision bf16, a prune/regrow
// round after every step, must keep every pruned weight exactly 0 in the fp32 master and in EVERY bf16 copy a kernel
// read (observed through Bf16Backend.CopyObserver: wherever the master is 0 the copy is +0 or -0, and every masked
// layer's copies were among them), under both sparse semantics; with ours its AdamW moments are exactly 0 and its
// gradient 0 where one is kept, with the reference's the moments stay dense (some pruned weight has a nonzero second
// moment); live counts equal the masks'; and the checkpoint written holds the fp32 master (not bf16 values).
using NUnit.Framework;
using Slak.Backends;
using Slak.IO;
using Slak.Sparse;
using Slak.Tests.Support;
using Slak.Tests.Train;
using Slak.Train;

namespace Slak.Tests.Precision;

public sealed class Bf16SparsityTests
{
    [TestCase(SparseSemantics.Ours)]
    [TestCase(SparseSemantics.Reference)]
    public void PrunedWeightsStayZeroInTheMasterEveryBf16CopyAndTheOptimizerState(SparseSemantics semantics)
    {
        ulong seed = (ulong)TestRandom.ForCurrentTest().Seed; // SLAK_TEST_SEED replays it
        string folder = Path.Combine(Path.GetTempPath(), "slak-bf16-sparsity", Guid.NewGuid().ToString("N"));
        var train = TinyNet.Synthetic(12, seed, size: 32);
        var test = TinyNet.Synthetic(4, seed + 1, size: 32);
        var (model, _) = SlakTrainable.Create("slak_nano", 1, 4, 0.0, seed, Device.Cpu);
        var options = new TrainOptions
        {
            Epochs = 2, BatchSize = 4, Lr = 4e-3, WarmupEpochs = 0, Seed = seed, Sparse = true, SparseInit = SparseInit.Uniform,
            Density = 0.5, UpdateFrequency = 1, PruneRate = 0.3, Precision = Slak.Precision.Bf16, Device = "cpu",
            SparseSemantics = semantics,
        };
        var trainer = new Trainer(SlakTrainable.From(model, semantics), train, test, test, options, folder);
        var sources = new HashSet<object>(ReferenceEqualityComparer.Instance); // storages of the copied tensors
        long copies = 0, zerosChecked = 0;
        var leaks = new List<string>();
        Bf16Backend.CopyObserver = (source, copy) =>
        {
            copies++;
            var s = source.ToArray();
            var c = copy.ToArray();
            for (int i = 0; i < s.Length; i++)
            {
                if (s[i] != 0f) continue;
                zerosChecked++;
                if (c[i] != 0f && leaks.Count < 5) leaks.Add($"{source.Describe()}[{i}] = 0 but its bf16 copy holds {c[i]:R}");
            }
            sources.Add(source.Storage);
        };
        try
        {
            var result = trainer.Run();
            Assert.That(result.Completed, Is.True, result.Message);
        }
        finally
        {
            Bf16Backend.CopyObserver = null;
        }
        string ctx = $"({semantics} semantics, seed {seed})";
        Assert.That(leaks, Is.Empty, ctx);
        Assert.That(copies, Is.GreaterThan(0), ctx);
        Assert.That(zerosChecked, Is.GreaterThan(0), ctx);
        var masking = trainer.Masking!;
        Assert.That(masking.Layers, Is.Not.Empty);
        Assert.That(trainer.Step, Is.EqualTo(6));
        var unobserved = masking.Layers.Where(l => !sources.Contains(l.Parameter.Storage)).Select(l => l.Name).ToList();
        Assert.That(unobserved, Is.Empty, $"every masked weight's bf16 copy was observed {ctx}");
        long pruned = 0, denseMoments = 0;
        foreach (var layer in masking.Layers)
        {
            var mask = layer.Mask.ToArray();
            var w = layer.Parameter.ToArray();
            var state = trainer.Optimizer[layer.Name];
            var m = state.ExpAvg!.ToArray();
            var v = state.ExpAvgSq!.ToArray();
            var g = layer.Parameter.Grad?.ToArray();
            Assert.That(mask.LongCount(x => x != 0), Is.EqualTo(layer.Live), $"{layer.Name}: live count {ctx}");
            for (int i = 0; i < mask.Length; i++)
            {
                if (mask[i] != 0f) continue;
                pruned++;
                Assert.That(w[i], Is.EqualTo(0f), $"{layer.Name}[{i}]: pruned master weight {ctx}");
                if (semantics == SparseSemantics.Reference)
                {
                    // The reference's semantics: dense gradients and unmasked moments; only the weight is re-zeroed.
                    denseMoments += v[i] != 0f ? 1 : 0;
                    continue;
                }
                Assert.That(m[i], Is.EqualTo(0f), $"{layer.Name}[{i}]: first moment {ctx}");
                Assert.That(v[i], Is.EqualTo(0f), $"{layer.Name}[{i}]: second moment {ctx}");
                if (g is not null) Assert.That(g[i], Is.EqualTo(0f), $"{layer.Name}[{i}]: gradient {ctx}");
            }
        }
        Assert.That(pruned, Is.GreaterThan(0), ctx);
        if (semantics == SparseSemantics.Reference)
            Assert.That(denseMoments, Is.GreaterThan(0), $"reference semantics keep moments of pruned weights {ctx}");
        // The checkpoint holds the fp32 master: some weights use the mantissa bits a bf16 value cannot hold.
        var saved = SafeTensorsFile.Read(Path.Combine(folder, "last", "model.safetensors"));
        long notBf16 = saved.Entries.Where(e => e.DType == SafeTensorsDType.F32 && e.Name.StartsWith("stages.", StringComparison.Ordinal))
            .Sum(e => e.ToFloat32().LongCount(x => (BitConverter.SingleToUInt32Bits(x) & 0xFFFFu) != 0));
        Assert.That(notBf16, Is.GreaterThan(0), $"checkpoints stay fp32 {ctx}");
        Directory.Delete(folder, recursive: true);
    }
}
