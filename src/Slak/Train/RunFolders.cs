// What a run folder holds, for the start of `slak train`: a folder that already holds a run (checkpoints or metrics)
// is only replaced when the caller says so (--overwrite), and then the old run's files are removed first so that
// nothing of it mixes with the new one. A folder with only options.json (a run interrupted before its first
// checkpoint) holds nothing to keep.
namespace Slak.Train;

/// <summary>Checks and clears run folders.</summary>
internal static class RunFolders
{
    private static readonly string[] CheckpointFolders = ["last", "last.old", "best", "best.old"];

    /// <summary>Files and folders a run writes (besides the lock).</summary>
    public static IReadOnlyList<string> RunEntries { get; } =
        ["last", "last.old", "last.tmp", "best", "best.old", "best.tmp", "metrics.jsonl", "options.json", "plot.png", "steps.jsonl"];

    /// <summary>True when <paramref name="folder"/> holds a checkpoint or metrics of a run.</summary>
    public static bool HoldsRun(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        return CheckpointFolders.Any(n => Directory.Exists(Path.Combine(folder, n)))
            || File.Exists(Path.Combine(folder, "metrics.jsonl"));
    }

    /// <summary>Readies <paramref name="folder"/> for a new run: refuses one that holds a run unless
    /// <paramref name="overwrite"/>, in which case the old run's files are deleted (said through
    /// <paramref name="log"/>).</summary>
    public static void PrepareNewRun(string folder, bool overwrite, Action<string>? log)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (File.Exists(folder)) throw new IOException($"--out '{folder}' is a file, not a folder");
        if (!HoldsRun(folder)) return;
        if (!overwrite)
            throw new IOException($"'{folder}' already holds a run (checkpoints or metrics.jsonl); continue it with --resume, "
                + "or replace it with --overwrite");
        log?.Invoke($"--overwrite: removing the previous run's checkpoints and metrics in {folder}");
        foreach (var name in RunEntries)
        {
            string p = Path.Combine(folder, name);
            if (Directory.Exists(p)) Directory.Delete(p, recursive: true);
            else if (File.Exists(p)) File.Delete(p);
        }
    }
}
