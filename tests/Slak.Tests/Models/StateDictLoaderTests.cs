// The checkpoint loader: prefixes module./backbone., legacy Decom1/Decom2 names, num_batches_tracked optional (and
// int64 in safetensors), and one exception that lists every missing key, unexpected key and shape mismatch.
using NUnit.Framework;
using Slak.Models;
using Slak.NN;
using Slak.Tests.Support;

namespace Slak.Tests.Models;

public sealed class StateDictLoaderTests
{
    private static readonly ModelConfig Small = new()
    {
        InChans = 1, NumClasses = 3, Depths = [1, 1, 1, 1], Dims = [4, 6, 6, 8], KernelSize = [5, 5, 3, 3, 3], Decom = true,
    };

    private static (SlakModel Source, Dictionary<string, StateEntry> Entries, ulong Seed) Trained()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        var model = new SlakModel(Small, ModuleInit.FromRandom(new SlakRandom(seed)));
        var entries = StateDictIO.ToEntries(model);
        // Give buffers non-default values so loading them is visible.
        foreach (var (k, e) in entries)
            if (k.EndsWith("running_var", StringComparison.Ordinal)) for (int i = 0; i < e.Data.Length; i++) e.Data[i] = 0.5f + i;
        return (model, entries, seed);
    }

    [Test]
    public void PrefixesAndLegacyNamesLoad()
    {
        var (_, entries, seed) = Trained();
        var renamed = entries.ToDictionary(
            kv => (kv.Key.StartsWith("stages", StringComparison.Ordinal) ? "module.backbone." : "backbone.") +
                  kv.Key.Replace(".LoRA1.", ".Decom1.", StringComparison.Ordinal).Replace(".LoRA2.", ".Decom2.", StringComparison.Ordinal),
            kv => kv.Value);
        foreach (var k in renamed.Keys.Where(k => k.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToList()) renamed.Remove(k);
        var target = new SlakModel(Small, ModuleInit.ForLoading());
        var (missing, unexpected) = StateDictIO.Load(target, renamed);
        Assert.That(missing, Is.Empty);
        Assert.That(unexpected, Is.Empty);
        foreach (var (name, t) in target.StateDict())
        {
            if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
            Assert.That(t.ToArray(), Is.EqualTo(entries[name].Data), $"{name} (seed {seed})");
        }
    }

    [Test]
    public void AllMismatchesReportedAtOnce()
    {
        var (_, entries, _) = Trained();
        entries.Remove("stages.1.0.pwconv2.bias");
        entries.Remove("head.weight");
        entries["stages.0.0.large_kernel.lkb_reparam.weight"] = new StateEntry([4, 1, 5, 5], new float[100]);
        entries["stages.2.0.large_kernel.LoRA1.conv.weight"] = new StateEntry([6, 1, 5, 3], new float[90]);
        var target = new SlakModel(Small, ModuleInit.ForLoading());
        var e = Assert.Throws<StateDictMismatchException>(() => StateDictIO.Load(target, entries, sourceName: "ckpt.safetensors"));
        Assert.That(e!.Missing, Is.EquivalentTo(new[] { "stages.1.0.pwconv2.bias", "head.weight" }));
        Assert.That(e.Unexpected, Is.EquivalentTo(new[] { "stages.0.0.large_kernel.lkb_reparam.weight" }));
        Assert.That(e.ShapeMismatches, Has.Count.EqualTo(1));
        Assert.That(e.Message, Does.Contain("ckpt.safetensors").And.Contain("head.weight").And.Contain("lkb_reparam")
            .And.Contain("stages.2.0.large_kernel.LoRA1.conv.weight: checkpoint (6, 1, 5, 3) vs model (6, 1, 3, 3)"));
    }

    [Test]
    public void DenseCheckpointIntoDecomposedModelHints()
    {
        var dense = new SlakModel(Small with { Decom = false }, ModuleInit.FromRandom(new SlakRandom(1)));
        var target = new SlakModel(Small, ModuleInit.ForLoading());
        var e = Assert.Throws<StateDictMismatchException>(() => StateDictIO.Load(target, StateDictIO.ToEntries(dense)));
        Assert.That(e!.Missing, Has.Some.Contains(".LoRA1.conv.weight"));
        Assert.That(e.Unexpected, Has.Some.Contains(".lkb_origin.conv.weight"));
        Assert.That(e.Message, Does.Contain("\"Decom\": false"));
    }

    [Test]
    public void NonStrictReturnsMissingAndUnexpected()
    {
        var (_, entries, _) = Trained();
        entries.Remove("norm.weight");
        entries["backbone.norm0.weight"] = new StateEntry([4], new float[4]);
        var (missing, unexpected) = StateDictIO.Load(new SlakModel(Small, ModuleInit.ForLoading()), entries, strict: false);
        Assert.That(missing, Is.EqualTo(new[] { "norm.weight" }));
        Assert.That(unexpected, Is.EqualTo(new[] { "norm0.weight" }));
    }

    [Test]
    public void AmbiguousKeysAfterStrippingAreRejected()
    {
        var (_, entries, _) = Trained();
        entries["module.head.bias"] = entries["head.bias"];
        var e = Assert.Throws<InvalidDataException>(() => StateDictIO.Load(new SlakModel(Small, ModuleInit.ForLoading()), entries));
        Assert.That(e!.Message, Does.Contain("head.bias"));
    }

    [Test]
    public void SafeTensorsRoundTripKeepsValuesAndBatchCounter()
    {
        var (source, _, seed) = Trained();
        source.Train();
        using (var scope = TensorScope.Begin())
        {
            var rng = new SlakRandom(seed + 1);
            source.Forward(Tensor.RandN(rng, [2, 1, 32, 32], Device.Cpu)); // counts one batch per BN
        }
        string path = Path.Combine(Path.GetTempPath(), $"slak-sd-{Guid.NewGuid():N}.safetensors");
        try
        {
            StateDictIO.SaveSafeTensors(source, path);
            var file = Slak.IO.SafeTensorsFile.Read(path);
            Assert.That(file.Names, Is.EqualTo(source.StateDict().Select(e => e.Name)), "state_dict order in the file");
            Assert.That(file["stages.0.0.large_kernel.LoRA1.bn.num_batches_tracked"].DType, Is.EqualTo(Slak.IO.SafeTensorsDType.I64));
            var target = new SlakModel(Small, ModuleInit.ForLoading());
            StateDictIO.LoadSafeTensors(target, path);
            foreach (var ((name, a), (_, b)) in source.StateDict().Zip(target.StateDict()))
                Assert.That(b.ToArray(), Is.EqualTo(a.ToArray()), $"{name} (seed {seed})");
            var bn = target.Blocks.First().LargeKernel.LoRA1!.Bn!;
            Assert.That(bn.NumBatchesTracked.Item(), Is.EqualTo(1f));
            target.Train();
            using var scope2 = TensorScope.Begin();
            target.Forward(Tensor.RandN(new SlakRandom(seed), [2, 1, 32, 32], Device.Cpu));
            Assert.That(bn.NumBatchesTracked.Item(), Is.EqualTo(2f), "the counter continues from the loaded value");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void ShapeOnlyModelCannotLoadOrRun()
    {
        var meta = new SlakModel(Small, ModuleInit.ShapeOnly);
        Assert.Throws<ArgumentException>(() => StateDictIO.Load(meta, new Dictionary<string, StateEntry>()));
        Assert.Throws<InvalidOperationException>(() => meta.Forward(Tensor.Zeros(1, 1, 32, 32)));
    }

    [Test]
    public void NormalizeKey()
    {
        Assert.That(StateDictIO.NormalizeKey("module.backbone.stages.0.0.large_kernel.Decom2.bn.weight"),
                    Is.EqualTo("stages.0.0.large_kernel.LoRA2.bn.weight"));
        Assert.That(StateDictIO.NormalizeKey("head.weight"), Is.EqualTo("head.weight"));
    }
}
