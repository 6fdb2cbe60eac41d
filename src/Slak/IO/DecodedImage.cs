// A decoded image as 8-bit RGB, rows top to bottom, pixels interleaved (H, W, 3): the common form every source
// format is brought to (grey, palette, alpha, 16-bit and CMYK included), with EXIF orientation already applied.
namespace Slak.IO;

/// <summary>An 8-bit RGB image (H, W, 3), row-major.</summary>
public sealed class DecodedImage
{
    /// <summary>Wraps <paramref name="rgb"/> (checks its length).</summary>
    public DecodedImage(byte[] rgb, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        if (width < 1 || height < 1) throw new ArgumentException($"image size must be positive, got {width}x{height}", nameof(width));
        if (rgb.Length != (long)width * height * 3)
            throw new ArgumentException($"{rgb.Length} bytes do not hold a {width}x{height} RGB image", nameof(rgb));
        Rgb = rgb;
        Width = width;
        Height = height;
    }

    /// <summary>Pixels (H, W, 3).</summary>
    public byte[] Rgb { get; }

    /// <summary>Width.</summary>
    public int Width { get; }

    /// <summary>Height.</summary>
    public int Height { get; }
}
