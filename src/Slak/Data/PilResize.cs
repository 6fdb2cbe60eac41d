// PIL's resampling, reproduced bit for bit for 8-bit images (the reference pipeline resizes with PIL, and SkiaSharp's
// filters differ): separable convolution, horizontal pass first, then vertical; each output pixel's window is centred
// at (i + 0.5) * scale with the filter's support widened by the downscale factor (antialiasing when shrinking);
// weights normalised to sum 1, then converted to 22-bit fixed point; each pass rounds and clips to 8 bits. Bicubic
// is the Keys cubic with a = -0.5 and support 2. Facts from PIL's documented behaviour and libImaging/Resample.c.
using Slak.IO;

namespace Slak.Data;

/// <summary>PIL-compatible resizing of 8-bit RGB images.</summary>
internal static class PilResize
{
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>PIL's bicubic kernel (a = -0.5).</summary>
    public static double Bicubic(double x)
    {
        const double a = -0.5;
        if (x < 0) x = -x;
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    /// <summary>Fixed-point weights of one pass: for every output index its first input index, tap count and
    /// KernelSize weight slots.</summary>
    internal static (int[] Start, int[] Count, int[] Weights, int KernelSize) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = 2.0 * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var weights = new int[outSize * ksize];
        var w = new double[ksize];
        double ss = 1.0 / filterScale;
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale;
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            double sum = 0;
            for (int x = 0; x < xmax; x++)
            {
                w[x] = Bicubic((x + xmin - center + 0.5) * ss);
                sum += w[x];
            }
            for (int x = 0; x < xmax; x++)
            {
                double v = sum != 0 ? w[x] / sum : w[x];
                weights[o * ksize + x] = (int)(v * (1 << PrecisionBits) + (v < 0 ? -0.5 : 0.5));
            }
            start[o] = xmin;
            count[o] = xmax;
        }
        return (start, count, weights, ksize);
    }

    private static byte Clip8(int v)
    {
        int s = v >> PrecisionBits;
        return s < 0 ? (byte)0 : s > 255 ? (byte)255 : (byte)s;
    }

    /// <summary>Resizes <paramref name="image"/> to <paramref name="width"/> x <paramref name="height"/> with PIL's
    /// bicubic filter (PIL <c>Image.resize(size, BICUBIC)</c>; a pass whose size does not change is skipped).</summary>
    public static DecodedImage ResizeBicubic(DecodedImage image, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"target size must be positive, got {width}x{height}");
        if (width == image.Width && height == image.Height) return new DecodedImage((byte[])image.Rgb.Clone(), width, height);
        var current = image;
        if (width != image.Width) current = Horizontal(current, width);
        if (height != image.Height) current = Vertical(current, height);
        return current;
    }

    private static DecodedImage Horizontal(DecodedImage src, int outWidth)
    {
        var (start, count, weights, ksize) = Coefficients(src.Width, outWidth);
        int h = src.Height, inW = src.Width;
        var dst = new byte[(long)outWidth * h * 3];
        var s = src.Rgb;
        for (int y = 0; y < h; y++)
        {
            long row = (long)y * inW * 3, outRow = (long)y * outWidth * 3;
            for (int x = 0; x < outWidth; x++)
            {
                int r = 1 << (PrecisionBits - 1), g = r, b = r;
                int k0 = x * ksize;
                long p = row + (long)start[x] * 3;
                for (int t = 0; t < count[x]; t++, p += 3)
                {
                    int k = weights[k0 + t];
                    r += s[p] * k;
                    g += s[p + 1] * k;
                    b += s[p + 2] * k;
                }
                long q = outRow + (long)x * 3;
                dst[q] = Clip8(r);
                dst[q + 1] = Clip8(g);
                dst[q + 2] = Clip8(b);
            }
        }
        return new DecodedImage(dst, outWidth, h);
    }

    private static DecodedImage Vertical(DecodedImage src, int outHeight)
    {
        var (start, count, weights, ksize) = Coefficients(src.Height, outHeight);
        int w = src.Width, stride = w * 3;
        var dst = new byte[(long)w * outHeight * 3];
        var s = src.Rgb;
        for (int y = 0; y < outHeight; y++)
        {
            int k0 = y * ksize;
            for (int c = 0; c < stride; c++)
            {
                int acc = 1 << (PrecisionBits - 1);
                long p = (long)start[y] * stride + c;
                for (int t = 0; t < count[y]; t++, p += stride) acc += s[p] * weights[k0 + t];
                dst[(long)y * stride + c] = Clip8(acc);
            }
        }
        return new DecodedImage(dst, w, outHeight);
    }

    /// <summary>The <paramref name="width"/> x <paramref name="height"/> region at (<paramref name="left"/>,
    /// <paramref name="top"/>) (PIL <c>crop</c> inside the image).</summary>
    public static DecodedImage Crop(DecodedImage image, int left, int top, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (left < 0 || top < 0 || width < 1 || height < 1 || left + width > image.Width || top + height > image.Height)
            throw new ArgumentOutOfRangeException(nameof(left), $"crop ({left}, {top}, {width}x{height}) is outside the {image.Width}x{image.Height} image");
        var dst = new byte[(long)width * height * 3];
        for (int y = 0; y < height; y++)
            Array.Copy(image.Rgb, ((long)(top + y) * image.Width + left) * 3, dst, (long)y * width * 3, width * 3);
        return new DecodedImage(dst, width, height);
    }
}
