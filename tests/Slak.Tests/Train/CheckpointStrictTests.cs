// Strict checkpoints (issue 30): resuming from a trainer file with any entry missing, unknown, of the wrong dtype or
// shape, or with a metadata value that does not parse, is an InvalidDataException naming the file and the entry
// (never a KeyNotFoundException, FormatException or JsonException, never a silent reset); a flipped bit anywhere is
// a checksum error naming the tensor; model weights are checked the same way, num_batches_tracked included.
using NUnit.Framework;
using Slak.IO;
using Slak.Train;

namespace Slak.Tests.Train;

public class CheckpointStrictTests
{
    private const ulong Seed = 11;
    private static string _run = "";
    private string _work = "";

    [OneTimeSetUp]
    public void TrainOnce()
    {
        _run = Path.Combine(Path.GetTempPath(), "slak-strict-tests", Guid.NewGuid().ToString("N"));
        RunIntegrityKit.TrainRun(_run, Seed, epochs: 1);
    }

    [OneTimeTearDown]
    public void RemoveRun()
    {
        if (Directory.Exists(Path.GetDirectoryName(_run))) Directory.Delete(Path.GetDirectoryName(_run)!, recursive: true);
    }

    [SetUp]
    public void CopyRun()
    {
        _work = _run + "-" + Guid.NewGuid().ToString("N")[..8];
        foreach (var f in Directory.GetFiles(_run, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(_work, Path.GetRelativePath(_run, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
    }

    private string TrainerFile => Path.Combine(_work, "last", "trainer.safetensors");

    private string ModelFile => Path.Combine(_work, "last", "model.safetensors");

    private static string FirstMasked(SafeTensorsFile f) =>
        System.Text.Json.JsonSerializer.Deserialize<string[]>(f.Metadata["masked_layers"])!.First();

    [Test]
    public void TheUndamagedCheckpointLoads()
    {
        var t = RunIntegrityKit.Resume(_work, Seed);
        Assert.That(t.Epoch, Is.EqualTo(1));
        Assert.That(t.Masking!.Layers, Is.Not.Empty);
        var f = SafeTensorsFile.Read(TrainerFile);
        Assert.That(f.Verified, Is.True);
        Assert.That(f.Names.Count(n => n.StartsWith("mask.", StringComparison.Ordinal)), Is.EqualTo(t.Masking.Layers.Count));
    }

    // Each case removes, adds or changes one entry (with fresh checksums, so only strictness can catch it).
    private static IEnumerable<TestCaseData> EntryDamage()
    {
        yield return new TestCaseData("optim.exp_avg.stem.weight", "remove", "missing: [optim.exp_avg.stem.weight]").SetName("MissingExpAvg");
        yield return new TestCaseData("optim.exp_avg_sq.head.bias", "remove", "missing: [optim.exp_avg_sq.head.bias]").SetName("MissingExpAvgSq");
        yield return new TestCaseData("ema.bn.num_batches_tracked", "remove", "missing: [ema.bn.num_batches_tracked]").SetName("MissingEma");
        yield return new TestCaseData("mask.", "remove", "missing: [mask.").SetName("MissingMask");
        yield return new TestCaseData("junk.tensor", "add", "unknown: [junk.tensor]").SetName("UnknownEntry");
        yield return new TestCaseData("optim.exp_avg.dw.weight", "dtype", "'optim.exp_avg.dw.weight' is F64").SetName("WrongDType");
        yield return new TestCaseData("optim.exp_avg.dw.weight", "shape", "'optim.exp_avg.dw.weight' is F32 (54), expected F32 (6, 1, 3, 3)").SetName("WrongShape");
    }

    [TestCaseSource(nameof(EntryDamage))]
    public void ADamagedEntryIsNamed(string name, string how, string expected)
    {
        RunIntegrityKit.Rewrite(TrainerFile, (entries, meta) =>
        {
            if (name == "mask.") name = "mask." + FirstMasked(SafeTensorsFile.Read(TrainerFile));
            var e = entries.GetValueOrDefault(name);
            switch (how)
            {
                case "remove": Assert.That(entries.Remove(name), Is.True, name); break;
                case "add": entries[name] = (SafeTensorsDType.F32, [1], new byte[4]); break;
                case "dtype": entries[name] = (SafeTensorsDType.F64, e.Shape, new byte[e.Data.Length * 2]); break;
                case "shape": entries[name] = (e.DType, [e.Data.Length / 4], e.Data); break;
            }
        });
        Assert.That(() => RunIntegrityKit.Resume(_work, Seed), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("trainer.safetensors").And.Message.Contains(expected));
    }

    private static IEnumerable<TestCaseData> MetadataDamage()
    {
        yield return new TestCaseData("best_top1", "abc", "metadata 'best_top1' = 'abc' is not a finite number").SetName("NonNumericBestTop1");
        yield return new TestCaseData("epoch", "-1", "metadata 'epoch' = '-1' is not a non-negative integer").SetName("NegativeEpoch");
        yield return new TestCaseData("optim_steps", "{\"stem.weight\": ", "metadata 'optim_steps'").SetName("BadOptimStepsJson");
        yield return new TestCaseData("optim_steps", "{}", "optim_steps has no step count for 'stem.weight'").SetName("OptimStepsMissingAParameter");
        yield return new TestCaseData("masked_layers", null, "metadata has no 'masked_layers'").SetName("MissingMaskedLayers");
        yield return new TestCaseData("masked_layers", "[\"nope\"]", "masked_layers names 'nope'").SetName("UnknownMaskedLayer");
        yield return new TestCaseData("options", "{\"epochs\": ", "metadata 'options'").SetName("BadOptionsJson");
        yield return new TestCaseData("options", "{\"epochs\": 0}", "the saved options are invalid").SetName("InvalidOptionsValue");
        yield return new TestCaseData("rng.model", "1,x", "generator state").SetName("BadGeneratorState");
    }

    [TestCaseSource(nameof(MetadataDamage))]
    public void ADamagedMetadataValueIsReportedAsSuch(string key, string? value, string expected)
    {
        RunIntegrityKit.Rewrite(TrainerFile, (_, meta) =>
        {
            if (value is null) meta.Remove(key);
            else meta[key] = value;
        });
        Assert.That(() => RunIntegrityKit.Resume(_work, Seed), Throws.InstanceOf<InvalidDataException>().With.Message.Contains(expected));
    }

    [Test]
    public void AnEditedOptionWithoutFreshChecksumsIsCaught()
    {
        // The case: lr edited inside the trainer file (keeping the old checksums).
        var f = SafeTensorsFile.Read(TrainerFile);
        string old = f.Metadata[TensorChecksums.MetadataKey];
        RunIntegrityKit.Rewrite(TrainerFile, (_, meta) =>
        {
            meta["options"] = meta["options"].Replace("\"lr\": 0.01", "\"lr\": 0.02", StringComparison.Ordinal);
            meta[TensorChecksums.MetadataKey] = old;
        }, checksums: false);
        Assert.That(() => Trainer.ReadCheckpointOptions(_work), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("checksum mismatch in the metadata"));
    }

    [TestCase("trainer.safetensors", "optim.exp_avg.head.weight")]
    [TestCase("trainer.safetensors", "mask.dw.weight")]
    [TestCase("model.safetensors", "head.weight")]
    [TestCase("model.safetensors", "bn.num_batches_tracked")]
    public void AFlippedBitIsACheckSumErrorNamingFileAndTensor(string fileName, string tensor)
    {
        string path = Path.Combine(_work, "last", fileName);
        if (!SafeTensorsFile.Read(path).Contains(tensor)) Assert.Ignore($"{tensor} is not in this run's {fileName}");
        RunIntegrityKit.FlipBit(path, tensor);
        Assert.That(() => RunIntegrityKit.Resume(_work, Seed), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains(fileName).And.Message.Contains($"checksum mismatch in tensor '{tensor}'"));
    }

    [Test]
    public void ModelWeightsAreStrictAboutBatchNormCounters()
    {
        RunIntegrityKit.Rewrite(ModelFile, (entries, _) => entries.Remove("bn.num_batches_tracked"));
        Assert.That(() => RunIntegrityKit.Resume(_work, Seed), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("missing: [bn.num_batches_tracked]"));
        CopyRun();
        RunIntegrityKit.Rewrite(ModelFile, (entries, _) => entries["bn.num_batches_tracked"] = (SafeTensorsDType.F32, [], new byte[4]));
        Assert.That(() => RunIntegrityKit.Resume(_work, Seed), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("'bn.num_batches_tracked' is F32, expected I64"));
    }

    [Test]
    public void LoadingRestoresTheBatchNormCounter()
    {
        var net = new BnNet(3);
        var w = new SafeTensorsWriter();
        foreach (var (name, t) in net.StateDict())
            ModelWeights.AddTensor(w, name, name.EndsWith("num_batches_tracked", StringComparison.Ordinal) ? [41f] : t.ToArray(), t.ShapeArray);
        ModelWeights.Load(SafeTensorsFile.Parse(w.ToBytes()), net);
        net.Train();
        using (TensorScope.Begin()) net.Forward(Tensor.RandN(new SlakRandom(1), [2, 1, 8, 8], Device.Cpu, 0, 1));
        Assert.That(net.Bn.NumBatchesTracked.Item(), Is.EqualTo(42f), "the counter continues from the loaded value");
    }
}
