// What the start-up scan of an image folder found: the classes (sorted folder names of train/, the class index
// of every split), the usable files of each split with their labels, and every problem, each naming its path.
namespace Slak.IO;

/// <summary>One problem of an image folder: a path and what is wrong with it.</summary>
/// <param name="Path">The file or folder.</param>
/// <param name="Reason">What is wrong.</param>
public sealed record ImageFolderProblem(string Path, string Reason)
{
    /// <summary>"path: reason".</summary>
    public override string ToString() => $"{Path}: {Reason}";
}

/// <summary>A labelled file of one split.</summary>
/// <param name="Path">The image file.</param>
/// <param name="Label">Its class index.</param>
public readonly record struct ImageFolderEntry(string Path, int Label);

/// <summary>The scanned layout of an image folder.</summary>
/// <param name="Root">The folder given.</param>
/// <param name="Classes">Class names in index order (sorted ordinally, as torchvision's ImageFolder).</param>
/// <param name="Train">Usable files of train/.</param>
/// <param name="Val">Usable files of val/ (null when there is no val/).</param>
/// <param name="Test">Usable files of test/ (null when there is no test/).</param>
/// <param name="Problems">Every problem found, sorted by path.</param>
public sealed record ImageFolderIndex(string Root, IReadOnlyList<string> Classes, IReadOnlyList<ImageFolderEntry> Train,
    IReadOnlyList<ImageFolderEntry>? Val, IReadOnlyList<ImageFolderEntry>? Test, IReadOnlyList<ImageFolderProblem> Problems)
{
    /// <summary>How many problems <see cref="Report"/> lists by name.</summary>
    public const int ListedProblems = 20;

    /// <summary>Every problem in one message: the count, the first <see cref="ListedProblems"/> by path, then how many
    /// more.</summary>
    public string Report()
    {
        var lines = Problems.Take(ListedProblems).Select(p => "  " + p);
        string more = Problems.Count > ListedProblems ? $"\n  ... and {Problems.Count - ListedProblems} more" : "";
        return $"image folder {Root}: {Problems.Count} problem{(Problems.Count == 1 ? "" : "s")}:\n{string.Join("\n", lines)}{more}";
    }
}
