// `slak train` and `slak eval` as a user meets them, through the real process on a tiny model (one block per stage,
// widths 8..64) and 64 Fashion-MNIST training images, one epoch: what --quiet, the default and --verbose print (the
// density table once at the start and once at the end, every prune/regrow round as one line, the full table per
// round only with --verbose; --quiet: the result line alone), the files of the run folder, `eval` of that run, and
// exit code 1 with a message naming the option for bad options. Needs the installed Fashion-MNIST (.ci/setup).
using System.Text.RegularExpressions;
using NUnit.Framework;
using Slak.Models;
using Slak.Tests.Train;

namespace Slak.Tests.Verbs;

public sealed class TrainEvalCommandTests
{
    private const string TableHeader = "  layer ";
    private string _folder = "";
    private string _config = "";

    [SetUp]
    public void SetUp()
    {
        _folder = Path.Combine(Path.GetTempPath(), "slak-train-eval-cli", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
        _config = Path.Combine(_folder, "config.json");
        new ModelConfig
        {
            InChans = 1, NumClasses = 10, Depths = [1, 1, 1, 1], Dims = [8, 16, 32, 64], KernelSize = [7, 7, 5, 5, 3],
            Decom = true,
        }.Validate().Save(_config);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private static void RequireFashionMnist()
    {
        if (!Slak.IO.FashionMnist.IsAvailable(null))
            Assert.Ignore($"Fashion-MNIST is not installed under {Slak.IO.FashionMnist.DefaultFolder} (.ci/setup installs it)");
    }

    /// <summary>One epoch of 4 steps (64 images, batch 16), sparse with a prune/regrow round after every
    /// step.</summary>
    private (int Exit, string Out, string Err) Train(string run, params string[] extra) =>
        RunIntegrityKit.RunCli([
            "train", "--model-config", _config, "--limit", "64", "--batch-size", "16", "--epochs", "1", "--device", "cpu",
            "--sparse", "--sparse-init", "uniform", "--update-frequency", "1", "--out", run, .. extra]);

    private static int Count(string text, string what) => Regex.Matches(text, Regex.Escape(what)).Count;

    [Test]
    public void QuietTrainPrintsOnlyTheResultLineAndWritesTheRunFolderWhichEvalReads()
    {
        RequireFashionMnist();
        string run = Path.Combine(_folder, "run");
        var (exit, output, err) = Train(run, "--quiet");
        Assert.That(exit, Is.Zero, $"stdout: {output}\nstderr: {err}");
        Assert.That(output.TrimEnd().Split('\n'), Has.Length.EqualTo(1), $"--quiet prints one line:\n{output}");
        Assert.That(output, Does.Match(@"^test accuracy: \d+\.\d\d% top-1, \d+\.\d\d% top-5 "));
        Assert.That(err, Is.Empty);
        foreach (var file in new[] { "options.json", "metrics.jsonl", "steps.jsonl", "plot.png", "last/model.safetensors",
                     "last/config.json", "best/model.safetensors" })
            Assert.That(File.Exists(Path.Combine(run, file)), Is.True, $"the run folder holds {file}");
        Assert.That(File.ReadAllLines(Path.Combine(run, "metrics.jsonl")), Has.Length.EqualTo(1), "one epoch, one metrics line");
        Assert.That(File.ReadAllLines(Path.Combine(run, "steps.jsonl")), Has.Length.EqualTo(4), "4 optimizer steps");

        (exit, output, err) = RunIntegrityKit.RunCli("eval", "--run", run, "--checkpoint", "last", "--device", "cpu");
        Assert.That(exit, Is.Zero, err);
        Assert.That(output, Does.Match(@"test top-1 \d+\.\d\d%, top-5 \d+\.\d\d%, loss \d+\.\d{4} \(10000 images"));
    }

    [Test]
    public void DefaultOutputShowsTheDensityTableAtStartAndEndAndOneLinePerRound()
    {
        RequireFashionMnist();
        var (exit, output, err) = Train(Path.Combine(_folder, "run"));
        Assert.That(exit, Is.Zero, $"stdout: {output}\nstderr: {err}");
        Assert.That(Count(output, TableHeader), Is.EqualTo(2), $"the table at the start and at the end:\n{output}");
        Assert.That(output, Does.Contain("initial masks: overall density").And.Contain("final masks: overall density"));
        var rounds = output.Split('\n').Where(l => l.Contains("prune/regrow with rate", StringComparison.Ordinal)).ToList();
        Assert.That(rounds, Has.Count.EqualTo(4), output);
        foreach (var line in rounds)
            Assert.That(line, Does.Match(@"^step \d: prune/regrow with rate \d\.\d{4}: [\d,]+ weights pruned, [\d,]+ regrown in \d+ layers, overall density \d\.\d{4}$"));
        Assert.That(output, Does.Contain("epoch 1/1: train loss"), "the epoch summary line");
        Assert.That(output, Does.Contain("step 4/4 (epoch 1/1): loss"), "the plain progress line of the last step");
        Assert.That(output.TrimEnd().Split('\n')[^1], Does.StartWith("test accuracy: "), "the result is the last line");
    }

    [Test]
    public void VerbosePrintsTheTableAfterEveryRound()
    {
        RequireFashionMnist();
        var (exit, output, err) = Train(Path.Combine(_folder, "run"), "--verbose");
        Assert.That(exit, Is.Zero, $"stdout: {output}\nstderr: {err}");
        Assert.That(Count(output, TableHeader), Is.EqualTo(2 + 4), $"start, end and one per round:\n{output}");
    }

    [Test]
    public void BadOptionsExitOneWithAMessageNamingThem()
    {
        string run = Path.Combine(_folder, "bad");
        var (exit, _, err) = RunIntegrityKit.RunCli("train", "--quiet", "--verbose", "--out", run);
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(err, Does.StartWith("slak: error: ").And.Contain("--quiet and --verbose"));
        (exit, _, err) = RunIntegrityKit.RunCli("train", "--sparse-init", "dense", "--out", run);
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(err, Does.Contain("dense").And.Contain("snip"));
        (exit, _, err) = RunIntegrityKit.RunCli("train", "--epochs", "0", "--out", run);
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(err, Does.StartWith("slak: error: ").And.Contain("Epochs"));
        (exit, _, err) = RunIntegrityKit.RunCli("train", "--train-crop", "rrc", "--out", run);
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(err, Does.StartWith("slak: error: ").And.Contain("--train-crop rrc").And.Contain("image folders"));
        Assert.That(Directory.Exists(run), Is.False, "a refused run leaves no folder");

        (exit, _, err) = RunIntegrityKit.RunCli("eval", "--run", Path.Combine(_folder, "nowhere"));
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(err, Does.StartWith("slak: error: ").And.Contain("nowhere").And.Contain("does not exist"));
        (exit, _, err) = RunIntegrityKit.RunCli("eval", "--model-config", _config);
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(err, Does.Contain("--weights"));
        (exit, _, err) = RunIntegrityKit.RunCli("eval", "--model-config", _config, "--weights", "w.safetensors", "--batch-size", "0");
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(err, Does.Contain("--batch-size must be >= 1"));
        (exit, _, err) = RunIntegrityKit.RunCli("summary", "--preset", "slak_nano", "--input-size", "abc");
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(err, Does.Contain("abc"));
        (exit, _, err) = RunIntegrityKit.RunCli("info", "--device", "cpu");
        Assert.That(exit, Is.EqualTo(1), "info takes no options");
        Assert.That(err, Does.Contain("--device"));
    }
}
