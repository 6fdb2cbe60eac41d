// What may change when a run is resumed: the run continues with its saved options, except that --epochs may be
// raised to extend it (the cosine schedule then stretches to the new end) and the device and the progress-log
// interval may differ (they do not change the numbers). Any other difference is refused, naming the option, so that a
// value given with --resume is never silently ignored.
using System.Text.Json;

namespace Slak.Train;

/// <summary>Reconciles the options given to a resumed run with the saved ones.</summary>
public static class ResumeOptions
{
    /// <summary>Options (snake_case names) that may differ freely on resume.</summary>
    public static IReadOnlySet<string> Free { get; } = new HashSet<string>(StringComparer.Ordinal) { "device", "log_every" };

    /// <summary>Checks <paramref name="requested"/> against <paramref name="saved"/>: returns
    /// <paramref name="requested"/> when only <see cref="Free"/> options differ or the epochs are raised (saying so
    /// through <paramref name="log"/>); throws <see cref="ArgumentException"/> naming every other option that
    /// differs, with both values.</summary>
    public static TrainOptions Reconcile(TrainOptions saved, TrainOptions requested, Action<string>? log)
    {
        ArgumentNullException.ThrowIfNull(saved);
        ArgumentNullException.ThrowIfNull(requested);
        using var a = JsonDocument.Parse(saved.ToJson());
        using var b = JsonDocument.Parse(requested.ToJson());
        var differ = new List<string>();
        foreach (var p in a.RootElement.EnumerateObject())
        {
            string given = b.RootElement.TryGetProperty(p.Name, out var v) ? v.GetRawText() : "(none)";
            string was = p.Value.GetRawText();
            if (given == was || Free.Contains(p.Name)) continue;
            if (p.Name == "epochs" && requested.Epochs > saved.Epochs) continue;
            // Another rank count keeps the global batch (docs/data-parallel.md).
            if (p.Name is "ranks" or "batch_size" && requested.BatchSize * requested.Ranks == saved.BatchSize * saved.Ranks) continue;
            differ.Add($"--{p.Name.Replace('_', '-')} {given} (the run was saved with {was})");
        }
        if (requested.Epochs < saved.Epochs && differ.Count == 1 && differ[0].StartsWith("--epochs", StringComparison.Ordinal))
            throw new ArgumentException($"--epochs {requested.Epochs} is fewer than the run's {saved.Epochs}; a resumed run can only be "
                + "extended (raise --epochs) or continued as saved", "--epochs");
        if (differ.Count > 0)
            throw new ArgumentException($"a resumed run keeps its saved options (only --epochs may be raised); these differ: "
                + $"{string.Join(", ", differ)}", differ[0].Split(' ')[0]);
        if (requested.Epochs > saved.Epochs)
            log?.Invoke($"extending the run from {saved.Epochs} to {requested.Epochs} epochs (the learning-rate and prune-rate schedules stretch to the new end)");
        return requested;
    }
}
