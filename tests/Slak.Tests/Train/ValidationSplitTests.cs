// Honest model selection (issue 21 item 4): the stratified validation hold-out (fixed split seed, per-class
// counts, disjoint and complete, independent of --seed, --limit after it), best/ chosen on validation only (a run
// with a different test set trains, scores validation and selects identically), and the test set scored only after
// the last epoch unless --eval-test-every-epoch.
using NUnit.Framework;
using Slak.Data;
using Slak.IO;
using Slak.Tests.Support;
using Slak.Train;

namespace Slak.Tests.Train;

public class ValidationSplitTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp()
    {
        _folder = Path.Combine(Path.GetTempPath(), "slak-val-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private static ulong NewSeed() => (ulong)TestRandom.NewSeed();

    private static TrainOptions Small(ulong seed, int epochs = 3) => new()
    {
        Epochs = epochs, BatchSize = 16, Lr = 1e-2, MinLr = 1e-4, WarmupEpochs = 0.5, Seed = seed, CropPadding = 1,
        Sparse = true, Density = 0.6, UpdateFrequency = 5, Smoothing = 0.1, Ema = 0.9, ValSplit = 0.2,
    };

    [TestCase(0.1)]
    [TestCase(0.25)]
    [TestCase(0.5)]
    public void HoldOutIsStratifiedDisjointAndFixed(double fraction)
    {
        ulong seed = NewSeed();
        var rng = new SlakRandom(seed);
        var labels = Enumerable.Range(0, 503).Select(_ => rng.NextInt(7)).ToArray();
        var held = ValidationSplit.HeldOutIndices(labels, 7, fraction);
        Assert.That(held, Is.Ordered.And.Unique, $"seed {seed}");
        Assert.That(held, Has.Length.EqualTo((int)Math.Ceiling(fraction * labels.Length - 1e-9)), $"seed {seed}");
        for (int k = 0; k < 7; k++)
        {
            int members = labels.Count(l => l == k), taken = held.Count(i => labels[i] == k);
            double share = (double)held.Length * members / labels.Length;
            Assert.That(taken, Is.InRange((int)Math.Floor(share), (int)Math.Ceiling(share)), $"class {k} of {members}, fraction {fraction}, seed {seed}");
        }
        // The same labels always give the same hold-out (the split seed is a constant, not the run's seed).
        Assert.That(ValidationSplit.HeldOutIndices(labels, 7, fraction), Is.EqualTo(held));
        // The hold-out is a draw, not the first images of each class.
        var firsts = Enumerable.Range(0, 7).SelectMany(k => Enumerable.Range(0, labels.Length).Where(i => labels[i] == k)
            .Take(held.Count(i => labels[i] == k))).OrderBy(i => i);
        Assert.That(held, Is.Not.EqualTo(firsts), $"seed {seed}");
    }

    [Test]
    public void SplitKeepsOrderAndContent()
    {
        ulong seed = NewSeed();
        var data = TinyNet.Synthetic(90, seed);
        var (train, val) = ValidationSplit.Split(data, 0.2);
        var held = ValidationSplit.HeldOutIndices(data.Labels, data.ClassCount, 0.2);
        var kept = Enumerable.Range(0, data.Count).Except(held).ToArray();
        Assert.That(train.Count + val.Count, Is.EqualTo(data.Count));
        int size = data.ImageSize;
        for (int i = 0; i < held.Length; i++)
        {
            Assert.That(val.Labels[i], Is.EqualTo(data.Labels[held[i]]));
            Assert.That(val.Images.AsSpan(i * size, size).ToArray(), Is.EqualTo(data.Images.AsSpan(held[i] * size, size).ToArray()), $"seed {seed}");
        }
        for (int i = 0; i < kept.Length; i++)
            Assert.That(train.Images.AsSpan(i * size, size).ToArray(), Is.EqualTo(data.Images.AsSpan(kept[i] * size, size).ToArray()), $"seed {seed}");
    }

    [Test]
    public void BadFractionsAreRefusedByName()
    {
        int[] labels = [0, 1, 0, 1];
        Assert.That(() => ValidationSplit.HeldOutIndices(labels, 2, 0), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("(0, 1)"));
        Assert.That(() => ValidationSplit.HeldOutIndices(labels, 2, 1), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(ValidationSplit.HeldOutIndices(labels, 2, 0.1), Has.Length.EqualTo(1), "a small set still holds out ceil(0.1 x 4) = 1 image");
        Assert.That(() => ValidationSplit.HeldOutIndices([0, 1, 2], 3, 0.1), Throws.ArgumentException.With.Message.Contains("holds out no image"));
        Assert.That(() => new TrainOptions { ValSplit = 1.5 }.Validate(), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("ValSplit"));
    }

    [Test]
    public void HoldOutIgnoresTheSeedAndLimitComesAfterIt()
    {
        ulong seed = NewSeed();
        var train = TinyNet.Synthetic(200, seed);
        var test = TinyNet.Synthetic(16, seed + 1);
        var a = new Trainer(TinyNet.Make(seed), train, test, Small(seed), null);
        var b = new Trainer(TinyNet.Make(seed + 7), train, test, Small(seed + 7) with { Limit = 50 }, null);
        Assert.That(((ImageDataset)b.ValData!).Images, Is.EqualTo(((ImageDataset)a.ValData!).Images), $"the validation set must not depend on --seed or --limit (seed {seed})");
        Assert.That(((ImageDataset)b.ValData!).Labels, Is.EqualTo(((ImageDataset)a.ValData!).Labels));
        Assert.That(a.TrainCount + a.ValCount, Is.EqualTo(200));
        Assert.That(b.TrainCount, Is.EqualTo(50));
        Assert.That(((ImageDataset)b.TrainData).Images, Is.EqualTo(((ImageDataset)a.TrainData).Images.AsSpan(0, 50 * train.ImageSize).ToArray()));
    }

    [Test]
    public void BestIsSelectedOnValidationAndTheTestSetSelectsNothing()
    {
        ulong seed = NewSeed();
        var train = TinyNet.Synthetic(160, seed);
        var testA = TinyNet.Synthetic(48, seed + 99);
        // A test set with every label shifted: if it selected anything, the runs would differ.
        var testB = new ImageDataset(testA.Images, testA.Labels.Select(l => (l + 1) % 4).ToArray(), 1, 8, 8, 4);
        string fa = Path.Combine(_folder, "a"), fb = Path.Combine(_folder, "b");
        var options = Small(seed, epochs: 4);
        var a = new Trainer(TinyNet.Make(seed), train, testA, options, fa);
        var ra = a.Run();
        var b = new Trainer(TinyNet.Make(seed), train, testB, options, fb);
        var rb = b.Run();
        Assert.That(ra.Completed && rb.Completed, Is.True);
        Assert.That(b.StepLosses, Is.EqualTo(a.StepLosses), $"seed {seed}");
        Assert.That(rb.Metrics.Select(m => m.ValTop1), Is.EqualTo(ra.Metrics.Select(m => m.ValTop1)));
        double bestVal = ra.Metrics.Max(m => m.ValTop1);
        int bestEpoch = ra.Metrics.First(m => m.ValTop1 == bestVal).Epoch;
        Assert.That(a.BestEpoch, Is.EqualTo(bestEpoch), $"seed {seed}");
        Assert.That(b.BestEpoch, Is.EqualTo(bestEpoch));
        Assert.That(ra.BestTop1, Is.EqualTo(bestVal));
        Assert.That(File.ReadAllBytes(Path.Combine(fb, "best", "model.safetensors")),
            Is.EqualTo(File.ReadAllBytes(Path.Combine(fa, "best", "model.safetensors"))));
        // Test scores only after the last epoch; they differ between the two test sets.
        Assert.That(ra.Metrics.Take(3).Select(m => m.TestTop1), Is.All.Null);
        Assert.That(ra.Last!.TestTop1, Is.Not.Null);
        Assert.That(rb.Last!.TestLoss, Is.Not.EqualTo(ra.Last.TestLoss));
        Assert.That(ra.Metrics.All(m => m.EmaTop1 is not null), Is.True);
        var lines = File.ReadAllLines(Path.Combine(fa, "metrics.jsonl"));
        Assert.That(lines, Has.Length.EqualTo(4));
        Assert.That(lines, Has.All.Contains("\"val_top1\":").And.All.Contains("\"val_top5\":").And.All.Contains("\"val_loss\":"));
        Assert.That(lines.Take(3), Has.None.Contains("test_"));
        Assert.That(lines[3], Does.Contain("\"test_top1\":").And.Contain("\"test_top5\":").And.Contain("\"test_loss\":"));
        Assert.That(EpochMetrics.FromJsonLine(lines[3]).TestTop1, Is.EqualTo(ra.Last.TestTop1));
    }

    [Test]
    public void EvalTestEveryEpochScoresTheTestSetEachEpochAndChangesNothingElse()
    {
        ulong seed = NewSeed();
        var train = TinyNet.Synthetic(96, seed);
        var test = TinyNet.Synthetic(32, seed + 99);
        var a = new Trainer(TinyNet.Make(seed), train, test, Small(seed), null);
        var ra = a.Run();
        var b = new Trainer(TinyNet.Make(seed), train, test, Small(seed) with { EvalTestEveryEpoch = true }, null);
        var rb = b.Run();
        Assert.That(rb.Metrics.Select(m => m.TestTop1), Is.All.Not.Null);
        Assert.That(rb.Metrics.Select(m => m.ValTop1), Is.EqualTo(ra.Metrics.Select(m => m.ValTop1)), $"seed {seed}");
        Assert.That(rb.Last!.TestTop1, Is.EqualTo(ra.Last!.TestTop1));
        Assert.That(b.BestEpoch, Is.EqualTo(a.BestEpoch));
        string line = Trainer.FormatEpoch(rb.Metrics[0], 3);
        Assert.That(line, Does.Contain("val top-1").And.Contain("; test top-1"));
        Assert.That(Trainer.FormatEpoch(ra.Metrics[0], 3), Does.Not.Contain("test"));
    }
}
