// --precision as a user meets it, through the real process: `slak info` states the defaults; a bad value exits 1 with
// a message naming it (train, eval, infer); a one-epoch bf16 training of a tiny model (one block per stage, 64
// Fashion-MNIST images, a 1 % validation hold-out) says which precision it uses, records it in options.json and
// trains to a test accuracy, and `slak eval --precision bf16` scores the run's checkpoint on the hold-out.
using System.Text.Json;
using NUnit.Framework;
using Slak.Models;
using Slak.Tests.Train;

namespace Slak.Tests.Precision;

public sealed class PrecisionCliTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp()
    {
        _folder = Path.Combine(Path.GetTempPath(), "slak-precision-cli", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void InfoStatesTheDefaultsAndBadValuesExitOneNamingThem()
    {
        var (exit, output, err) = RunIntegrityKit.RunCli("info");
        Assert.That(exit, Is.Zero, err);
        Assert.That(output, Does.Contain("precision:    default tf32 on cuda, fp32 on cpu and cuda-emu"));
        foreach (string[] args in new[]
                 {
                     new[] { "train", "--precision", "fp16", "--device", "cpu", "--out", Path.Combine(_folder, "r") },
                     new[] { "eval", "--run", _folder, "--precision", "half", "--device", "cpu" },
                     new[] { "infer", "--model-config", "c.json", "--weights", "w.safetensors", "--input", "x.npy", "--output", "y.npy", "--precision", "int8" },
                 })
        {
            (exit, _, err) = RunIntegrityKit.RunCli(args);
            Assert.That(exit, Is.EqualTo(1), $"{string.Join(' ', args)}: {err}");
            Assert.That(err, Does.Contain($"'{args[Array.IndexOf(args, "--precision") + 1]}' is not a precision").And.Contain("fp32, tf32, bf16"));
        }
    }

    [Test]
    public void Bf16TrainingRecordsItsPrecisionAndEvalScoresItsCheckpoint()
    {
        if (!Slak.IO.FashionMnist.IsAvailable(null))
            Assert.Ignore($"Fashion-MNIST is not installed under {Slak.IO.FashionMnist.DefaultFolder} (.ci/setup installs it)");
        string config = Path.Combine(_folder, "config.json");
        new ModelConfig
        {
            InChans = 1, NumClasses = 10, Depths = [1, 1, 1, 1], Dims = [8, 16, 32, 64], KernelSize = [7, 7, 5, 5, 3], Decom = true,
        }.Validate().Save(config);
        string run = Path.Combine(_folder, "run");
        var (exit, output, err) = RunIntegrityKit.RunCli("train", "--model-config", config, "--limit", "64", "--batch-size", "16",
            "--epochs", "1", "--val-split", "0.01", "--device", "cpu", "--sparse", "--sparse-init", "uniform", "--update-frequency", "1", "--out", run,
            "--precision", "bf16");
        Assert.That(exit, Is.Zero, $"stdout: {output}\nstderr: {err}");
        Assert.That(output, Does.Contain("precision: bf16\n").Or.Contain("precision: bf16\r\n"));
        using var options = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "options.json")));
        Assert.That(options.RootElement.GetProperty("precision").GetString(), Is.EqualTo("bf16"));
        Assert.That(output, Does.Match(@"test accuracy: \d+\.\d\d% top-1"));
        (exit, output, err) = RunIntegrityKit.RunCli("eval", "--run", run, "--checkpoint", "last", "--split", "val", "--device", "cpu", "--precision", "bf16");
        Assert.That(exit, Is.Zero, $"stdout: {output}\nstderr: {err}");
        Assert.That(output, Does.Match(@"val top-1 \d+\.\d\d%, top-5 \d+\.\d\d%, loss \d+\.\d{4}"));
    }
}
