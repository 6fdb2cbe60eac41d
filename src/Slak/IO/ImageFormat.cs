// Recognises an image file's format from its first bytes (never from its name): the five formats we decode and the
// common ones we do not, so that a TIFF gets "unsupported format (TIFF)" and a text file "not an image".
namespace Slak.IO;

/// <summary>Image formats by signature.</summary>
public static class ImageFormat
{
    /// <summary>Bytes <see cref="Sniff"/> needs (fewer is fine for a short file).</summary>
    public const int SignatureLength = 16;

    /// <summary>The formats decoded (through SkiaSharp).</summary>
    public static readonly IReadOnlyList<string> Supported = ["JPEG", "PNG", "WebP", "BMP", "GIF"];

    /// <summary>The format named by <paramref name="head"/> (the first bytes of a file): one of
    /// <see cref="Supported"/>, the name of a known format we do not read (TIFF, ICO, HEIF/AVIF, JPEG XL, PNM,
    /// JPEG 2000, PSD, WBMP-like data is not recognised), or null when it is no known image format.</summary>
    public static string? Sniff(ReadOnlySpan<byte> head)
    {
        static bool At(ReadOnlySpan<byte> h, int offset, ReadOnlySpan<byte> sig) =>
            h.Length >= offset + sig.Length && h.Slice(offset, sig.Length).SequenceEqual(sig);
        if (At(head, 0, [0xFF, 0xD8, 0xFF])) return "JPEG";
        if (At(head, 0, [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A])) return "PNG";
        if (At(head, 0, "RIFF"u8) && At(head, 8, "WEBP"u8)) return "WebP";
        if (At(head, 0, "GIF87a"u8) || At(head, 0, "GIF89a"u8)) return "GIF";
        if (At(head, 0, "BM"u8) && head.Length >= 14) return "BMP";
        if (At(head, 0, "II*\0"u8) || At(head, 0, "MM\0*"u8)) return "TIFF";
        if (At(head, 0, [0, 0, 1, 0]) || At(head, 0, [0, 0, 2, 0])) return "ICO";
        if (At(head, 4, "ftyp"u8)) return At(head, 8, "avif"u8) || At(head, 8, "avis"u8) ? "AVIF" : "HEIF/ISO media";
        if (At(head, 0, [0xFF, 0x0A]) || At(head, 4, "JXL "u8)) return "JPEG XL";
        if (At(head, 4, "jP  "u8) || At(head, 0, [0xFF, 0x4F, 0xFF, 0x51])) return "JPEG 2000";
        if (At(head, 0, "8BPS"u8)) return "PSD";
        if (head.Length >= 3 && head[0] == 'P' && head[1] >= '1' && head[1] <= '7' && (head[2] is (byte)'\n' or (byte)' ' or (byte)'\r' or (byte)'\t'))
            return "PNM";
        return null;
    }

    /// <summary>True for the formats in <see cref="Supported"/>.</summary>
    public static bool IsSupported(string? format) => format is not null && Supported.Contains(format);

    /// <summary>The reason a file with first bytes <paramref name="head"/> cannot be decoded, or null when its
    /// format is supported.</summary>
    public static string? Problem(ReadOnlySpan<byte> head)
    {
        if (head.Length == 0) return "empty file (0 bytes)";
        string? format = Sniff(head);
        if (IsSupported(format)) return null;
        if (format is not null) return $"unsupported format ({format}); supported: {string.Join(", ", Supported)}";
        int n = Math.Min(head.Length, 8);
        return $"not an image: no JPEG, PNG, WebP, BMP or GIF signature (first bytes {Convert.ToHexString(head[..n]).ToLowerInvariant()})";
    }
}
