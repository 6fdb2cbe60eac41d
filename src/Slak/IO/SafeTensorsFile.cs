// Reader of the safetensors format (8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data).
// The header is validated completely (length, JSON shape, dtypes, shape x item size = byte range, ranges inside the
// data, no overlaps, no gaps) before any tensor data is interpreted; errors name the file and the offending entry.
// Per-tensor checksums, when the file has them (TensorChecksums), are verified on every read.
using System.Buffers.Binary;

namespace Slak.IO;

/// <summary>A parsed safetensors file held in memory: metadata and tensors in header order.</summary>
public sealed partial class SafeTensorsFile
{
    /// <summary>Largest header accepted (the reference implementation's limit): 100,000,000 bytes.</summary>
    public const long MaxHeaderLength = 100_000_000;

    private readonly SafeTensorsEntry[] _entries;
    private readonly Dictionary<string, SafeTensorsEntry> _byName;

    private SafeTensorsFile(string source, long headerLength, IReadOnlyDictionary<string, string> metadata,
        SafeTensorsEntry[] entries)
    {
        Source = source;
        HeaderLength = headerLength;
        Metadata = metadata;
        _entries = entries;
        _byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        Verified = TensorChecksums.Verify(source, metadata, entries);
    }

    /// <summary>True when the file carried per-tensor checksums (<see cref="TensorChecksums"/>), all of which
    /// matched; false when it had none (official or converted weights). A mismatch throws while reading.</summary>
    public bool Verified { get; }

    /// <summary>Where the content came from (the path, or the name given to <see cref="Parse"/>).</summary>
    public string Source { get; }

    /// <summary>Length N of the JSON header in bytes.</summary>
    public long HeaderLength { get; }

    /// <summary>The <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensors in header order.</summary>
    public IReadOnlyList<SafeTensorsEntry> Entries => _entries;

    /// <summary>Tensor names in header order.</summary>
    public IEnumerable<string> Names => _entries.Select(e => e.Name);

    /// <summary>The tensor called <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> naming the
    /// file when there is none.</summary>
    public SafeTensorsEntry this[string name] => TryGet(name, out var entry) ? entry
        : throw new KeyNotFoundException($"{Source}: no tensor named '{name}' (the file has {_entries.Length})");

    /// <summary>Whether a tensor called <paramref name="name"/> exists.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Looks up a tensor by name.</summary>
    public bool TryGet(string name, out SafeTensorsEntry entry)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out entry!);
    }

    /// <summary>The tensor <paramref name="name"/> as float32 (from F32, F16, BF16 or F64).</summary>
    public float[] ToFloat32(string name) => this[name].ToFloat32();

    /// <summary>The tensor <paramref name="name"/> as int64 (from any integer type or BOOL).</summary>
    public long[] ToInt64(string name) => this[name].ToInt64();

    /// <summary>Reads and validates the safetensors file at <paramref name="path"/>. The header is read and
    /// checked against the file size before the data is read.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is truncated or its header is inconsistent.</exception>
    public static SafeTensorsFile Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file not found: '{path}'", path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        long fileLength = stream.Length;
        Span<byte> prefix = stackalloc byte[8];
        if (fileLength < 8)
            throw Bad(path, $"the file is {fileLength} bytes, too short for the 8-byte header length");
        stream.ReadExactly(prefix);
        long headerLength = CheckHeaderLength(path, BinaryPrimitives.ReadUInt64LittleEndian(prefix), fileLength);
        long dataLength = fileLength - 8 - headerLength;
        if (dataLength > Array.MaxLength)
        {
            throw Bad(path, $"the data section is {dataLength} bytes; files whose data exceeds {Array.MaxLength} "
                + "bytes are not supported");
        }
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var (metadata, specs) = ParseHeader(path, header, dataLength);
        var data = new byte[dataLength];
        stream.ReadExactly(data);
        return Build(path, headerLength, metadata, specs, data);
    }

    /// <summary>Parses and validates safetensors content held in memory (the whole file).</summary>
    /// <param name="content">The file bytes; kept (not copied) as the backing store of the tensors.</param>
    /// <param name="source">A name for error messages.</param>
    /// <exception cref="InvalidDataException">The content is truncated or its header is inconsistent.</exception>
    public static SafeTensorsFile Parse(byte[] content, string source = "safetensors data")
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentNullException.ThrowIfNull(source);
        if (content.Length < 8)
            throw Bad(source, $"the file is {content.Length} bytes, too short for the 8-byte header length");
        long headerLength = CheckHeaderLength(
            source, BinaryPrimitives.ReadUInt64LittleEndian(content), content.LongLength);
        long dataLength = content.Length - 8 - headerLength;
        var (metadata, specs) = ParseHeader(
            source, content.AsMemory(8, (int)headerLength), dataLength);
        return Build(source, headerLength, metadata, specs,
            content.AsMemory(8 + (int)headerLength, (int)dataLength));
    }

    private static long CheckHeaderLength(string source, ulong headerLength, long fileLength)
    {
        if (headerLength == 0) throw Bad(source, "the header length is 0 (no JSON header)");
        if (headerLength > (ulong)(fileLength - 8))
        {
            throw Bad(source, $"the header length {headerLength} exceeds the {fileLength - 8} bytes that follow "
                + "the 8-byte length prefix (file truncated, or not a safetensors file)");
        }
        if (headerLength > MaxHeaderLength)
            throw Bad(source, $"the header length {headerLength} exceeds the limit of {MaxHeaderLength} bytes");
        return (long)headerLength;
    }

    private static SafeTensorsFile Build(string source, long headerLength, Dictionary<string, string> metadata,
        List<TensorSpec> specs, ReadOnlyMemory<byte> data)
    {
        var entries = new SafeTensorsEntry[specs.Count];
        for (int i = 0; i < specs.Count; i++)
        {
            var s = specs[i];
            entries[i] = new SafeTensorsEntry(s.Name, s.DType, s.Shape, s.ElementCount, s.Begin, s.End,
                data.Slice((int)s.Begin, (int)(s.End - s.Begin)));
        }
        return new SafeTensorsFile(source, headerLength, metadata, entries);
    }

    private static InvalidDataException Bad(string source, string problem) =>
        new($"safetensors '{source}': {problem}");
}
