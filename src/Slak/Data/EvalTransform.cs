// The reference evaluation transform (timm's transforms_factory, torchvision semantics): resize the short side to
// floor(size / crop_pct) with PIL bicubic (the long side to int(short * long / short_in)), centre crop size x size
// (offsets rounded half to even, as Python's round), then ToTensor's [0, 1] scaling to (3, size, size).
using Slak.IO;

namespace Slak.Data;

/// <summary>Resize + centre crop of a decoded image.</summary>
public static class EvalTransform
{
    /// <summary>The reference crop fraction.</summary>
    public const double DefaultCropPct = 0.875;

    /// <summary>The short side an image is resized to before the centre crop: floor(size / cropPct).</summary>
    public static int ScaleSize(int size, double cropPct)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "input size must be >= 1");
        if (!(cropPct is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(cropPct), cropPct, "crop_pct must be in (0, 1]");
        return (int)Math.Floor(size / cropPct);
    }

    /// <summary>torchvision <c>Resize(short)</c> on a PIL image: the short side becomes <paramref name="shortSide"/>
    /// and the long side <c>int(shortSide * long / short)</c>; an image whose short side already fits is
    /// kept.</summary>
    public static DecodedImage ResizeShortSide(DecodedImage image, int shortSide)
    {
        ArgumentNullException.ThrowIfNull(image);
        int w = image.Width, h = image.Height;
        if ((w <= h && w == shortSide) || (h <= w && h == shortSide)) return image;
        return w < h
            ? PilResize.ResizeBicubic(image, shortSide, (int)((long)shortSide * h / w))
            : PilResize.ResizeBicubic(image, (int)((long)shortSide * w / h), shortSide);
    }

    /// <summary>torchvision <c>CenterCrop(size)</c> (the image must be at least size x size).</summary>
    public static DecodedImage CenterCrop(DecodedImage image, int size)
    {
        ArgumentNullException.ThrowIfNull(image);
        int top = (int)Math.Round((image.Height - size) / 2.0, MidpointRounding.ToEven);
        int left = (int)Math.Round((image.Width - size) / 2.0, MidpointRounding.ToEven);
        return PilResize.Crop(image, left, top, size, size);
    }

    /// <summary>Resize, centre crop and [0, 1] scaling into <paramref name="dst"/> (3 x size x size, CHW).</summary>
    public static void Apply(DecodedImage image, int size, double cropPct, Span<float> dst)
    {
        var cropped = CenterCrop(ResizeShortSide(image, ScaleSize(size, cropPct)), size);
        ToChw(cropped, dst);
    }

    /// <summary>ToTensor: (H, W, 3) bytes to (3, H, W) floats in [0, 1].</summary>
    public static void ToChw(DecodedImage image, Span<float> dst)
    {
        ArgumentNullException.ThrowIfNull(image);
        int plane = image.Width * image.Height;
        if (dst.Length != 3 * plane) throw new ArgumentException($"destination holds {dst.Length} values, the image {3 * plane}", nameof(dst));
        var rgb = image.Rgb;
        for (int i = 0; i < plane; i++)
        {
            dst[i] = rgb[3 * i] / 255f;
            dst[plane + i] = rgb[3 * i + 1] / 255f;
            dst[2 * plane + i] = rgb[3 * i + 2] / 255f;
        }
    }
}
