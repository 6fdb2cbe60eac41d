// Atomic file replacement for every file Slak writes (checkpoints, safetensors, npy, configs): the bytes go to a
// temporary file in the target's folder, are flushed to disk, and only then renamed over the target, so a crash or
// an exception during the write leaves either the old file or the new one, never a torn mix.
using System.Runtime.InteropServices;
using System.Text;

namespace Slak.IO;

/// <summary>Writes files atomically: temp file in the same folder, fsync, rename over the target.</summary>
internal static partial class AtomicFile
{
    /// <summary>Writes the file at <paramref name="path"/> through <paramref name="write"/>, atomically. If
    /// <paramref name="write"/> throws, the old file (if any) is untouched and the temp file is removed.</summary>
    /// <param name="path">Target file; its folder must exist.</param>
    /// <param name="write">Writes the whole content to the stream it is given (do not dispose the stream).</param>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new ArgumentException($"cannot write '{full}': it is a folder", nameof(path));
        string folder = Path.GetDirectoryName(full) ?? throw new ArgumentException(
            $"cannot write '{full}': it has no parent folder", nameof(path));
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"cannot write '{full}': folder '{folder}' does not exist");

        // Same folder as the target, so the rename stays on one file system (and is atomic there).
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        SyncFolder(folder);
    }

    /// <summary>Atomically replaces <paramref name="path"/> with <paramref name="bytes"/>.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>Atomically replaces <paramref name="path"/> with <paramref name="text"/> in UTF-8 (no BOM).</summary>
    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
        Write(path, s => s.Write(bytes));
    }

    private static void TryDelete(string temp)
    {
        try
        {
            File.Delete(temp);
        }
        catch (IOException)
        {
            // The original exception matters more than a leftover temp file.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    // The rename is only durable once the folder entry is on disk; .NET has no API for a folder fsync, so on Unix
    // call open/fsync/close directly. Best effort: a failure here does not undo a completed write.
    private static void SyncFolder(string folder)
    {
        if (OperatingSystem.IsWindows()) return;
        try
        {
            int fd = Open(folder, 0 /* O_RDONLY */);
            if (fd < 0) return;
            _ = FSync(fd);
            _ = Close(fd);
        }
        catch (DllNotFoundException)
        {
        }
        catch (EntryPointNotFoundException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
