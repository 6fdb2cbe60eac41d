// Reader and writer of numpy's .npy format (versions 1.0, 2.0 and 3.0): float32, float64 and int64, little-endian,
// C order. Other dtypes, big-endian data, Fortran order and truncated or oversized files are rejected with a
// message that names the file and the problem. Writes are atomic.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Slak.IO;

/// <summary>Reads and writes .npy files.</summary>
public static class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads the .npy file at <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is malformed, truncated or of an unsupported kind.</exception>
    public static NpyArray Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"npy file not found: '{path}'", path);
        long length = new FileInfo(path).Length;
        if (length > Array.MaxLength)
            throw new InvalidDataException($"npy '{path}': {length} bytes is larger than Slak can hold in memory");
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses .npy content held in memory.</summary>
    /// <param name="content">The whole file.</param>
    /// <param name="source">A name for error messages.</param>
    /// <exception cref="InvalidDataException">The content is malformed, truncated or unsupported.</exception>
    public static NpyArray Parse(ReadOnlySpan<byte> content, string source = "npy data")
    {
        ArgumentNullException.ThrowIfNull(source);
        if (content.Length < 10 || !content[..6].SequenceEqual(Magic))
        {
            string got = Convert.ToHexString(content[..Math.Min(6, content.Length)]);
            throw Bad(source, $"not an .npy file: expected the magic \\x93NUMPY, got bytes {got} "
                + $"({content.Length} bytes in all)");
        }
        int major = content[6], minor = content[7];
        int headerStart;
        long headerLength;
        if (major == 1)
        {
            headerStart = 10;
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(content[8..]);
        }
        else if (major is 2 or 3)
        {
            if (content.Length < 12) throw Bad(source, $"truncated: {content.Length} bytes, version {major}.{minor}");
            headerStart = 12;
            headerLength = BinaryPrimitives.ReadUInt32LittleEndian(content[8..]);
        }
        else
        {
            throw Bad(source, $"unsupported format version {major}.{minor} (supported: 1.0, 2.0, 3.0)");
        }
        if (headerStart + headerLength > content.Length)
        {
            throw Bad(source, $"truncated header: the header length {headerLength} runs past the end of the "
                + $"{content.Length}-byte file");
        }
        ReadOnlySpan<byte> headerBytes = content.Slice(headerStart, (int)headerLength);
        string text;
        try
        {
            text = (major == 3 ? new UTF8Encoding(false, true) : (Encoding)Encoding.Latin1).GetString(headerBytes);
        }
        catch (DecoderFallbackException e)
        {
            throw Bad(source, $"the header is not valid UTF-8: {e.Message}");
        }
        NpyHeader header = NpyHeader.Parse(text, source);
        NpyDType dtype = ParseDescr(header.Descr, source);
        if (header.FortranOrder)
        {
            throw Bad(source, "fortran_order is True; only C-order arrays are supported "
                + "(save np.ascontiguousarray(a) instead)");
        }
        int[] shape = new int[header.Shape.Length];
        long count = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (header.Shape[i] > int.MaxValue)
                throw Bad(source, $"shape {ShapeText(header.Shape)}: dimension {i} is too large");
            shape[i] = (int)header.Shape[i];
            count = Math.Min(count * shape[i], long.MaxValue / int.MaxValue);
        }
        if (shape.Contains(0)) count = 0;
        long available = content.Length - headerStart - headerLength;
        long needed = count * ItemSize(dtype);
        if (needed > available)
        {
            throw Bad(source, $"truncated data: shape {ShapeText(shape)} of '{header.Descr}' needs {needed} bytes "
                + $"but only {available} follow the header");
        }
        if (needed < available)
        {
            throw Bad(source, $"{available - needed} unexpected bytes after the data of shape {ShapeText(shape)} "
                + $"'{header.Descr}'");
        }
        byte[] data = content.Slice(headerStart + (int)headerLength).ToArray();
        return new NpyArray(dtype, shape, count, data);
    }

    /// <summary>Writes a float32 array atomically.</summary>
    public static void Write(string path, ReadOnlySpan<float> data, ReadOnlySpan<int> shape) =>
        WriteBytes(path, Encode(data, shape));

    /// <summary>Writes a float64 array atomically.</summary>
    public static void Write(string path, ReadOnlySpan<double> data, ReadOnlySpan<int> shape) =>
        WriteBytes(path, Encode(data, shape));

    /// <summary>Writes an int64 array atomically.</summary>
    public static void Write(string path, ReadOnlySpan<long> data, ReadOnlySpan<int> shape) =>
        WriteBytes(path, Encode(data, shape));

    /// <summary>The .npy bytes of a float32 array.</summary>
    public static byte[] Encode(ReadOnlySpan<float> data, ReadOnlySpan<int> shape) =>
        Encode(NpyDType.Float32, MemoryMarshal.AsBytes(data), data.Length, shape);

    /// <summary>The .npy bytes of a float64 array.</summary>
    public static byte[] Encode(ReadOnlySpan<double> data, ReadOnlySpan<int> shape) =>
        Encode(NpyDType.Float64, MemoryMarshal.AsBytes(data), data.Length, shape);

    /// <summary>The .npy bytes of an int64 array.</summary>
    public static byte[] Encode(ReadOnlySpan<long> data, ReadOnlySpan<int> shape) =>
        Encode(NpyDType.Int64, MemoryMarshal.AsBytes(data), data.Length, shape);

    /// <summary>The numpy descriptor of <paramref name="dtype"/>, e.g. "&lt;f4".</summary>
    public static string Descriptor(NpyDType dtype) => dtype switch
    {
        NpyDType.Float32 => "<f4",
        NpyDType.Float64 => "<f8",
        NpyDType.Int64 => "<i8",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not an npy dtype"),
    };

    internal static int ItemSize(NpyDType dtype) => dtype == NpyDType.Float32 ? 4 : 8;

    internal static string ShapeText(IReadOnlyList<long> shape) =>
        shape.Count == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";

    internal static string ShapeText(IReadOnlyList<int> shape) => ShapeText(shape.Select(d => (long)d).ToArray());

    private static void WriteBytes(string path, byte[] bytes)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    private static byte[] Encode(NpyDType dtype, ReadOnlySpan<byte> native, int count, ReadOnlySpan<int> shape)
    {
        long product = 1;
        foreach (int d in shape)
        {
            if (d < 0)
            {
                throw new ArgumentException(
                    $"shape {ShapeText(shape.ToArray())} has a negative dimension", nameof(shape));
            }
            product = product > int.MaxValue ? product : product * d;
        }
        if (shape.Contains(0)) product = 0;
        if (product != count)
        {
            throw new ArgumentException(
                $"shape {ShapeText(shape.ToArray())} has {product} elements but the data has {count}", nameof(shape));
        }
        string dict = $"{{'descr': '{Descriptor(dtype)}', 'fortran_order': False, 'shape': "
            + $"{ShapeText(shape.ToArray())}, }}";
        // numpy pads so that magic + version + length + header is a multiple of 64 and ends with '\n'.
        // Version 1.0 has a 16-bit header length; longer headers (tens of thousands of dimensions) need 2.0.
        int prefix = 10;
        int total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        if (total - prefix > ushort.MaxValue)
        {
            prefix = 12;
            total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        }
        string header = dict.PadRight(total - prefix - 1) + "\n";
        var bytes = new byte[total + native.Length];
        Magic.CopyTo(bytes, 0);
        bytes[6] = (byte)(prefix == 10 ? 1 : 2);
        bytes[7] = 0;
        if (prefix == 10) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)header.Length);
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)header.Length);
        Encoding.ASCII.GetBytes(header, bytes.AsSpan(prefix));
        if (BitConverter.IsLittleEndian)
        {
            native.CopyTo(bytes.AsSpan(total));
        }
        else
        {
            throw new PlatformNotSupportedException("writing .npy on a big-endian machine is not implemented");
        }
        return bytes;
    }

    private static NpyDType ParseDescr(string descr, string source)
    {
        switch (descr)
        {
            case "<f4": return NpyDType.Float32;
            case "<f8": return NpyDType.Float64;
            case "<i8": return NpyDType.Int64;
        }
        if (descr.Length > 1 && descr[0] == '>' && descr[1..] is "f4" or "f8" or "i8")
        {
            throw Bad(source, $"big-endian dtype '{descr}' is not supported; save it little-endian "
                + $"(a.astype('<{descr[1..]}'))");
        }
        throw Bad(source, $"unsupported dtype '{descr}' (supported: '<f4' float32, '<f8' float64, '<i8' int64)");
    }

    private static InvalidDataException Bad(string source, string problem) =>
        new($"npy '{source}': {problem}");
}
