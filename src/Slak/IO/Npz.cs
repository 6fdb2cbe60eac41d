// Reader of numpy's .npz archives (np.savez / np.savez_compressed): a zip file whose entries are .npy files, one per
// array, named "<key>.npy". Entries may be stored or deflated and may use zip64 records (numpy writes them);
// System.IO.Compression reads all of these. Each entry is parsed by the Npy reader, so the supported dtypes and the
// checks are those of .npy files; every problem names the archive and the entry.
using System.IO.Compression;

namespace Slak.IO;

/// <summary>Reads .npz archives.</summary>
public static class Npz
{
    /// <summary>Largest uncompressed entry accepted (2 GiB, the most one array in memory can hold).</summary>
    public const long MaxEntryBytes = int.MaxValue;

    /// <summary>Reads every array of the .npz file at <paramref name="path"/>, keyed by entry name without ".npy"
    /// (what <c>numpy.load(path).files</c> lists).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a zip archive, or an entry is not a valid
    /// .npy.</exception>
    public static IReadOnlyDictionary<string, NpyArray> Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"npz file not found: '{path}'", path);
        using var stream = File.OpenRead(path);
        return Parse(stream, path);
    }

    /// <summary>Reads every array of an .npz archive from <paramref name="stream"/> (seekable);
    /// <paramref name="source"/> names it in messages.</summary>
    public static IReadOnlyDictionary<string, NpyArray> Parse(Stream stream, string source = "npz data")
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(source);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"npz '{source}': not a zip archive ({e.Message}); an .npz is what "
                + "numpy.savez or numpy.savez_compressed write", e);
        }
        using (zip)
        {
            var arrays = new Dictionary<string, NpyArray>(StringComparer.Ordinal);
            foreach (var entry in zip.Entries)
            {
                if (entry.FullName.EndsWith('/')) continue; // a folder record
                string key = entry.FullName.EndsWith(".npy", StringComparison.Ordinal) ? entry.FullName[..^4] : entry.FullName;
                if (entry.Length > MaxEntryBytes)
                    throw new InvalidDataException($"npz '{source}': entry '{entry.FullName}' is {entry.Length} bytes "
                        + $"uncompressed, more than the {MaxEntryBytes} one array can hold");
                var bytes = new byte[entry.Length];
                try
                {
                    using var s = entry.Open();
                    s.ReadExactly(bytes);
                    if (s.ReadByte() != -1)
                        throw new InvalidDataException($"entry '{entry.FullName}' holds more bytes than its recorded size {entry.Length}");
                }
                catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
                {
                    throw new InvalidDataException($"npz '{source}': entry '{entry.FullName}' cannot be read ({e.Message})", e);
                }
                if (!arrays.TryAdd(key, Npy.Parse(bytes, $"{source}:{entry.FullName}")))
                    throw new InvalidDataException($"npz '{source}': the array '{key}' appears twice");
            }
            return arrays;
        }
    }
}
