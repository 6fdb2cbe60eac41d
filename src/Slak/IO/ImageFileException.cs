// A file of an image-folder data set that cannot be used: the message names the file and the reason.
namespace Slak.IO;

/// <summary>An image file that is empty, unreadable, truncated, corrupt, not an image, in a format we do not read,
/// or too large to decode.</summary>
public sealed class ImageFileException : IOException
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public ImageFileException(string path, string reason, Exception? inner = null)
        : base($"{path}: {reason}", inner)
    {
        Path = path;
        Reason = reason;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Why it cannot be used (without the path).</summary>
    public string Reason { get; }
}
