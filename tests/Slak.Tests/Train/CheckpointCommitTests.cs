// Commit order and resume (issue 30): a resumed run is byte-identical to an uninterrupted one (checkpoint files
// included, BatchNorm counters too); a non-finite weight stops the run before any checkpoint is replaced; a failed or
// disk-full checkpoint write removes its temporary folders and leaves last/, best/ and metrics.jsonl agreeing on the
// previous epoch; --epochs may be raised on resume, other options may not; micro-batches of one image are refused
// for BatchNorm models with a clear message.
using System.Diagnostics;
using NUnit.Framework;
using Slak.IO;
using Slak.Tests.Support;
using Slak.Train;

namespace Slak.Tests.Train;

public class CheckpointCommitTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp()
    {
        _folder = Path.Combine(Path.GetTempPath(), "slak-commit-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private static ulong NewSeed() => (ulong)TestRandom.NewSeed();

    private static int EpochOf(string checkpoint) =>
        int.Parse(SafeTensorsFile.Read(Path.Combine(checkpoint, "trainer.safetensors")).Metadata["epoch"]);

    /// <summary>last/, its metrics and the run's metrics.jsonl all say <paramref name="epoch"/>; no temporary
    /// folder is left; the checkpoint resumes.</summary>
    private void AssertConsistentAt(int epoch, ulong seed)
    {
        Assert.That(EpochOf(Path.Combine(_folder, "last")), Is.EqualTo(epoch));
        Assert.That(File.ReadAllLines(Path.Combine(_folder, "metrics.jsonl")), Has.Length.EqualTo(epoch));
        Assert.That(File.ReadAllText(Path.Combine(_folder, "last", "metrics.jsonl")), Is.EqualTo(File.ReadAllText(Path.Combine(_folder, "metrics.jsonl"))));
        var leftovers = Directory.GetDirectories(_folder).Select(Path.GetFileName).Where(n => n!.EndsWith(".tmp", StringComparison.Ordinal) || n.EndsWith(".old", StringComparison.Ordinal));
        Assert.That(leftovers, Is.Empty);
        Assert.That(RunIntegrityKit.Resume(_folder, seed).Epoch, Is.EqualTo(epoch), "the previous checkpoint still loads");
    }

    [Test]
    public void AResumedRunIsByteIdenticalToAnUninterruptedOne()
    {
        ulong seed = NewSeed();
        TestContext.Out.WriteLine($"seed {seed}");
        var (train, test) = RunIntegrityKit.Data(seed);
        var options = RunIntegrityKit.Options(seed, epochs: 3);
        string full = Path.Combine(_folder, "full"), part = Path.Combine(_folder, "part");
        Assert.That(new Trainer(BnNet.Make(seed), train, test, options, full).Run().Completed, Is.True);

        var b = new Trainer(BnNet.Make(seed), train, test, options, part);
        b.StopAfterSteps = b.StepsPerEpoch + 1; // epoch 1's checkpoint, then one discarded step
        b.Run();
        var c = Trainer.Resume(BnNet.Make(seed + 5), train, test, part);
        Assert.That(c.Run().Completed, Is.True);
        foreach (var f in new[] { "last/model.safetensors", "last/trainer.safetensors", "best/model.safetensors", "best/config.json" })
            Assert.That(File.ReadAllBytes(Path.Combine(part, f)), Is.EqualTo(File.ReadAllBytes(Path.Combine(full, f))), $"{f} (seed {seed})");
        var counter = SafeTensorsFile.Read(Path.Combine(part, "last", "model.safetensors")).ToInt64("bn.num_batches_tracked");
        Assert.That(counter, Is.EqualTo(new[] { 3L * c.StepsPerEpoch }), "num_batches_tracked counts the training batches");
    }

    [Test]
    public void ANonFiniteWeightStopsBeforeTheCheckpoint()
    {
        ulong seed = NewSeed();
        var (train, test) = RunIntegrityKit.Data(seed);
        var net = new BnNet(seed);
        var t = new Trainer(BnNet.Make(net), train, test, RunIntegrityKit.Options(seed, epochs: 3), _folder);
        // After the last step of epoch 2, a weight becomes infinite (the step's loss was still finite).
        t.StepCompleted += p =>
        {
            if (p.Step != 2L * t.StepsPerEpoch) return;
            var w = net.StateDict().First(e => e.Name == "head.bias").Tensor;
            var v = w.ToArray();
            v[0] = float.PositiveInfinity;
            w.Backend.CopyFromHost(v, w);
        };
        var r = t.Run();
        Assert.That(r.Completed, Is.False);
        Assert.That(r.Message, Does.Contain("weight 'head.bias' is not finite after epoch 2").And.Contain("epoch 1) is kept"));
        AssertConsistentAt(1, seed);
    }

    [Test]
    public void NonFiniteMetricsAreWrittenAsJson()
    {
        var m = new EpochMetrics { Epoch = 1, TrainLoss = double.PositiveInfinity, TestLoss = double.NaN };
        var back = EpochMetrics.FromJsonLine(m.ToJsonLine());
        Assert.That(back.TrainLoss, Is.EqualTo(double.PositiveInfinity));
        Assert.That(back.TestLoss, Is.NaN);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void AFailedWriteRemovesItsTemporaryFoldersAndKeepsThePreviousEpoch(bool best)
    {
        ulong seed = NewSeed();
        var (train, test) = RunIntegrityKit.Data(seed);
        var t = new Trainer(BnNet.Make(seed), train, test, RunIntegrityKit.Options(seed, epochs: 2), _folder);
        t.EpochCompleted += m =>
        {
            if (m.Epoch != 1) return;
            t.BeforeCheckpointSwap = tmp =>
            {
                if (best ? tmp.EndsWith("best.tmp", StringComparison.Ordinal) : tmp.EndsWith("last.tmp", StringComparison.Ordinal))
                    throw new IOException("No space left on device (simulated)");
            };
        };
        if (best)
        {
            // Make epoch 2 a new best whatever the accuracy, so that best.tmp is written.
            t.EpochCompleted += m => { if (m.Epoch == 1) typeof(Trainer).GetField("_bestTop1", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.SetValue(t, -1.0); };
        }
        Assert.That(() => t.Run(), Throws.InstanceOf<IOException>().With.Message.Contains("simulated"));
        AssertConsistentAt(1, seed);
    }

    [Test]
    public void ADiskFullWriteKeepsThePreviousEpoch()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") Assert.Ignore("needs root to mount a size-limited tmpfs");
        string mount = Path.Combine(_folder, "small");
        Directory.CreateDirectory(mount);
        if (Sh("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount) != 0) Assert.Ignore("mount is not permitted here; the simulated write failure covers this case");
        try
        {
            ulong seed = NewSeed();
            var (train, test) = RunIntegrityKit.Data(seed);
            string run = Path.Combine(mount, "run");
            var t = new Trainer(BnNet.Make(seed), train, test, RunIntegrityKit.Options(seed, epochs: 2), run);
            t.EpochCompleted += m =>
            {
                if (m.Epoch != 1) return;
                // Leave 4 KiB free: less than the next checkpoint needs.
                long free = new DriveInfo(mount).AvailableFreeSpace;
                using var filler = new FileStream(Path.Combine(mount, "filler"), FileMode.CreateNew);
                filler.Write(new byte[Math.Max(0, free - 4096)]);
            };
            Assert.That(() => t.Run(), Throws.InstanceOf<IOException>());
            File.Delete(Path.Combine(mount, "filler"));
            Assert.That(EpochOf(Path.Combine(run, "last")), Is.EqualTo(1));
            Assert.That(File.ReadAllLines(Path.Combine(run, "metrics.jsonl")), Has.Length.EqualTo(1));
            Assert.That(Directory.GetDirectories(run).Select(Path.GetFileName), Has.None.EndsWith(".tmp"));
            Assert.That(RunIntegrityKit.Resume(run, seed).Epoch, Is.EqualTo(1));
        }
        finally
        {
            Sh("umount", mount);
        }
    }

    private static int Sh(string file, params string[] args)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(file, args) { UseShellExecute = false, RedirectStandardError = true })!;
            p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return -1;
        }
    }

    [Test]
    public void EpochsMayBeRaisedOnResumeOtherOptionsMayNot()
    {
        ulong seed = NewSeed();
        RunIntegrityKit.TrainRun(_folder, seed, epochs: 1);
        var saved = Trainer.ReadCheckpointOptions(_folder);
        var lines = new List<string>();
        Assert.That(ResumeOptions.Reconcile(saved, saved with { Epochs = 2 }, lines.Add).Epochs, Is.EqualTo(2));
        Assert.That(lines, Has.One.Contains("extending the run from 1 to 2 epochs"));
        Assert.That(() => ResumeOptions.Reconcile(saved, saved with { Lr = 0.5 }, null), Throws.ArgumentException
            .With.Message.Contains("--lr 0.5 (the run was saved with 0.01)"));
        Assert.That(() => ResumeOptions.Reconcile(saved with { Epochs = 3 }, saved with { Epochs = 2 }, null), Throws.ArgumentException
            .With.Message.Contains("--epochs 2 is fewer than the run's 3"));
        Assert.That(ResumeOptions.Reconcile(saved, saved with { Device = "cpu", LogEvery = 7 }, null).Device, Is.EqualTo("cpu"));
        // A partial last.tmp/ left by a killed process is removed when the run continues.
        Directory.CreateDirectory(Path.Combine(_folder, "last.tmp"));
        File.WriteAllText(Path.Combine(_folder, "last.tmp", "model.safetensors"), "partial");
        var t = RunIntegrityKit.Resume(_folder, seed, saved with { Epochs = 2 });
        var r = t.Run();
        Assert.That(Directory.Exists(Path.Combine(_folder, "last.tmp")), Is.False);
        Assert.That(r.Completed, Is.True, r.Message);
        Assert.That(t.Epoch, Is.EqualTo(2));
        Assert.That(File.ReadAllLines(Path.Combine(_folder, "metrics.jsonl")), Has.Length.EqualTo(2));
    }

    [Test]
    public void OneImageMicroBatchesAreRefusedForBatchNormModels()
    {
        var (train, test) = RunIntegrityKit.Data(1);
        var o = RunIntegrityKit.Options(1) with { Limit = 1 };
        Assert.That(() => new Trainer(BnNet.Make(1), train, test, o, null), Throws.ArgumentException
            .With.Message.Contains("1 image").And.Message.Contains("BatchNorm").And.Message.Contains("--limit >= 2"));
        // Two images (one partial batch of 2) train.
        var t = new Trainer(BnNet.Make(1), train, test, o with { Limit = 2, Epochs = 1, Mixup = 0 }, null);
        Assert.That(t.Run().Completed, Is.True);
        // Models without BatchNorm may use batches of one.
        Assert.That(() => new Trainer(TinyNet.Make(1), train, test, o, null), Throws.Nothing);
    }

    [Test]
    public void FloatOptionsMustBeFinite()
    {
        Assert.That(() => new TrainOptions { WeightDecay = double.PositiveInfinity }.Validate(), Throws.InstanceOf<ArgumentOutOfRangeException>()
            .With.Message.Contains("WeightDecay must be a finite number"));
        Assert.That(() => new TrainOptions { Mixup = double.NaN }.Validate(), Throws.InstanceOf<ArgumentOutOfRangeException>()
            .With.Message.Contains("Mixup"));
    }
}
