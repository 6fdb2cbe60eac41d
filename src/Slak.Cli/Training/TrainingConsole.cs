// Presentation of a training run: a Spectre.Console progress bar (loss, images/s, ETA) when stdout is an
// interactive terminal, plain log lines otherwise (CI, redirected output). Spectre is not thread-safe, so every
// update comes from the training thread (the trainer raises its events there).
using System.Globalization;
using Spectre.Console;
using Slak.Train;

namespace Slak.Cli.Training;

/// <summary>Runs a trainer with progress output.</summary>
internal static class TrainingConsole
{
    /// <summary>True when a live progress bar can be drawn.</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="trainer"/>, writing the plot after every epoch when <paramref name="plotPath"/> is set.</summary>
    public static TrainResult Run(Trainer trainer, string? plotPath, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        trainer.EpochCompleted += _ =>
        {
            if (plotPath is null) return;
            string? error = MetricsPlot.TryWrite(trainer.Metrics, plotPath);
            if (error is not null) Console.Error.WriteLine($"slak: warning: {error}");
        };
        if (!Interactive)
        {
            trainer.Log += Console.WriteLine;
            int every = trainer.Options.LogEvery;
            trainer.StepCompleted += p =>
            {
                if (every > 0 && (p.Step % every == 0 || p.Step == p.TotalSteps)) Console.WriteLine(Format(p));
            };
            return trainer.Run(cancel);
        }
        TrainResult? result = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                     new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: Math.Max(1, trainer.TotalSteps));
                task.Value = trainer.Step;
                trainer.Log += line => AnsiConsole.WriteLine(line);
                trainer.StepCompleted += p =>
                {
                    task.Value = p.Step;
                    task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                        $"epoch {p.Epoch + 1}/{p.Epochs}  loss {p.Loss:F4}  {p.ImagesPerSecond:F0} img/s  ETA {Duration(p.Eta)}"));
                };
                result = trainer.Run(cancel);
            });
        return result!;
    }

    /// <summary>One plain progress line.</summary>
    public static string Format(StepProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"step {p.Step}/{p.TotalSteps} (epoch {p.Epoch + 1}/{p.Epochs}): loss {p.Loss:F4}, lr {p.Lr:G4}, {p.ImagesPerSecond:F0} img/s, elapsed {Duration(p.Elapsed)}, ETA {Duration(p.Eta)}");

    /// <summary>A duration as hours:minutes:seconds, the hours not wrapping at 24 (e.g. "31:05:09").</summary>
    public static string Duration(TimeSpan t)
    {
        if (t < TimeSpan.Zero) t = TimeSpan.Zero;
        long seconds = (long)Math.Min(t.TotalSeconds, long.MaxValue / 2);
        return string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:00}:{seconds / 60 % 60:00}:{seconds % 60:00}");
    }
}
