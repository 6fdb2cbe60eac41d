// Per-tensor checksums of the safetensors files Slak writes (run checkpoints): the XxHash64 of every tensor's raw
// bytes, as 16 hex digits, kept in the header's __metadata__ under one key as a JSON object {tensor: digest}; the
// reserved name "__metadata__" (never a tensor's) holds the digest of the other metadata entries (sorted by key), so
// an edited option or counter is caught as well as damaged tensor data.
// SafeTensorsFile verifies them on every read, so a flipped byte in tensor data is an error naming the file and the
// tensor (TensorFlow checkpoints carry a CRC32C per tensor for the same reason). Files without the key (official or
// converted weights) still load; they are reported as unverified by the commands that read them.
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Text.Json;

namespace Slak.IO;

/// <summary>Computes and checks the per-tensor checksums of a safetensors file.</summary>
internal static class TensorChecksums
{
    /// <summary>The <c>__metadata__</c> key holding the checksums.</summary>
    public const string MetadataKey = "slak.xxh64";

    /// <summary>The checksum of <paramref name="bytes"/>: XxHash64 (seed 0) as 16 lowercase hex digits.</summary>
    public static string Of(ReadOnlySpan<byte> bytes) =>
        XxHash64.HashToUInt64(bytes).ToString("x16", CultureInfo.InvariantCulture);

    private const string MetadataEntry = "__metadata__";

    /// <summary>The metadata value for the given tensors (names in the order given) and the other metadata
    /// entries.</summary>
    public static string Encode(IEnumerable<(string Name, byte[] Data)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(metadata);
        var map = new Dictionary<string, string>(StringComparer.Ordinal) { [MetadataEntry] = OfMetadata(metadata) };
        foreach (var (name, data) in tensors) map[name] = Of(data);
        return JsonSerializer.Serialize(map);
    }

    /// <summary>The checksum of the metadata entries other than <see cref="MetadataKey"/>: keys in ordinal order,
    /// each key and value as UTF-8 followed by a zero byte.</summary>
    private static string OfMetadata(IReadOnlyDictionary<string, string> metadata)
    {
        using var bytes = new MemoryStream();
        foreach (var (key, value) in metadata.Where(m => m.Key != MetadataKey).OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            bytes.Write(System.Text.Encoding.UTF8.GetBytes(key));
            bytes.WriteByte(0);
            bytes.Write(System.Text.Encoding.UTF8.GetBytes(value));
            bytes.WriteByte(0);
        }
        return Of(bytes.ToArray());
    }

    /// <summary>True when <paramref name="metadata"/> carries checksums.</summary>
    public static bool Present(IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        return metadata.ContainsKey(MetadataKey);
    }

    /// <summary>Checks every tensor against the checksums in <paramref name="metadata"/> (nothing to do when there
    /// are none). Throws <see cref="InvalidDataException"/> naming <paramref name="source"/> and the tensor on a
    /// mismatch, a tensor without a checksum, or a checksum without a tensor.</summary>
    /// <returns>True when the file carried checksums (all verified), false when it had none.</returns>
    public static bool Verify(string source, IReadOnlyDictionary<string, string> metadata, IReadOnlyList<SafeTensorsEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(entries);
        if (!metadata.TryGetValue(MetadataKey, out var text)) return false;
        Dictionary<string, string>? expected;
        try
        {
            expected = JsonSerializer.Deserialize<Dictionary<string, string>>(text);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"safetensors '{source}': metadata '{MetadataKey}' is not a JSON object of checksums: {e.Message}", e);
        }
        if (expected is null)
            throw new InvalidDataException($"safetensors '{source}': metadata '{MetadataKey}' is null");
        if (!expected.TryGetValue(MetadataEntry, out var metaWant))
            throw new InvalidDataException($"safetensors '{source}': metadata '{MetadataKey}' has no checksum of the metadata (the file was altered after it was written)");
        string metaGot = OfMetadata(metadata);
        if (!string.Equals(metaGot, metaWant, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"safetensors '{source}': checksum mismatch in the metadata (stored {metaWant}, computed {metaGot}): "
                + "a metadata value was altered or damaged");
        foreach (var e in entries)
        {
            if (!expected.TryGetValue(e.Name, out var want))
                throw new InvalidDataException($"safetensors '{source}': tensor '{e.Name}' has no checksum (the file was altered after it was written)");
            string got = Of(e.Data.Span);
            if (!string.Equals(got, want, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException($"safetensors '{source}': checksum mismatch in tensor '{e.Name}' "
                    + $"(stored {want}, computed {got}): the file is damaged");
        }
        var names = entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var orphan = expected.Keys.FirstOrDefault(k => k != MetadataEntry && !names.Contains(k));
        if (orphan is not null)
            throw new InvalidDataException($"safetensors '{source}': a checksum names tensor '{orphan}', which the file does not hold (the file was altered after it was written)");
        return true;
    }

    /// <summary>Whether the safetensors file at <paramref name="path"/> carries checksums, reading only its header
    /// (for the "unverified" notice of commands that load weights).</summary>
    public static bool FileHasChecksums(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Span<byte> prefix = stackalloc byte[8];
        if (stream.Length < 8) return false;
        stream.ReadExactly(prefix);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n == 0 || n > (ulong)Math.Min(stream.Length - 8, SafeTensorsFile.MaxHeaderLength)) return false;
        var header = new byte[n];
        stream.ReadExactly(header);
        try
        {
            using var doc = JsonDocument.Parse(header);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("__metadata__", out var meta)
                && meta.ValueKind == JsonValueKind.Object && meta.TryGetProperty(MetadataKey, out _);
        }
        catch (JsonException)
        {
            return false; // the full read reports the damage
        }
    }
}
