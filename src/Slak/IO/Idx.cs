// Reader of IDX files (the container of MNIST and Fashion-MNIST), raw or gzip-compressed (detected by content).
// Only unsigned-byte arrays (type 0x08) are accepted, which is what both data sets use; the magic, the dimensions
// and the exact length are checked, and every problem is reported with the file name.
using System.Buffers.Binary;
using System.IO.Compression;

namespace Slak.IO;

/// <summary>Reads IDX files such as <c>train-images-idx3-ubyte.gz</c>.</summary>
public static class Idx
{
    /// <summary>Magic of an image file: unsigned bytes, 3 dimensions (n, rows, cols).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>Magic of a label file: unsigned bytes, 1 dimension (n).</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>Largest element count accepted (1 GiB), so a corrupt or hostile file cannot exhaust memory.
    /// </summary>
    public const long MaxDecompressedBytes = 1L << 30;

    /// <summary>Reads an unsigned-byte IDX file of any rank, gzip or raw.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is malformed or truncated.</exception>
    public static IdxArray Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file not found: '{path}'", path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Parse(file, path);
    }

    /// <summary>Reads an image file (magic 0x00000803, dimensions n x rows x cols).</summary>
    public static IdxArray ReadImages(string path) => Expect(Read(path), ImagesMagic, path);

    /// <summary>Reads a label file (magic 0x00000801, dimension n).</summary>
    public static IdxArray ReadLabels(string path) => Expect(Read(path), LabelsMagic, path);

    /// <summary>Parses IDX content (gzip-compressed or raw) held in memory.</summary>
    /// <param name="content">The file bytes.</param>
    /// <param name="source">A name for error messages.</param>
    public static IdxArray Parse(byte[] content, string source = "IDX data")
    {
        ArgumentNullException.ThrowIfNull(content);
        using var memory = new MemoryStream(content, writable: false);
        return Parse(memory, source);
    }

    /// <summary>Parses IDX content (gzip-compressed or raw) from a seekable stream positioned at its start. The
    /// elements are read straight into the result array (no intermediate copy of the whole file).</summary>
    /// <param name="content">The file content; must support seeking (to sniff the gzip signature).</param>
    /// <param name="source">A name for error messages.</param>
    public static IdxArray Parse(Stream content, string source = "IDX data")
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentNullException.ThrowIfNull(source);
        if (!content.CanSeek) throw new ArgumentException("the stream must support seeking", nameof(content));
        long start = content.Position;
        Span<byte> signature = stackalloc byte[2];
        int sniffed = content.ReadAtLeast(signature, 2, throwOnEndOfStream: false);
        content.Position = start;
        if (sniffed == 2 && signature[0] == 0x1f && signature[1] == 0x8b)
        {
            try
            {
                using var gzip = new GZipStream(content, CompressionMode.Decompress, leaveOpen: true);
                return ParseRaw(gzip, source);
            }
            catch (InvalidDataException e) when (!e.Message.StartsWith("IDX ", StringComparison.Ordinal))
            {
                throw Bad(source, $"corrupt or truncated gzip data: {e.Message}");
            }
        }
        return ParseRaw(content, source);
    }

    private static IdxArray ParseRaw(Stream raw, string source)
    {
        var head = new byte[4 + 4 * 4];
        int got = raw.ReadAtLeast(head.AsSpan(0, 4), 4, throwOnEndOfStream: false);
        if (got < 4) throw Bad(source, $"truncated: {got} bytes, too short for the 4-byte magic");
        int magic = BinaryPrimitives.ReadInt32BigEndian(head);
        if (head[0] != 0 || head[1] != 0)
        {
            throw Bad(source, $"bad magic 0x{magic:X8}: an IDX file starts with two zero bytes "
                + "(is this an IDX file? a gzip file starts with 1F 8B)");
        }
        if (head[2] != 0x08)
        {
            throw Bad(source, $"bad magic 0x{magic:X8}: element type 0x{head[2]:X2} is not supported "
                + "(only 0x08, unsigned byte)");
        }
        int rank = head[3];
        if (rank is < 1 or > 4) throw Bad(source, $"bad magic 0x{magic:X8}: {rank} dimensions (expected 1 to 4)");
        got = raw.ReadAtLeast(head.AsSpan(4, 4 * rank), 4 * rank, throwOnEndOfStream: false);
        if (got < 4 * rank)
        {
            throw Bad(source, $"truncated header: {rank} dimensions need {4 + 4 * rank} bytes, the file has "
                + (4 + got));
        }
        var dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            int d = BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(4 + 4 * i));
            if (d <= 0) throw Bad(source, $"dimension {i} is {d}; dimensions must be positive");
            dims[i] = d;
            count *= d;
            if (count > Math.Min(Array.MaxLength, MaxDecompressedBytes))
                throw Bad(source, $"dimensions [{string.Join(", ", dims[..(i + 1)])}] are too large");
        }
        var data = new byte[count];
        int available = raw.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
        if (available < count)
        {
            throw Bad(source, $"truncated data: dimensions [{string.Join(", ", dims)}] need {count} bytes after the "
                + $"header, only {available} are there");
        }
        long extra = CountRemaining(raw);
        if (extra > 0)
        {
            throw Bad(source, $"{extra} unexpected bytes after the data of dimensions "
                + $"[{string.Join(", ", dims)}]");
        }
        return new IdxArray(magic, dims, data);
    }

    // Bytes left in the stream (bounded by MaxDecompressedBytes, so a hostile .gz cannot make this run forever).
    private static long CountRemaining(Stream raw)
    {
        var buffer = new byte[1 << 12];
        long extra = 0;
        int n;
        while (extra <= MaxDecompressedBytes && (n = raw.Read(buffer)) > 0) extra += n;
        return extra;
    }

    private static IdxArray Expect(IdxArray array, int magic, string source)
    {
        if (array.Magic != magic)
        {
            string want = magic == ImagesMagic ? "an image file (n, rows, cols)" : "a label file (n)";
            throw Bad(source, $"magic 0x{array.Magic:X8} with dimensions [{string.Join(", ", array.Dims)}]; expected "
                + $"0x{magic:X8}, {want}");
        }
        return array;
    }

    private static InvalidDataException Bad(string source, string problem) => new($"IDX '{source}': {problem}");
}
