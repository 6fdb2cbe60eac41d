// The SkiaSharp decoder against PIL (tools/make_image_folder.py): every committed format and pixel layout decodes
// to PIL's RGB (lossless formats exactly; JPEG and lossy WebP within stated tolerances, the two libraries' IDCT and
// upsampling differ), EXIF orientation is applied, and every malformed file fails with a message naming it.
using NUnit.Framework;
using Slak.IO;

namespace Slak.Tests.Data;

public class ImageDecoderTests
{
    // (file, max |difference| allowed, mean |difference| allowed). Lossless formats must match exactly; 16-bit
    // grey may round differently by 1 (the fixture rounds v*255/65535; measured max 1, mean 0.23). JPEG and lossy
    // WebP measured bit-exact against Debian's PIL 9.4 (both use libjpeg-turbo / libwebp); the tolerance of 2 levels
    // (mean 0.1) leaves room for other library versions without hiding a colour-conversion error.
    private static readonly object[] Cases =
    [
        new object[] { "rgb.png", 0, 0.0 },
        new object[] { "gray.png", 0, 0.0 },
        new object[] { "rgba.png", 0, 0.0 },
        new object[] { "palette.png", 0, 0.0 },
        new object[] { "gray16.png", 1, 0.5 },
        new object[] { "animated.gif", 0, 0.0 },
        new object[] { "rgb.bmp", 0, 0.0 },
        new object[] { "lossless.webp", 0, 0.0 },
        new object[] { "lossy.webp", 2, 0.1 },
        new object[] { "rgb.jpg", 2, 0.1 },
        new object[] { "gray.jpg", 2, 0.1 },
        new object[] { "cmyk.jpg", 2, 0.1 },
    ];

    [TestCaseSource(nameof(Cases))]
    public void DecodesLikePil(string file, int maxDiff, double meanDiff)
    {
        var img = ImageDecoder.DecodeFile(ImageTestData.Path("decode", file));
        var (expected, shape) = ImageTestData.ReadUInt8Npy(ImageTestData.Path("decode", file.Replace('.', '_') + ".npy"));
        Assert.That(new[] { img.Height, img.Width, 3 }, Is.EqualTo(shape), file);
        int max = 0;
        double sum = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            int d = Math.Abs(img.Rgb[i] - expected[i]);
            max = Math.Max(max, d);
            sum += d;
        }
        double mean = sum / expected.Length;
        TestContext.Out.WriteLine($"{file}: max |diff| {max}, mean {mean:F3}");
        Assert.That(max, Is.LessThanOrEqualTo(maxDiff), $"{file}: mean {mean:F3}");
        Assert.That(mean, Is.LessThanOrEqualTo(meanDiff), file);
    }

    [Test]
    public void ExifOrientationIsApplied([Range(1, 8)] int k)
    {
        var upright = ImageDecoder.DecodeFile(ImageTestData.Path("decode", "orient_1.jpg"));
        var img = ImageDecoder.DecodeFile(ImageTestData.Path("decode", $"orient_{k}.jpg"));
        // The same JPEG payload: the pixels must be orientation 1's, transformed as EXIF says (exactly) ...
        var expected = ImageDecoder.Orient(upright, k);
        Assert.That((img.Width, img.Height), Is.EqualTo((expected.Width, expected.Height)));
        Assert.That(img.Rgb, Is.EqualTo(expected.Rgb), $"orientation {k}");
        // ... and PIL's exif_transpose must agree on the geometry (within the JPEG tolerance).
        var (pil, shape) = ImageTestData.ReadUInt8Npy(ImageTestData.Path("decode", $"orient_{k}_jpg.npy"));
        Assert.That(new[] { img.Height, img.Width, 3 }, Is.EqualTo(shape));
        double mean = pil.Select((v, i) => Math.Abs(v - img.Rgb[i])).Average();
        Assert.That(mean, Is.LessThan(1.0), $"orientation {k}");
        if (k >= 5) Assert.That((img.Width, img.Height), Is.EqualTo((upright.Height, upright.Width)));
    }

    private static readonly object[] BadFiles =
    [
        new object[] { "zero_byte.jpg", "empty file (0 bytes)" },
        new object[] { "truncated.jpg", "truncated" },
        new object[] { "truncated.png", "truncated" },
        new object[] { "corrupt.png", "corrupt" },
        new object[] { "not_an_image.jpg", "not an image" },
        new object[] { "unsupported.tif", "unsupported format (TIFF)" },
        new object[] { "bomb.png", "exceeds the limit" },
    ];

    [TestCaseSource(nameof(BadFiles))]
    public void MalformedFilesFailNamingTheFile(string file, string reason)
    {
        string path = ImageTestData.Path("bad", file);
        var e = Assert.Throws<ImageFileException>(() => ImageDecoder.DecodeFile(path))!;
        Assert.That(e.Message, Does.StartWith(path + ": ").And.Contain(reason));
        Assert.That(e.Path, Is.EqualTo(path));
    }

    [Test]
    public void UnreadableFileFailsNamingIt()
    {
        string path = ImageTestData.Path("bad", "no_such_file.png");
        var e = Assert.Throws<ImageFileException>(() => ImageDecoder.DecodeFile(path))!;
        Assert.That(e.Message, Does.StartWith(path).And.Contain("cannot be read"));
    }

    [Test]
    public void PixelLimitIsConfigurable()
    {
        string path = ImageTestData.Path("decode", "rgb.png");
        Assert.That(() => ImageDecoder.DecodeFile(path, maxPixels: 100), Throws.InstanceOf<ImageFileException>().With.Message.Contains("64x43"));
        Assert.That(ImageDecoder.ReadHeader(path), Is.EqualTo((64, 43)));
    }
}
