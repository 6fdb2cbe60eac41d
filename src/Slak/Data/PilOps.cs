// The PIL image operations RandAugment applies (timm's op list), reproduced on 8-bit RGB images with PIL's own
// arithmetic: look-up-table ops (invert, posterize, solarize, solarize-add, autocontrast, equalize with PIL's
// histogram rules), ImageEnhance blends (colour, contrast, brightness, sharpness: blend(degenerate, image, factor) in
// single precision, truncated; extrapolation clipped), and affine resampling (rotate, shear, translate) with PIL's
// geometric bicubic (a = -1, pixel centres at +0.5, edge rows and columns clamped, outside samples left at the fill
// colour). Facts from PIL's documented behaviour and its libImaging sources; checked against PIL by fixtures.
using Slak.IO;

namespace Slak.Data;

/// <summary>PIL-compatible image operations on <see cref="DecodedImage"/>.</summary>
internal static class PilOps
{
    private static DecodedImage Lut(DecodedImage img, Func<int, int, byte> lut)
    {
        var table = new byte[3 * 256];
        for (int c = 0; c < 3; c++)
            for (int v = 0; v < 256; v++) table[c * 256 + v] = lut(c, v);
        var dst = new byte[img.Rgb.Length];
        ReadOnlySpan<byte> src = img.Rgb, r = table.AsSpan(0, 256), g = table.AsSpan(256, 256), b = table.AsSpan(512, 256);
        for (int i = 0; i + 2 < src.Length; i += 3)
        {
            dst[i] = r[src[i]];
            dst[i + 1] = g[src[i + 1]];
            dst[i + 2] = b[src[i + 2]];
        }
        return new DecodedImage(dst, img.Width, img.Height);
    }

    private static int[] Histogram(DecodedImage img)
    {
        var h = new int[3 * 256];
        ReadOnlySpan<byte> src = img.Rgb;
        for (int i = 0; i + 2 < src.Length; i += 3)
        {
            h[src[i]]++;
            h[256 + src[i + 1]]++;
            h[512 + src[i + 2]]++;
        }
        return h;
    }

    /// <summary>ImageOps.invert.</summary>
    public static DecodedImage Invert(DecodedImage img) => Lut(img, (_, v) => (byte)(255 - v));

    /// <summary>ImageOps.posterize: keep the <paramref name="bits"/> high bits (0-8).</summary>
    public static DecodedImage Posterize(DecodedImage img, int bits)
    {
        if (bits is < 0 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "bits must be in [0, 8]");
        int mask = ~((1 << (8 - bits)) - 1) & 0xFF;
        return Lut(img, (_, v) => (byte)(v & mask));
    }

    /// <summary>ImageOps.solarize: values at or above <paramref name="threshold"/> are inverted.</summary>
    public static DecodedImage Solarize(DecodedImage img, int threshold) => Lut(img, (_, v) => (byte)(v < threshold ? v : 255 - v));

    /// <summary>timm's solarize_add: values below <paramref name="threshold"/> get <paramref name="add"/> (capped at
    /// 255).</summary>
    public static DecodedImage SolarizeAdd(DecodedImage img, int add, int threshold = 128) =>
        Lut(img, (_, v) => (byte)(v < threshold ? Math.Min(255, v + add) : v));

    /// <summary>ImageOps.autocontrast (cutoff 0): each channel's range stretched to 0-255 (truncated).</summary>
    public static DecodedImage AutoContrast(DecodedImage img)
    {
        var h = Histogram(img);
        var lo = new int[3];
        var hi = new int[3];
        for (int c = 0; c < 3; c++)
        {
            lo[c] = 0;
            while (lo[c] < 255 && h[c * 256 + lo[c]] == 0) lo[c]++;
            hi[c] = 255;
            while (hi[c] > 0 && h[c * 256 + hi[c]] == 0) hi[c]--;
        }
        return Lut(img, (c, v) =>
        {
            if (hi[c] <= lo[c]) return (byte)v;
            double scale = 255.0 / (hi[c] - lo[c]), offset = -lo[c] * scale;
            int x = (int)(v * scale + offset);
            return (byte)Math.Clamp(x, 0, 255);
        });
    }

