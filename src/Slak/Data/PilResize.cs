// PIL's resampling, reproduced bit for bit for 8-bit images (the reference pipeline resizes with PIL, and SkiaSharp's
// filters differ): separable convolution, horizontal pass first, then vertical; each output pixel's window is centred
// at (i + 0.5) * scale with the filter's support widened by the downscale factor (antialiasing when shrinking);
// weights normalised to sum 1, then converted to 22-bit fixed point; each pass rounds and clips to 8 bits. Bicubic
// is the Keys cubic with a = -0.5 and support 2. Facts from PIL's documented behaviour and libImaging/Resample.c.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
        int h = src.Height, inStride = src.Width * 3, outStride = outWidth * 3;
        var dst = new byte[outStride * h];
        for (int y = 0; y < h; y++)
        {
            ReadOnlySpan<byte> row = src.Rgb.AsSpan(y * inStride, inStride);
            Span<byte> outRow = dst.AsSpan(y * outStride, outStride);
            for (int x = 0; x < outWidth; x++)
            {
                int r = 1 << (PrecisionBits - 1), g = r, b = r;
                ReadOnlySpan<int> k = weights.AsSpan(x * ksize, count[x]);
                ReadOnlySpan<byte> p = row.Slice(start[x] * 3, 3 * k.Length);
                for (int t = 0, q = 0; t < k.Length; t++, q += 3)
                {
                    r += p[q] * k[t];
                    g += p[q + 1] * k[t];
                    b += p[q + 2] * k[t];
                }
                outRow[3 * x] = Clip8(r);
                outRow[3 * x + 1] = Clip8(g);
                outRow[3 * x + 2] = Clip8(b);
            }
        }
        return new DecodedImage(dst, outWidth, h);
    }

    // Integer accumulation is exact in any order, so the vertical pass adds whole input rows, eight values at a time
    // where AVX2 is there.
    private static DecodedImage Vertical(DecodedImage src, int outHeight)
    {
        var (start, count, weights, ksize) = Coefficients(src.Height, outHeight);
        int w = src.Width, stride = w * 3;
        var dst = new byte[stride * outHeight];
        var acc = new int[stride];
        for (int y = 0; y < outHeight; y++)
        {
            acc.AsSpan().Fill(1 << (PrecisionBits - 1));
            for (int t = 0; t < count[y]; t++)
                MultiplyAdd(acc, src.Rgb.AsSpan((start[y] + t) * stride, stride), weights[y * ksize + t]);
            Span<byte> row = dst.AsSpan(y * stride, stride);
            for (int c = 0; c < row.Length; c++) row[c] = Clip8(acc[c]);
        }
        return new DecodedImage(dst, w, outHeight);
    }

    /// <summary>acc[i] += src[i] * k.</summary>
    private static unsafe void MultiplyAdd(Span<int> acc, ReadOnlySpan<byte> src, int k)
    {
        int i = 0;
        if (Avx2.IsSupported)
        {
            var kv = Vector256.Create(k);
            fixed (byte* s = src)
            fixed (int* a = acc)
            {
                for (; i + 8 <= src.Length; i += 8)
                    Avx.Store(a + i, Avx2.Add(Avx.LoadVector256(a + i), Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(s + i), kv)));
            }
        }
        for (; i < src.Length; i++) acc[i] += src[i] * k;
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
