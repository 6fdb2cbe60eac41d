// One writer per run folder: an exclusive OS lock on <run>/.lock, held for the whole run. On Linux, .NET opens a file
// with FileShare.None under an advisory flock(LOCK_EX | LOCK_NB), which the kernel releases when the process ends
// however it ends (even SIGKILL), so a crashed trainer never leaves a stale lock; the file itself stays and is
// reused. The holder writes its process id into the file so that the refused one can name it. Other processes
// cannot open the locked file through .NET (any FileStream takes a shared flock), so the id is read with libc.
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Slak.Train;

/// <summary>An exclusive lock on a run folder (dispose to release).</summary>
internal sealed partial class RunLock : IDisposable
{
    /// <summary>Name of the lock file inside the run folder.</summary>
    public const string FileName = ".lock";

    private FileStream? _stream;

    private RunLock(string path, FileStream stream)
    {
        Path = path;
        _stream = stream;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>Creates <paramref name="runFolder"/> when missing and locks it; throws <see cref="IOException"/>
    /// naming the holder's process id when another process (or another lock in this one) holds it.</summary>
    public static RunLock Acquire(string runFolder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(runFolder);
        if (File.Exists(runFolder)) throw new IOException($"run folder '{runFolder}' is a file, not a folder");
        Directory.CreateDirectory(runFolder);
        string path = System.IO.Path.Combine(runFolder, FileName);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e is not (FileNotFoundException or DirectoryNotFoundException or PathTooLongException))
        {
            string? holder = ReadHolder(path);
            throw new IOException($"run folder '{runFolder}' is in use by another trainer "
                + (holder is null ? "(its process id is not recorded yet)" : $"(process {holder})")
                + $"; wait for it to finish or stop it first ({path} is locked: {e.GetType().Name})");
        }
        try
        {
            stream.SetLength(0);
            stream.Write(Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n"));
            stream.Flush(flushToDisk: true);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        return new RunLock(path, stream);
    }

    /// <summary>The process id recorded in a lock file (null when unreadable or empty).</summary>
    public static string? ReadHolder(string lockPath)
    {
        ArgumentNullException.ThrowIfNull(lockPath);
        if (OperatingSystem.IsWindows()) return null;
        try
        {
            int fd = Open(lockPath, 0 /* O_RDONLY */);
            if (fd < 0) return null;
            var buffer = new byte[32];
            nint n = Read(fd, buffer, buffer.Length);
            _ = Close(fd);
            if (n <= 0) return null;
            string text = Encoding.ASCII.GetString(buffer, 0, (int)n).Trim();
            return text.Length > 0 && text.All(char.IsAsciiDigit) ? text : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Releases the lock (the file stays, for the next run).</summary>
    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "read")]
    private static partial nint Read(int fd, [Out] byte[] buffer, nint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
