// Checks shared by the commands that read weights or data: a note when a weights file carries no checksums (official
// or converted weights: they load, but nothing vouches for their bytes), a clear error when --data names a file, and
// a refusal of non-finite outputs (damaged or diverged weights) instead of printing them as results.
using Slak.IO;

namespace Slak.Cli.Training;

/// <summary>Integrity checks and notices of the CLI.</summary>
internal static class WeightChecks
{
    /// <summary>Prints a note when the safetensors file at <paramref name="path"/> has no per-tensor checksums.
    /// (Checksums that are present are verified when the file is read.)</summary>
    public static void NoteUnverified(string path)
    {
        if (File.Exists(path) && !TensorChecksums.FileHasChecksums(path))
            Console.WriteLine($"note: {path} carries no checksums (official or converted weights); its tensors are unverified");
    }

    /// <summary>Throws when <paramref name="folder"/> (a --data value) is a file or does not exist.</summary>
    public static void CheckDataFolder(string? folder)
    {
        if (folder is null) return;
        if (File.Exists(folder)) throw new IOException($"--data '{folder}' is a file, not a folder (give the folder holding the data set)");
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"--data folder '{folder}' does not exist");
    }

    /// <summary>Throws when <paramref name="value"/> is not finite: the weights in <paramref name="source"/>
    /// are damaged or diverged.</summary>
    public static void CheckFinite(double value, string what, string source)
    {
        if (!double.IsFinite(value))
            throw new InvalidDataException($"{source}: {what} is {value}: the weights produce non-finite outputs (damaged or diverged checkpoint)");
    }
}