    /// <summary>ImageOps.equalize: PIL's per-channel cumulative-histogram table.</summary>
    public static DecodedImage Equalize(DecodedImage img)
    {
        var h = Histogram(img);
        var table = new byte[3 * 256];
        for (int c = 0; c < 3; c++)
        {
            var nonzero = Enumerable.Range(0, 256).Select(i => h[c * 256 + i]).Where(n => n != 0).ToList();
            int step = nonzero.Count <= 1 ? 0 : (nonzero.Sum() - nonzero[^1]) / 256;
            if (step == 0)
            {
                for (int i = 0; i < 256; i++) table[c * 256 + i] = (byte)i;
                continue;
            }
            int n = step / 2;
            for (int i = 0; i < 256; i++)
            {
                table[c * 256 + i] = (byte)Math.Min(255, n / step);
                n += h[c * 256 + i];
            }
        }
        return Lut(img, (c, v) => table[c * 256 + v]);
    }

    /// <summary>PIL's RGB to L: (R 19595 + G 38470 + B 7471 + 0x8000) >> 16.</summary>
    public static byte Luma(byte r, byte g, byte b) => (byte)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);

    /// <summary>Image.blend(a, b, alpha): a + alpha (b - a) in single precision, truncated; clipped when
    /// extrapolating (alpha outside [0, 1]).</summary>
    public static DecodedImage Blend(DecodedImage a, DecodedImage b, double alpha)
    {
        if (alpha == 0) return a;
        if (alpha == 1) return b;
        float f = (float)alpha;
        var dst = new byte[a.Rgb.Length];
        for (int i = 0; i < dst.Length; i++)
        {
            float v = a.Rgb[i] + f * (b.Rgb[i] - a.Rgb[i]);
            dst[i] = v <= 0f ? (byte)0 : v >= 255f ? (byte)255 : (byte)v;
        }
        return new DecodedImage(dst, a.Width, a.Height);
    }

    /// <summary>ImageEnhance.Color: blend with the image's grey version.</summary>
    public static DecodedImage Color(DecodedImage img, double factor)
    {
        var grey = new byte[img.Rgb.Length];
        for (int i = 0; i < grey.Length; i += 3)
            grey[i] = grey[i + 1] = grey[i + 2] = Luma(img.Rgb[i], img.Rgb[i + 1], img.Rgb[i + 2]);
        return Blend(new DecodedImage(grey, img.Width, img.Height), img, factor);
    }

    /// <summary>ImageEnhance.Contrast: blend with a flat image of the grey mean (rounded).</summary>
    public static DecodedImage Contrast(DecodedImage img, double factor)
    {
        long sum = 0;
        int pixels = img.Width * img.Height;
        for (int i = 0; i < img.Rgb.Length; i += 3) sum += Luma(img.Rgb[i], img.Rgb[i + 1], img.Rgb[i + 2]);
        byte mean = (byte)(int)((double)sum / pixels + 0.5);
        var flat = new byte[img.Rgb.Length];
        Array.Fill(flat, mean);
        return Blend(new DecodedImage(flat, img.Width, img.Height), img, factor);
    }

    /// <summary>ImageEnhance.Brightness: blend with black.</summary>
    public static DecodedImage Brightness(DecodedImage img, double factor) =>
        Blend(new DecodedImage(new byte[img.Rgb.Length], img.Width, img.Height), img, factor);

    /// <summary>ImageEnhance.Sharpness: blend with ImageFilter.SMOOTH (3x3 kernel 1 1 1 / 1 5 1 / 1 1 1, divided by
    /// 13, rounded; border pixels kept).</summary>
    public static DecodedImage Sharpness(DecodedImage img, double factor) => Blend(Smooth(img), img, factor);

    /// <summary>ImageFilter.SMOOTH.</summary>
    public static DecodedImage Smooth(DecodedImage img)
    {
        int w = img.Width, h = img.Height;
        var src = img.Rgb;
        var dst = (byte[])src.Clone();
        float side = 1f / 13f, centre = 5f / 13f;
        int stride = 3 * w;
        for (int y = 1; y < h - 1; y++)
        {
            // The nine products are summed in PIL's order (rows top to bottom, columns left to right).
            ReadOnlySpan<byte> up = src.AsSpan((y - 1) * stride, stride), mid = src.AsSpan(y * stride, stride), down = src.AsSpan((y + 1) * stride, stride);
            Span<byte> row = dst.AsSpan(y * stride, stride);
            for (int i = 3; i < stride - 3; i++)
            {
                float s = 0;
                s += up[i - 3] * side;
                s += up[i] * side;
                s += up[i + 3] * side;
                s += mid[i - 3] * side;
                s += mid[i] * centre;
                s += mid[i + 3] * side;
                s += down[i - 3] * side;
                s += down[i] * side;
                s += down[i + 3] * side;
                row[i] = s <= 0 ? (byte)0 : s >= 255 ? (byte)255 : (byte)(int)(s + 0.5f);
            }
        }
        return new DecodedImage(dst, w, h);
    }

    /// <summary>Image.transform(size, AFFINE, (a, b, c, d, e, f), BICUBIC, fillcolor): output pixel (x, y) samples
    /// the input at (a (x + 0.5) + b (y + 0.5) + c, d (x + 0.5) + e (y + 0.5) + f).</summary>
    public static DecodedImage Affine(DecodedImage img, double a, double b, double c, double d, double e, double f, (byte R, byte G, byte B) fill)
    {
        int w = img.Width, h = img.Height;
        var dst = new byte[img.Rgb.Length];
        ReadOnlySpan<byte> s = img.Rgb;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double xin = a * (x + 0.5) + b * (y + 0.5) + c, yin = d * (x + 0.5) + e * (y + 0.5) + f;
                int o = (y * w + x) * 3;
                if (xin < 0.0 || xin >= w || yin < 0.0 || yin >= h)
                {
                    dst[o] = fill.R;
                    dst[o + 1] = fill.G;
                    dst[o + 2] = fill.B;
                    continue;
                }
                SampleBicubic(s, w, h, xin, yin, dst.AsSpan(o, 3));
            }
        return new DecodedImage(dst, w, h);
    }

    private static double Cubic(double v1, double v2, double v3, double v4, double d)
    {
        double p1 = v2, p2 = -v1 + v3, p3 = 2 * (v1 - v2) + v3 - v4, p4 = -v1 + v2 - v3 + v4;
        return p1 + d * (p2 + d * (p3 + d * p4));
    }

    /// <summary>PIL's bicubic sample at (<paramref name="xin"/>, <paramref name="yin"/>) inside the image: four
    /// columns clamped to the image, the first row clamped and each further row outside it repeating the one
    /// before.</summary>
    private static void SampleBicubic(ReadOnlySpan<byte> s, int w, int h, double xin, double yin, Span<byte> output)
    {
        xin -= 0.5;
        yin -= 0.5;
        int x = (int)Math.Floor(xin), y = (int)Math.Floor(yin);
        double dx = xin - x, dy = yin - y;
        x--;
        y--;
        int x0 = 3 * Math.Clamp(x, 0, w - 1), x1 = 3 * Math.Clamp(x + 1, 0, w - 1), x2 = 3 * Math.Clamp(x + 2, 0, w - 1), x3 = 3 * Math.Clamp(x + 3, 0, w - 1);
        int r1 = Math.Clamp(y, 0, h - 1);
        int r2 = y + 1 >= 0 && y + 1 < h ? y + 1 : r1;
        int r3 = y + 2 >= 0 && y + 2 < h ? y + 2 : r2;
        int r4 = y + 3 >= 0 && y + 3 < h ? y + 3 : r3;
        int stride = 3 * w;
        var q1 = s.Slice(r1 * stride, stride);
        var q2 = s.Slice(r2 * stride, stride);
        var q3 = s.Slice(r3 * stride, stride);
        var q4 = s.Slice(r4 * stride, stride);
        // Cubic(v1, v2, v3, v4, 0) is v2 exactly (v2 plus a signed zero): shears and translations sample whole rows
        // (dy = 0) or whole columns (dx = 0), where one row or one tap is all the work.
        if (dy == 0)
        {
            for (int ch = 0; ch < 3; ch++)
            {
                double v = dx == 0 ? q2[x1 + ch] : Cubic(q2[x0 + ch], q2[x1 + ch], q2[x2 + ch], q2[x3 + ch], dx);
                output[ch] = v <= 0 ? (byte)0 : v >= 255 ? (byte)255 : (byte)v;
            }
            return;
        }
        if (dx == 0)
        {
            for (int ch = 0; ch < 3; ch++)
            {
                double v = Cubic(q1[x1 + ch], q2[x1 + ch], q3[x1 + ch], q4[x1 + ch], dy);
                output[ch] = v <= 0 ? (byte)0 : v >= 255 ? (byte)255 : (byte)v;
            }
            return;
        }
        for (int ch = 0; ch < 3; ch++)
        {
            double v1 = Cubic(q1[x0 + ch], q1[x1 + ch], q1[x2 + ch], q1[x3 + ch], dx);
            double v2 = Cubic(q2[x0 + ch], q2[x1 + ch], q2[x2 + ch], q2[x3 + ch], dx);
            double v3 = Cubic(q3[x0 + ch], q3[x1 + ch], q3[x2 + ch], q3[x3 + ch], dx);
            double v4 = Cubic(q4[x0 + ch], q4[x1 + ch], q4[x2 + ch], q4[x3 + ch], dx);
            double v = Cubic(v1, v2, v3, v4, dy);
            output[ch] = v <= 0 ? (byte)0 : v >= 255 ? (byte)255 : (byte)v;
        }
    }

    /// <summary>Image.rotate(degrees, BICUBIC, fillcolor) about the centre, counter-clockwise, same size.</summary>
    public static DecodedImage Rotate(DecodedImage img, double degrees, (byte R, byte G, byte B) fill)
    {
        double angle = degrees % 360.0;
        if (angle < 0) angle += 360.0;
        if (angle == 0) return img;
        double rad = -angle * Math.PI / 180.0;
        double a = Math.Round(Math.Cos(rad), 15), b = Math.Round(Math.Sin(rad), 15);
        double d = Math.Round(-Math.Sin(rad), 15), e = Math.Round(Math.Cos(rad), 15);
        double cx = img.Width / 2.0, cy = img.Height / 2.0;
        double c = a * -cx + b * -cy + cx, f = d * -cx + e * -cy + cy;
        return Affine(img, a, b, c, d, e, f, fill);
    }

    /// <summary>Horizontal mirror.</summary>
    public static DecodedImage FlipHorizontal(DecodedImage img)
    {
        int w = img.Width, stride = 3 * w;
        var dst = new byte[img.Rgb.Length];
        for (int y = 0; y < img.Height; y++)
        {
            ReadOnlySpan<byte> from = img.Rgb.AsSpan(y * stride, stride);
            Span<byte> to = dst.AsSpan(y * stride, stride);
            for (int x = 0, m = stride - 3; x < stride; x += 3, m -= 3)
            {
                to[x] = from[m];
                to[x + 1] = from[m + 1];
                to[x + 2] = from[m + 2];
            }
        }
        return new DecodedImage(dst, w, img.Height);
    }
}
