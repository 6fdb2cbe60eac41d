// Decodes JPEG, PNG, WebP, BMP and GIF (first frame) through SkiaSharp's codecs into 8-bit RGB (DecodedImage): grey,
// palette, 16-bit and CMYK data are converted by the codec, alpha is dropped without compositing (as PIL's
// convert('RGB') and torchvision's ImageFolder loader do), and the EXIF orientation is applied here (the codec only
// reports it). Anything short of a complete decode is a failure naming the file: an empty or unreadable file, a
// format we do not read, a header the codec rejects, a pixel count above the limit (checked from the header, before
// any pixel memory is taken: decompression bombs), and a partial image (SkiaSharp's IncompleteInput for truncated
// files, ErrorInInput for corrupt data).
using System.Runtime.InteropServices;
using SkiaSharp;

namespace Slak.IO;

/// <summary>Image decoding.</summary>
public static class ImageDecoder
{
    /// <summary>Default pixel limit: PIL's decompression-bomb error threshold (2 x 89,478,485 pixels).</summary>
    public const long DefaultMaxPixels = 2L * 89_478_485;

    /// <summary>Decodes the file at <paramref name="path"/>.</summary>
    /// <exception cref="ImageFileException">The file cannot be read or decoded completely.</exception>
    public static DecodedImage DecodeFile(string path, long maxPixels = DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageFileException(path, $"cannot be read: {e.Message}", e);
        }
        return Decode(bytes, path, maxPixels);
    }

    /// <summary>Decodes <paramref name="bytes"/> (a whole file; <paramref name="name"/> names it in
    /// messages).</summary>
    /// <exception cref="ImageFileException">The bytes are not a complete image we decode.</exception>
    public static DecodedImage Decode(byte[] bytes, string name, long maxPixels = DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(name);
        if (ImageFormat.Problem(bytes.AsSpan(0, Math.Min(bytes.Length, ImageFormat.SignatureLength))) is string problem)
            throw new ImageFileException(name, problem);
        using var stream = new SKMemoryStream(bytes);
        using var codec = SKCodec.Create(stream, out var created);
        if (codec is null) throw new ImageFileException(name, $"corrupt image: the decoder rejects its header ({created})");
        var info = codec.Info;
        CheckSize(name, info.Width, info.Height, maxPixels);
        var rgba = new SKImageInfo(info.Width, info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var pixels = new byte[checked((long)info.Width * info.Height * 4)];
        var handle = GCHandle.Alloc(pixels, GCHandleType.Pinned);
        SKCodecResult result;
        try
        {
            result = codec.GetPixels(rgba, handle.AddrOfPinnedObject());
        }
        finally
        {
            handle.Free();
        }
        if (result != SKCodecResult.Success)
        {
            string why = result switch
            {
                SKCodecResult.IncompleteInput => "truncated: the data ends before the image is complete (IncompleteInput)",
                SKCodecResult.ErrorInInput => "corrupt image data (ErrorInInput)",
                _ => $"cannot be decoded ({result})",
            };
            throw new ImageFileException(name, why);
        }
        return Orient(DropAlpha(pixels, info.Width, info.Height), (int)codec.EncodedOrigin);
    }

    /// <summary>Throws when a <paramref name="width"/> x <paramref name="height"/> image exceeds the pixel
    /// limit.</summary>
    public static void CheckSize(string name, int width, int height, long maxPixels)
    {
        if (width < 1 || height < 1) throw new ImageFileException(name, $"corrupt image: size {width}x{height}");
        if ((long)width * height > maxPixels)
            throw new ImageFileException(name, FormattableString.Invariant(
                $"{width}x{height} = {(long)width * height:N0} pixels exceeds the limit of {maxPixels:N0} (a decompression bomb, or raise the limit)"));
    }

    /// <summary>Reads only the header of <paramref name="path"/>: its format problem, or the codec's verdict and the
    /// size limit (what the start-up scan checks without decoding pixels).</summary>
    /// <exception cref="ImageFileException">The file is empty, unreadable, not a supported image, its header is
    /// rejected, or it is too large.</exception>
    public static (int Width, int Height) ReadHeader(string path, long maxPixels = DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            using var file = File.OpenRead(path);
            var head = new byte[ImageFormat.SignatureLength];
            int n = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            if (ImageFormat.Problem(head.AsSpan(0, n)) is string problem) throw new ImageFileException(path, problem);
            file.Position = 0;
            using var stream = new SKManagedStream(file);
            using var codec = SKCodec.Create(stream, out var created);
            if (codec is null) throw new ImageFileException(path, $"corrupt image: the decoder rejects its header ({created})");
            var info = codec.Info;
            CheckSize(path, info.Width, info.Height, maxPixels);
            return (info.Width, info.Height);
        }
        catch (Exception e) when (e is IOException and not ImageFileException or UnauthorizedAccessException)
        {
            throw new ImageFileException(path, $"cannot be read: {e.Message}", e);
        }
    }

    private static DecodedImage DropAlpha(byte[] rgba, int width, int height)
    {
        var rgb = new byte[(long)width * height * 3];
        for (long p = 0, q = 0; q < rgb.Length; p += 4, q += 3)
        {
            rgb[q] = rgba[p];
            rgb[q + 1] = rgba[p + 1];
            rgb[q + 2] = rgba[p + 2];
        }
        return new DecodedImage(rgb, width, height);
    }

    /// <summary>Applies EXIF orientation <paramref name="origin"/> (1-8; 1: as stored) so that the result is the
    /// image as it is meant to be shown: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
    /// 7 transverse, 8 rotate 90 counter-clockwise.</summary>
    public static DecodedImage Orient(DecodedImage image, int origin)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (origin is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(origin), origin, "EXIF orientation must be in 1..8");
        if (origin == 1) return image;
        int w = image.Width, h = image.Height;
        bool swap = origin >= 5;
        int ow = swap ? h : w, oh = swap ? w : h;
        var src = image.Rgb;
        var dst = new byte[src.Length];
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
            {
                (int sx, int sy) = origin switch
                {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (y, h - 1 - x),
                    7 => (w - 1 - y, h - 1 - x),
                    _ => (w - 1 - y, x),
                };
                long s = ((long)sy * w + sx) * 3, d = ((long)y * ow + x) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        return new DecodedImage(dst, ow, oh);
    }
}
