// What a training run prints, in process, on the tiny BatchNorm network of the run-integrity tests (2 steps, a
// prune/regrow round after each): on a terminal (a Spectre console that declares itself interactive, drawing into a
// buffer) the live display's task line (step, epoch, loss, img/s, ETA) redrawn with cursor movements and the epoch
// summary printed above it; off a terminal the plain lines with the density table at the start and the end only
// (and after every round with Verbose); Quiet: nothing on stdout but the result line, warnings on stderr.
using System.Text.RegularExpressions;
using NUnit.Framework;
using Slak.Cli.Training;
using Slak.Tests.Train;
using Slak.Train;
using Spectre.Console;

namespace Slak.Tests.Verbs;

public sealed class TrainingReporterTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp() => _folder = Path.Combine(Path.GetTempPath(), "slak-reporter", Guid.NewGuid().ToString("N"));

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private Trainer NewTrainer(int logEvery = 0, int updateFrequency = 3)
    {
        const ulong seed = 11;
        var (train, test) = RunIntegrityKit.Data(seed);
        var options = RunIntegrityKit.Options(seed, epochs: 1) with { LogEvery = logEvery, UpdateFrequency = updateFrequency };
        return new Trainer(BnNet.Make(seed), train, test, options, Path.Combine(_folder, Guid.NewGuid().ToString("N")));
    }

    private static int Count(string text, string what) => Regex.Matches(text, Regex.Escape(what)).Count;

    [Test]
    public void OnATerminalTheLiveDisplayShowsStepEpochLossSpeedAndEtaWithTheEpochLineAboveIt()
    {
        var screen = new StringWriter();
        var terminal = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(screen),
        });
        terminal.Profile.Width = 200;
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        using var report = new TrainingReporter(Verbosity.Normal, stdout, stderr, terminal);
        var trainer = NewTrainer();
        var result = report.Run(trainer, null, CancellationToken.None);
        Assert.That(result.Completed, Is.True, result.Message);
        string text = screen.ToString();
        Assert.That(text, Does.Contain($"step {trainer.TotalSteps}/{trainer.TotalSteps}  epoch 1/1  loss "), text);
        Assert.That(text, Does.Match(@"loss \d+\.\d{4}  \d+ img/s  ETA \d\d:\d\d:\d\d"), text);
        Assert.That(text, Does.Contain("epoch 1/1: train loss"), "the epoch summary line");
        Assert.That(text, Does.Contain("\u001b["), "drawn in place with escape sequences");
        Assert.That(stdout.ToString(), Is.Empty, "on a terminal every line goes through the live display");
        Assert.That(stderr.ToString(), Is.Empty);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void OffATerminalTheTableIsPrintedAtStartAndEndAndEachRoundIsOneLine(bool verbose)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        using var report = new TrainingReporter(verbose ? Verbosity.Verbose : Verbosity.Normal, stdout, stderr, terminal: null);
        var trainer = NewTrainer(logEvery: 1, updateFrequency: 1);
        Assert.That(report.Run(trainer, null, CancellationToken.None).Completed, Is.True);
        string text = stdout.ToString();
        long steps = trainer.TotalSteps;
        Assert.That(steps, Is.GreaterThan(1));
        Assert.That(Count(text, "  layer "), Is.EqualTo(verbose ? 2 + steps : 2), text);
        Assert.That(text, Does.Contain("initial masks: overall density").And.Contain("final masks: overall density"));
        var rounds = Regex.Matches(text, @"(?m)^step \d+: prune/regrow with rate \d\.\d{4}: \d+ weights pruned, \d+ regrown in \d+ layers, overall density \d\.\d{4}\r?$");
        Assert.That(rounds, Has.Count.EqualTo(steps), text);
        Assert.That(text, Does.Contain("step 1/" + steps + " (epoch 1/1): loss").And.Contain($"step {steps}/{steps} (epoch 1/1): loss"));
        Assert.That(stderr.ToString(), Is.Empty);
    }

    [Test]
    public void QuietPrintsNothingButWarningsOnStderrAndTheResultLine()
    {
        var screen = new StringWriter();
        var terminal = AnsiConsole.Create(new AnsiConsoleSettings { Interactive = InteractionSupport.Yes, Out = new AnsiConsoleOutput(screen) });
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        using var report = new TrainingReporter(Verbosity.Quiet, stdout, stderr, terminal);
        Assert.That(report.Run(NewTrainer(logEvery: 1), null, CancellationToken.None).Completed, Is.True);
        report.Info("an informational line");
        report.Warning("3 images could not be read");
        report.Result("test accuracy: 50.00% top-1");
        Assert.That(stdout.ToString(), Is.EqualTo("test accuracy: 50.00% top-1" + Environment.NewLine));
        Assert.That(stderr.ToString(), Is.EqualTo("slak: warning: 3 images could not be read" + Environment.NewLine));
        Assert.That(screen.ToString(), Is.Empty, "no live display in quiet mode");
    }

    [Test]
    public void QuietSilencesConsoleOutUntilDisposed()
    {
        var saved = Console.Out;
        var captured = new StringWriter();
        Console.SetOut(captured);
        try
        {
            using (var report = TrainingReporter.ForConsole(Verbosity.Quiet))
            {
                Console.WriteLine("a note from some layer");
                report.Result("the result");
            }
            Console.WriteLine("after");
            Assert.That(captured.ToString(), Is.EqualTo("the result" + Environment.NewLine + "after" + Environment.NewLine));
        }
        finally
        {
            Console.SetOut(saved);
        }
    }
}
