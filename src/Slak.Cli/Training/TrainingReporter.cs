// How a training command talks to its user. Normal: the run's log lines (start, density tables at the start and the
// end, one line per prune/regrow round, epoch summaries) and its progress: on a terminal a live display (step, epoch,
// loss, img/s, ETA) redrawn in place with every log line printed above it, off a terminal a plain line every
// --log-every steps. Verbose adds the full density table after every prune/regrow round. Quiet prints only warnings,
// errors and the final result line: for the command's duration Console.Out is a null writer (so no informational line
// of any layer gets through) and the result line goes to the real stdout. Warnings go to stderr as
// "slak: warning: ..." (while a live display is drawn they are printed above it instead, so they do not tear it).
// Spectre.Console is not thread-safe: every update comes from the training thread (the trainer raises its
// events there).
using System.Globalization;
using Spectre.Console;
using Slak.Train;

namespace Slak.Cli.Training;

/// <summary>The output of one training command at a <see cref="Verbosity"/>; dispose it to restore the
/// console.</summary>
internal sealed class TrainingReporter : IDisposable
{
    private readonly TextWriter _output;
    private readonly TextWriter _errors;
    private TextWriter? _silenced;
    private readonly IAnsiConsole? _terminal;
    private IAnsiConsole? _live;

    /// <summary>A reporter writing to <paramref name="output"/> and <paramref name="errors"/>, drawing the live display
    /// on <paramref name="terminal"/> when one is given (and the verbosity is not quiet).</summary>
    public TrainingReporter(Verbosity verbosity, TextWriter output, TextWriter errors, IAnsiConsole? terminal)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(errors);
        Verbosity = verbosity;
        _output = output;
        _errors = errors;
        _terminal = verbosity == Verbosity.Quiet ? null : terminal;
    }

    private TrainingReporter(Verbosity verbosity, TextWriter output, TextWriter? silenced)
        : this(verbosity, output, Console.Error, TrainingConsole.Interactive ? AnsiConsole.Console : null) => _silenced = silenced;

    /// <summary>The reporter of the process's console; in quiet mode Console.Out is a null writer until
    /// disposal.</summary>
    public static TrainingReporter ForConsole(Verbosity verbosity)
    {
        var stdout = Console.Out;
        if (verbosity != Verbosity.Quiet) return new TrainingReporter(verbosity, stdout, silenced: null);
        Console.SetOut(TextWriter.Null);
        return new TrainingReporter(verbosity, stdout, silenced: stdout);
    }

    /// <summary>The verbosity.</summary>
    public Verbosity Verbosity { get; }

    /// <summary>An informational line (not in quiet mode).</summary>
    public void Info(string line)
    {
        if (Verbosity == Verbosity.Quiet) return;
        if (_live is not null) _live.WriteLine(line);
        else _output.WriteLine(line);
    }

    /// <summary>A warning: "slak: warning: " + <paramref name="message"/> on stderr (above the live display when one
    /// is drawn).</summary>
    public void Warning(string message)
    {
        string line = "slak: warning: " + message;
        if (_live is not null) _live.WriteLine(line);
        else _errors.WriteLine(line);
    }

    /// <summary>The final result line (always printed, to stdout).</summary>
    public void Result(string line) => _output.WriteLine(line);

    /// <summary>Runs <paramref name="trainer"/> with this reporter's output, writing the plot after every epoch when
    /// <paramref name="plotPath"/> is set.</summary>
    public TrainResult Run(Trainer trainer, string? plotPath, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        trainer.EpochCompleted += _ =>
        {
            if (plotPath is null) return;
            string? error = MetricsPlot.TryWrite(trainer.Metrics, plotPath);
            if (error is not null) Warning(error);
        };
        trainer.Log += Info;
        trainer.Warning += Warning;
        if (Verbosity == Verbosity.Verbose) trainer.Detail += Info;
        if (_terminal is null)
        {
            int every = Verbosity == Verbosity.Quiet ? 0 : trainer.Options.LogEvery;
            trainer.StepCompleted += p =>
            {
                if (every > 0 && (p.Step % every == 0 || p.Step == p.TotalSteps)) Info(TrainingConsole.Format(p));
            };
            return trainer.Run(cancel);
        }
        return RunLive(trainer, _terminal, cancel);
    }

    private TrainResult RunLive(Trainer trainer, IAnsiConsole terminal, CancellationToken cancel)
    {
        TrainResult? result = null;
        terminal.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                     new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: Math.Max(1, trainer.TotalSteps));
                task.Value = trainer.Step;
                trainer.StepCompleted += p =>
                {
                    task.Value = p.Step;
                    task.Description = Markup.Escape(TrainingConsole.Describe(p));
                };
                _live = terminal;
                try
                {
                    result = trainer.Run(cancel);
                }
                finally
                {
                    _live = null;
                }
            });
        return result!;
    }

    /// <summary>Restores Console.Out (quiet mode).</summary>
    public void Dispose()
    {
        if (_silenced is null) return;
        Console.SetOut(_silenced);
        _silenced = null;
    }
}
