// Every failure a message (issue 30), through the real `slak` process: one line "slak: error: ...", exit code 1, no
// stack trace (unless --debug); bad option values, a file given as --data, a damaged saved-options entry, and options
// given with --resume that differ from the saved ones (only --epochs may be raised, with a line saying so).
using NUnit.Framework;
using Slak.IO;
using Slak.Train;

namespace Slak.Tests.Train;

public class RunIntegrityCliTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp()
    {
        _folder = Path.Combine(Path.GetTempPath(), "slak-cli-integrity", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private static void AssertOneLineError(int exit, string err, string expected)
    {
        Assert.That(exit, Is.EqualTo(1), err);
        Assert.That(err, Does.StartWith("slak: error: ").And.Contain(expected));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), "one line");
        Assert.That(err, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test]
    public void NonFiniteOptionValuesAreRefused()
    {
        var (exit, _, err) = RunIntegrityKit.RunCli("train", "--weight-decay", "Infinity", "--out", Path.Combine(_folder, "r"), "--data", _folder);
        AssertOneLineError(exit, err, "WeightDecay must be a finite number");
        Assert.That(Directory.Exists(Path.Combine(_folder, "r")), Is.False, "nothing created");
    }

    [Test]
    public void AFileGivenAsDataIsNamedAsSuch()
    {
        string file = Path.Combine(_folder, "not-a-folder.txt");
        File.WriteAllText(file, "x");
        var (exit, _, err) = RunIntegrityKit.RunCli("train", "--data", file, "--out", Path.Combine(_folder, "r"));
        AssertOneLineError(exit, err, "is a file, not a folder");
        (exit, _, err) = RunIntegrityKit.RunCli("eval", "--data", file, "--run", _folder);
        AssertOneLineError(exit, err, "is a file, not a folder");
    }

    [Test]
    public void ADamagedSavedOptionsEntryIsOneLineAndDebugAddsTheTrace()
    {
        string run = Path.Combine(_folder, "run");
        RunIntegrityKit.TrainRun(run, 3, epochs: 1);
        RunIntegrityKit.Rewrite(Path.Combine(run, "last", "trainer.safetensors"), (_, meta) => meta["options"] = "{\"epochs\": ");
        var (exit, _, err) = RunIntegrityKit.RunCli("train", "--resume", "--out", run);
        AssertOneLineError(exit, err, "metadata 'options'");
        (exit, _, err) = RunIntegrityKit.RunCli("train", "--resume", "--out", run, "--debug");
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(err, Does.Contain("   at "), "--debug prints the stack trace");
    }

    [Test]
    public void OptionsGivenWithResumeMustMatchTheSavedOnes()
    {
        string run = Path.Combine(_folder, "run");
        RunIntegrityKit.TrainRun(run, 3, epochs: 1);
        var (exit, _, err) = RunIntegrityKit.RunCli("train", "--resume", "--out", run, "--lr", "0.5", "--data", _folder);
        AssertOneLineError(exit, err, "--lr 0.5 (the run was saved with 0.01)");
        (exit, _, err) = RunIntegrityKit.RunCli("train", "--resume", "--out", run, "--preset", "slak_tiny", "--data", _folder);
        AssertOneLineError(exit, err, "--preset");
        // Raising --epochs passes (then this data folder, which holds no data set, ends the run with a message).
        (exit, var output, err) = RunIntegrityKit.RunCli("train", "--resume", "--out", run, "--epochs", "2", "--data", _folder);
        Assert.That(output, Does.Contain("extending the run from 1 to 2 epochs"));
        AssertOneLineError(exit, err, "");
        // Options not given keep their saved values: no complaint about the defaults that differ from them.
        (exit, output, err) = RunIntegrityKit.RunCli("train", "--resume", "--out", run, "--data", _folder);
        Assert.That(err, Does.Not.Contain("differ"));
        Assert.That(output, Does.Contain("resuming"));
        Assert.That(RunIntegrityKit.Resume(run, 3).Epoch, Is.EqualTo(1), "the checkpoint is untouched");
    }

    [Test]
    public void UnexpectedExceptionsAreNamedInOneLine()
    {
        Assert.That(Cli.Program.Describe(new KeyNotFoundException("no key 'x'")), Is.EqualTo("KeyNotFoundException: no key 'x'"));
        Assert.That(Cli.Program.Describe(new InvalidDataException("bad file", new FormatException("bad number"))), Is.EqualTo("bad file: bad number"));
    }

    [Test]
    public void TheEtaDoesNotWrapAtADay()
    {
        Assert.That(Cli.Training.TrainingConsole.Duration(TimeSpan.FromHours(31.5) + TimeSpan.FromSeconds(9)), Is.EqualTo("31:30:09"));
        Assert.That(Cli.Training.TrainingConsole.Duration(TimeSpan.FromSeconds(61)), Is.EqualTo("00:01:01"));
    }
}
