// The text of training progress: the plain progress line (off a terminal), the live display's task line (on one) and
// durations; whether a live display can be drawn. TrainingReporter decides what is printed where.
using System.Globalization;
using Spectre.Console;
using Slak.Train;

namespace Slak.Cli.Training;

/// <summary>Progress texts of a training run.</summary>
internal static class TrainingConsole
{
    /// <summary>True when a live progress bar can be drawn.</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>The live display's task line: step, epoch, loss, img/s, ETA.</summary>
    public static string Describe(StepProgress p)
    {
        ArgumentNullException.ThrowIfNull(p);
        return string.Create(CultureInfo.InvariantCulture,
            $"step {p.Step}/{p.TotalSteps}  epoch {p.Epoch + 1}/{p.Epochs}  loss {p.Loss:F4}  {p.ImagesPerSecond:F0} img/s  ETA {Duration(p.Eta)}");
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
