// The pieces of the trajectory mode (issue 26) on their own: .npz reading (numpy's compressed archive of the fixture,
// a stored one written here, and every refusal with its message), the model config checked against the data, the
// initial weights' masks, steps.jsonl, and the learning-rate schedule compared step by step with the reference's
// cosine_scheduler as re-implemented in tools/make_trajectory_fixture.py (schedule_cases in expected.json).
using System.CommandLine;
using System.IO.Compression;
using System.Text.Json;
using NUnit.Framework;
using Slak.Data;
using Slak.IO;
using Slak.Models;
using Slak.Optim;
using Slak.Tests.Models;
using Slak.Train;

namespace Slak.Tests.Train;

public class TrajectoryInputTests
{
    private static string Fixture(string name) => TestPaths.Data("trajectory", name);

    private string _dir = "";

    [SetUp]
    public void CreateFolder() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), $"slak-traj-{Guid.NewGuid():N}"));

    [TearDown]
    public void RemoveFolder() => Directory.Delete(_dir, recursive: true);

    private string WriteNpz(string name, params (string Entry, byte[] Npy)[] entries)
    {
        string path = Path.Combine(_dir, name);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (entry, npy) in entries)
        {
            using var s = zip.CreateEntry(entry, CompressionLevel.NoCompression).Open();
            s.Write(npy);
        }
        return path;
    }

    private static byte[] Images(int n, int c = 1, int h = 4, int w = 4) =>
        Npy.Encode(Enumerable.Range(0, n * c * h * w).Select(i => i * 0.01f).ToArray(), [n, c, h, w]);

    private static byte[] Labels(params long[] labels) => Npy.Encode(labels, [labels.Length]);

    [Test]
    public void ReadsTheFixtureWrittenByNumpy()
    {
        var arrays = Npz.Read(Fixture("data.npz"));
        Assert.That(arrays.Keys.Order(), Is.EqualTo(new[] { "images", "labels" }));
        var data = NpzImages.Load(Fixture("data.npz"), 10);
        Assert.That((data.Count, data.Channels, data.Height, data.Width, data.ClassCount), Is.EqualTo((160, 1, 32, 32, 10)));
        // Fashion-MNIST's first training labels (the IDX file's order): ankle boot, T-shirt, T-shirt, dress.
        Assert.That(data.Labels.Take(4), Is.EqualTo(new[] { 9, 0, 0, 3 }));
        // The padding border is the normalised 0: (0 - 0.2860) / 0.3530, as float32.
        Assert.That(data.Images[0], Is.EqualTo((0f - 0.2860f) / 0.3530f));
    }

    [Test]
    public void ReadsAStoredArchive()
    {
        string path = WriteNpz("ok.npz", ("images.npy", Images(3)), ("labels.npy", Labels(2, 0, 1)));
        var data = NpzImages.Load(path);
        Assert.That((data.Count, data.ClassCount), Is.EqualTo((3, 3)));
        Assert.That(data.Images[5], Is.EqualTo(5 * 0.01f));
    }

    [Test]
    public void RefusesBadArchives()
    {
        string Message(Func<object> read) => Assert.Throws<InvalidDataException>(() => read())!.Message;

        string notZip = Path.Combine(_dir, "not.npz");
        File.WriteAllText(notZip, "hello");
        Assert.That(Message(() => Npz.Read(notZip)), Does.Contain("not a zip archive"));

        string noLabels = WriteNpz("nolabels.npz", ("images.npy", Images(2)));
        Assert.That(Message(() => NpzImages.Load(noLabels)), Does.Contain("no array 'labels'").And.Contain("[images]"));

        string f64 = WriteNpz("f64.npz", ("images.npy", Npy.Encode(new double[16], [1, 1, 4, 4])), ("labels.npy", Labels(0)));
        Assert.That(Message(() => NpzImages.Load(f64)), Does.Contain("'images' is <f8, expected float32"));

        string rank3 = WriteNpz("rank3.npz", ("images.npy", Npy.Encode(new float[16], [1, 4, 4])), ("labels.npy", Labels(0)));
        Assert.That(Message(() => NpzImages.Load(rank3)), Does.Contain("'images' has shape (1, 4, 4), expected (N, C, H, W)"));

        string floatLabels = WriteNpz("fl.npz", ("images.npy", Images(2)), ("labels.npy", Npy.Encode(new float[2], [2])));
        Assert.That(Message(() => NpzImages.Load(floatLabels)), Does.Contain("'labels' is <f4, expected int64"));

        string count = WriteNpz("count.npz", ("images.npy", Images(3)), ("labels.npy", Labels(0, 1)));
        Assert.That(Message(() => NpzImages.Load(count)), Does.Contain("'labels' has shape (2,), expected (3,) for 3 images"));

        string negative = WriteNpz("neg.npz", ("images.npy", Images(2)), ("labels.npy", Labels(0, -1)));
        Assert.That(Message(() => NpzImages.Load(negative)), Does.Contain("label 1 is -1"));

        string big = WriteNpz("big.npz", ("images.npy", Images(2)), ("labels.npy", Labels(0, 7)));
        Assert.That(Message(() => NpzImages.Load(big, 5)), Does.Contain("label 1 is 7, outside [0, 5)").And.Contain("num_classes = 5"));

        var nan = Enumerable.Repeat(0f, 32).ToArray();
        nan[20] = float.NaN;
        string nanPath = WriteNpz("nan.npz", ("images.npy", Npy.Encode(nan, [2, 1, 4, 4])), ("labels.npy", Labels(0, 1)));
        Assert.That(Message(() => NpzImages.Load(nanPath)), Does.Contain("image value 20 (image 1) is NaN"));
    }

    private int Train(params string[] args) =>
        new Slak.Cli.Commands.TrainCommand().Build().Parse([.. args, "--out", Path.Combine(_dir, "run"), "--device", "cpu"])
            .Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });

    [Test]
    public void ConfigThatDisagreesWithTheDataIsRefused()
    {
        var config = ModelConfig.Load(Fixture("config.json"));
        string threeChannels = Path.Combine(_dir, "rgb.json");
        (config with { InChans = 3 }).Save(threeChannels);
        var e = Assert.Throws<ArgumentException>(() => Train("--model-config", threeChannels, "--data", Fixture("data.npz")));
        Assert.That(e!.Message, Does.Contain("in_chans is 3 but the data has 1 channels"));

        string fiveClasses = Path.Combine(_dir, "five.json");
        (config with { NumClasses = 5 }).Save(fiveClasses);
        var d = Assert.Throws<InvalidDataException>(() => Train("--model-config", fiveClasses, "--data", Fixture("data.npz")));
        Assert.That(d!.Message, Does.Contain("outside [0, 5)").And.Contain("num_classes = 5"));

        Assert.Throws<ArgumentException>(() => Train("--model-config", Fixture("config.json"), "--preset", "slak_nano", "--data", Fixture("data.npz")));
        var n = Assert.Throws<ArgumentException>(() => Train("--model-config", Fixture("config.json"), "--data", Fixture("data.npz"),
            "--init-weights", Fixture("init.safetensors"), "--no-sparse"));
        Assert.That(n!.Message, Does.Contain("--no-sparse contradicts the masks"));
    }

    [Test]
    public void InitialWeightsReturnMasksAndRefuseBadOnes()
    {
        var config = ModelConfig.Load(Fixture("config.json"));
        var model = new SlakModel(config, Slak.NN.ModuleInit.FromRandom(new SlakRandom(1), Device.Cpu));
        var masks = InitialWeights.Load(model, Fixture("init.safetensors"));
        Assert.That(masks, Has.Count.EqualTo(25));
        var file = SafeTensorsFile.Read(Fixture("init.safetensors"));
        var stem = model.StateDict().Single(s => s.Name == "downsample_layers.0.0.weight").Tensor.ToArray();
        Assert.That(stem, Is.EqualTo(file["downsample_layers.0.0.weight"].ToFloat32()));

        string Rewrite(string name, Action<SafeTensorsWriter> extra)
        {
            var w = new SafeTensorsWriter();
            foreach (var e in file.Entries)
                if (e.DType == SafeTensorsDType.U8) w.AddUInt8(e.Name, e.ToUInt8(), e.GetShape());
                else if (e.DType == SafeTensorsDType.I64) w.AddInt64(e.Name, e.ToInt64(), e.GetShape());
                else w.AddFloat32(e.Name, e.ToFloat32(), e.GetShape());
            extra(w);
            string path = Path.Combine(_dir, name);
            w.Write(path);
            return path;
        }
        string unknown = Rewrite("unknown.safetensors", w => w.AddUInt8("mask.stages.9.weight", new byte[4], [2, 2]));
        Assert.That(Assert.Throws<InvalidDataException>(() => InitialWeights.Load(model, unknown))!.Message,
            Does.Contain("'mask.stages.9.weight' masks 'stages.9.weight', which is not a parameter"));
        string floatMask = Rewrite("float.safetensors", w => w.AddFloat32("mask.stages.0.0.gamma", new float[8], [8]));
        Assert.That(Assert.Throws<InvalidDataException>(() => InitialWeights.Load(model, floatMask))!.Message,
            Does.Contain("mask 'mask.stages.0.0.gamma' is F32"));
    }

    [Test]
    public void InitialMasksNeedSparseOptions()
    {
        var config = ModelConfig.Load(Fixture("config.json"));
        var model = new SlakModel(config, Slak.NN.ModuleInit.FromRandom(new SlakRandom(1), Device.Cpu));
        var data = NpzImages.Load(Fixture("data.npz"), 10);
        var trainer = new Trainer(SlakTrainable.From(model), data, null, new TrainOptions { Epochs = 1, BatchSize = 8, Sparse = false }, null)
        {
            InitialMasks = new Dictionary<string, byte[]> { ["head.weight"] = new byte[240] },
        };
        Assert.That(Assert.Throws<InvalidOperationException>(trainer.Initialize)!.Message, Does.Contain("Sparse = false"));
    }

    [Test]
    public void ScheduleMatchesTheReferenceCosineScheduler()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture("expected.json")));
        int cases = 0;
        foreach (var c in doc.RootElement.GetProperty("schedule_cases").EnumerateArray())
        {
            int warmupSteps = c.GetProperty("warmup_steps").GetInt32();
            var s = CosineSchedule.ForRun(c.GetProperty("base").GetDouble(), c.GetProperty("final").GetDouble(),
                c.GetProperty("epochs").GetInt32(), c.GetProperty("niter_per_ep").GetInt32(), c.GetProperty("warmup_epochs").GetDouble(),
                warmupSteps > 0 ? warmupSteps : null);
            var values = c.GetProperty("values").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            Assert.That(s.TotalSteps, Is.EqualTo(values.Length));
            for (int i = 0; i < values.Length; i++)
                Assert.That(s.ValueAt(i), Is.EqualTo(values[i]).Within(1e-15 * Math.Abs(values[i]) + 1e-300),
                    $"case {cases} ({c.GetRawText()[..80]}...), step {i + 1}");
            cases++;
        }
        Assert.That(cases, Is.EqualTo(6));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CosineSchedule.ForRun(1e-3, 0, 1, 10, 0, 11));
        Assert.That(e!.Message, Does.Contain("warmup of 11 steps must be in [0, 10]"));
    }

    [Test]
    public void ResumedRunWritesTheUninterruptedStepLog()
    {
        var config = ModelConfig.Load(Fixture("config.json"));
        var data = NpzImages.Load(Fixture("data.npz"), 10).Take(40);
        var options = new TrainOptions
        {
            Epochs = 2, BatchSize = 8, WarmupEpochs = 0.25, DropPath = 0, Sparse = true, UpdateFrequency = 0,
            Normalize = false, CropPadding = 0, HorizontalFlip = false, Shuffle = false, Device = "cpu", ValSplit = 0,
        };
        TrainableModel Model()
        {
            var model = new SlakModel(config, Slak.NN.ModuleInit.FromRandom(new SlakRandom(1), Device.Cpu));
            return SlakTrainable.From(model);
        }
        IReadOnlyList<StepRecord> Run(string folder, long? stopAfter)
        {
            var model = Model();
            var masks = InitialWeights.Load(model.Module, Fixture("init.safetensors"));
            var trainer = new Trainer(model, data, null, options, folder) { InitialMasks = masks, StopAfterSteps = stopAfter };
            trainer.Run();
            return StepLog.Read(Path.Combine(folder, StepLog.FileName));
        }
        var whole = Run(Path.Combine(_dir, "whole"), null);
        Assert.That(whole.Select(r => r.Step), Is.EqualTo(Enumerable.Range(1, 10).Select(i => (long)i)));
        string split = Path.Combine(_dir, "split");
        Assert.That(Run(split, 7), Has.Count.EqualTo(7), "interrupted after 7 steps (the checkpoint is at 5)");
        var resumed = Trainer.Resume(Model(), data, null, split);
        Assert.That(resumed.Run().Completed, Is.True);
        Assert.That(StepLog.Read(Path.Combine(split, StepLog.FileName)), Is.EqualTo(whole), "steps 6 and 7 redone, not doubled");
    }

    [Test]
    public void StepLogKeepsEarlierRecordsOnResume()
    {
        using (var log = StepLog.Open(_dir, 0))
            for (int k = 1; k <= 4; k++) log.Append(k, 2.0 / k, 1e-3 * k);
        string path = Path.Combine(_dir, StepLog.FileName);
        Assert.That(File.ReadLines(path).First(), Is.EqualTo("{\"step\": 1, \"loss\": 2, \"lr\": 0.001}"));
        Assert.That(StepLog.Read(path)[2], Is.EqualTo(new StepRecord(3, 2.0 / 3, 1e-3 * 3)), "round trip of full precision");
        using (var log = StepLog.Open(_dir, 2)) log.Append(3, 0.5, 0.25);
        Assert.That(StepLog.Read(path).Select(r => (r.Step, r.Loss)), Is.EqualTo(new[] { (1L, 2.0), (2L, 1.0), (3L, 0.5) }));
        Assert.Throws<ArgumentException>(() => StepLog.FormatLine(new StepRecord(1, double.NaN, 0)));
    }
}
