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

    /// <summary>Refuses to inflate more than this (1 GiB): a corrupt or hostile .gz cannot exhaust memory.</summary>
    public const long MaxDecompressedBytes = 1L << 30;

    /// <summary>Reads an unsigned-byte IDX file of any rank, gzip or raw.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is malformed or truncated.</exception>
    public static IdxArray Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file not found: '{path}'", path);
        return Parse(File.ReadAllBytes(path), path);
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
        ArgumentNullException.ThrowIfNull(source);
        byte[] raw = content.Length >= 2 && content[0] == 0x1f && content[1] == 0x8b
            ? Inflate(content, source)
            : content;
        if (raw.Length < 4) throw Bad(source, $"truncated: {raw.Length} bytes, too short for the 4-byte magic");
        int magic = BinaryPrimitives.ReadInt32BigEndian(raw);
        if (raw[0] != 0 || raw[1] != 0)
        {
            throw Bad(source, $"bad magic 0x{magic:X8}: an IDX file starts with two zero bytes "
                + "(is this an IDX file? a gzip file starts with 1F 8B)");
        }
        if (raw[2] != 0x08)
        {
            throw Bad(source, $"bad magic 0x{magic:X8}: element type 0x{raw[2]:X2} is not supported "
                + "(only 0x08, unsigned byte)");
        }
        int rank = raw[3];
        if (rank is < 1 or > 4) throw Bad(source, $"bad magic 0x{magic:X8}: {rank} dimensions (expected 1 to 4)");
        if (raw.Length < 4 + 4 * rank)
        {
            throw Bad(source, $"truncated header: {rank} dimensions need {4 + 4 * rank} bytes, the file has "
                + raw.Length);
        }
        var dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            int d = BinaryPrimitives.ReadInt32BigEndian(raw.AsSpan(4 + 4 * i));
            if (d <= 0) throw Bad(source, $"dimension {i} is {d}; dimensions must be positive");
            dims[i] = d;
            count *= d;
            if (count > Array.MaxLength)
                throw Bad(source, $"dimensions [{string.Join(", ", dims[..(i + 1)])}] are too large");
        }
        int headerLength = 4 + 4 * rank;
        long available = raw.Length - headerLength;
        if (available < count)
        {
            throw Bad(source, $"truncated data: dimensions [{string.Join(", ", dims)}] need {count} bytes after the "
                + $"header, only {available} are there");
        }
        if (available > count)
        {
            throw Bad(source, $"{available - count} unexpected bytes after the data of dimensions "
                + $"[{string.Join(", ", dims)}]");
        }
        return new IdxArray(magic, dims, raw.AsSpan(headerLength).ToArray());
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

    private static byte[] Inflate(byte[] content, string source)
    {
        try
        {
            using var input = new GZipStream(new MemoryStream(content), CompressionMode.Decompress);
            using var output = new MemoryStream();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = input.Read(buffer)) > 0)
            {
                output.Write(buffer, 0, n);
                if (output.Length > MaxDecompressedBytes)
                    throw Bad(source, $"decompresses to more than {MaxDecompressedBytes} bytes");
            }
            return output.ToArray();
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith("IDX ", StringComparison.Ordinal))
        {
            throw Bad(source, $"corrupt or truncated gzip data: {e.Message}");
        }
    }

    private static InvalidDataException Bad(string source, string problem) => new($"IDX '{source}': {problem}");
}
