// The command as a user meets it, through the real process: `slak --help` names `slak` (not the assembly), lists
// every verb; `info` and `summary` run with exit 0; an unknown verb or option exits 1 with a message.
using NUnit.Framework;
using Slak.Tests.Train;

namespace Slak.Tests.Verbs;

public sealed class CommandLineTests
{
    [Test]
    public void HelpNamesTheCommandSlakAndListsTheVerbs()
    {
        var (exit, output, err) = RunIntegrityKit.RunCli("--help");
        Assert.That(exit, Is.Zero, err);
        Assert.That(output, Does.Contain("  slak [command] [options]").And.Not.Contain("Slak.Cli ["));
        foreach (var verb in new[] { "train", "eval", "infer", "export", "summary", "erf", "kernels", "info" })
            Assert.That(output, Does.Contain($"  {verb} "), $"--help lists {verb}");
        (exit, output, _) = RunIntegrityKit.RunCli("train", "--help");
        Assert.That(output, Does.Contain("slak train [options]"));
    }

    [Test]
    public void InfoAndSummaryRun()
    {
        var (exit, output, err) = RunIntegrityKit.RunCli("info");
        Assert.That(exit, Is.Zero, err);
        Assert.That(output, Does.Contain("CPU:").And.Contain("cuda-emu:"));
        (exit, output, err) = RunIntegrityKit.RunCli("summary", "--preset", "slak_tiny");
        Assert.That(exit, Is.Zero, err);
        Assert.That(output, Does.Contain("slak_tiny").And.Contain("params"));
    }

    [Test]
    public void UnknownVerbsAndOptionsExitOneWithAMessage()
    {
        var (exit, _, err) = RunIntegrityKit.RunCli("trian");
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(err, Does.Contain("'trian'"));
        (exit, _, err) = RunIntegrityKit.RunCli("summary", "--preset", "slak_gigantic");
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(err, Does.StartWith("slak: error: ").And.Contain("slak_gigantic"));
    }
}
