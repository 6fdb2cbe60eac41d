// The reference training transform for image folders (timm's transforms_imagenet_train as SLaK configures it):
// RandomResizedCrop (scale 0.08-1, log-uniform ratio 3/4-4/3, 10 attempts, then the centre-crop fallback; PIL
// bicubic), horizontal flip (p 0.5), RandAugment, ToTensor, normalisation, random erasing (probability p, area
// 0.02-1/3, log-uniform aspect 0.3-3.33, 10 attempts, per-pixel standard normal noise, one box). Rounding is Python's
// (half to even) where timm rounds. Every draw comes from the caller's generator.
using Slak.IO;

namespace Slak.Data;

/// <summary>Settings of the training transform.</summary>
public sealed record TrainTransformOptions
{
    /// <summary>Output side.</summary>
    public int Size { get; init; } = 224;

    /// <summary>True: RandomResizedCrop (the reference). False: the evaluation view (resize the short side to
    /// size / <see cref="CropPct"/>, centre crop), left to a padded random crop after the transform (the loader's
    /// <see cref="AugmentOptions.CropPadding"/>), as Fashion-MNIST's IDX path trains.</summary>
    public bool RandomResizedCrop { get; init; } = true;

    /// <summary>The evaluation view's crop fraction when <see cref="RandomResizedCrop"/> is off.</summary>
    public double CropPct { get; init; } = EvalTransform.DefaultCropPct;

    /// <summary>RandomResizedCrop area range (fraction of the image).</summary>
    public (double Min, double Max) Scale { get; init; } = (0.08, 1.0);

    /// <summary>RandomResizedCrop aspect-ratio range.</summary>
    public (double Min, double Max) Ratio { get; init; } = (3.0 / 4.0, 4.0 / 3.0);

    /// <summary>Horizontal flip probability.</summary>
    public double FlipProbability { get; init; } = 0.5;

    /// <summary>RandAugment (null: none).</summary>
    public RandAugment? RandAugment { get; init; }

    /// <summary>Random-erasing probability.</summary>
    public double EraseProbability { get; init; } = 0.25;

    /// <summary>Per-channel mean (RGB).</summary>
    public float[] Mean { get; init; } = AugmentOptions.ImageNetMean.ToArray();

    /// <summary>Per-channel std (RGB).</summary>
    public float[] Std { get; init; } = AugmentOptions.ImageNetStd.ToArray();

    /// <summary>RandAugment's fill colour: the mean in 8 bits, round(255 m).</summary>
    public (byte R, byte G, byte B) Fill =>
        ((byte)Math.Min(255, Math.Round(255 * Mean[0], MidpointRounding.ToEven)), (byte)Math.Min(255, Math.Round(255 * Mean[1], MidpointRounding.ToEven)),
         (byte)Math.Min(255, Math.Round(255 * Mean[2], MidpointRounding.ToEven)));
}

/// <summary>The training transform.</summary>
public static class TrainTransform
{
    private static double Uniform(SlakRandom rng, double a, double b) => a + (b - a) * rng.NextDouble();

    private static int RoundHalfEven(double v) => (int)Math.Round(v, MidpointRounding.ToEven);

    /// <summary>timm's RandomResizedCrop box for a <paramref name="width"/> x <paramref name="height"/>
    /// image.</summary>
    public static (int Top, int Left, int Height, int Width) RandomResizedCropBox(int width, int height, SlakRandom rng,
        (double Min, double Max) scale, (double Min, double Max) ratio)
    {
        ArgumentNullException.ThrowIfNull(rng);
        double area = (double)width * height;
        double logLo = Math.Log(ratio.Min), logHi = Math.Log(ratio.Max);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = Uniform(rng, scale.Min, scale.Max) * area;
            double aspect = Math.Exp(Uniform(rng, logLo, logHi));
            int w = RoundHalfEven(Math.Sqrt(target * aspect));
            int h = RoundHalfEven(Math.Sqrt(target / aspect));
            if (w <= width && h <= height && w > 0 && h > 0)
                return (rng.NextInt(height - h + 1), rng.NextInt(width - w + 1), h, w);
        }
        double inRatio = (double)width / height;
        int fw, fh;
        if (inRatio < ratio.Min) { fw = width; fh = RoundHalfEven(fw / ratio.Min); }
        else if (inRatio > ratio.Max) { fh = height; fw = RoundHalfEven(fh * ratio.Max); }
        else { fw = width; fh = height; }
        return ((height - fh) / 2, (width - fw) / 2, fh, fw);
    }

    /// <summary>torchvision F.resized_crop: crop the box, resize to size x size with PIL bicubic.</summary>
    public static DecodedImage ResizedCrop(DecodedImage img, int top, int left, int height, int width, int size) =>
        PilResize.ResizeBicubic(PilResize.Crop(img, left, top, width, height), size, size);

    /// <summary>ToTensor + Normalize: (H, W, 3) bytes to normalised (3, H, W) floats, (v / 255 - mean) / std.</summary>
    public static void Normalize(DecodedImage img, float[] mean, float[] std, Span<float> dst)
    {
        EvalTransform.ToChw(img, dst);
        int plane = img.Width * img.Height;
        for (int c = 0; c < 3; c++)
        {
            float m = mean[mean.Length == 1 ? 0 : c], s = std[std.Length == 1 ? 0 : c];
            var p = dst.Slice(c * plane, plane);
            for (int i = 0; i < p.Length; i++) p[i] = (p[i] - m) / s;
        }
    }

    /// <summary>timm RandomErasing box (count 1) for an h x w image, or null when not erased.</summary>
    public static (int Top, int Left, int Height, int Width)? EraseBox(int height, int width, double probability, SlakRandom rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (rng.NextDouble() > probability) return null;
        double area = (double)height * width;
        double logLo = Math.Log(0.3), logHi = Math.Log(1 / 0.3);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = Uniform(rng, 0.02, 1.0 / 3.0) * area;
            double aspect = Math.Exp(Uniform(rng, logLo, logHi));
            int h = RoundHalfEven(Math.Sqrt(target * aspect));
            int w = RoundHalfEven(Math.Sqrt(target / aspect));
            if (w < width && h < height)
                return (rng.NextInt(height - h + 1), rng.NextInt(width - w + 1), h, w);
        }
        return null;
    }

    /// <summary>Writes <paramref name="noise"/> (C, h, w) into the box of <paramref name="chw"/> (C, H, W).</summary>
    public static void Erase(Span<float> chw, int channels, int height, int width, (int Top, int Left, int Height, int Width) box, ReadOnlySpan<float> noise)
    {
        int k = 0;
        for (int c = 0; c < channels; c++)
            for (int y = box.Top; y < box.Top + box.Height; y++)
                for (int x = box.Left; x < box.Left + box.Width; x++)
                    chw[(c * height + y) * width + x] = noise[k++];
    }

    /// <summary>The pixel part of the transform: RandomResizedCrop to size x size (or the evaluation view), flip,
    /// RandAugment.</summary>
    public static DecodedImage Augment(DecodedImage img, TrainTransformOptions o, SlakRandom rng)
    {
        ArgumentNullException.ThrowIfNull(img);
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(rng);
        DecodedImage x;
        if (o.RandomResizedCrop)
        {
            var (top, left, h, w) = RandomResizedCropBox(img.Width, img.Height, rng, o.Scale, o.Ratio);
            x = ResizedCrop(img, top, left, h, w, o.Size);
        }
        else x = EvalTransform.CenterCrop(EvalTransform.ResizeShortSide(img, EvalTransform.ScaleSize(o.Size, o.CropPct)), o.Size);
        if (rng.NextDouble() < o.FlipProbability) x = PilOps.FlipHorizontal(x);
        if (o.RandAugment is not null) x = o.RandAugment.Apply(x, rng, o.Fill);
        return x;
    }

    /// <summary>The whole transform: <paramref name="dst"/> receives (3, size, size) normalised values.</summary>
    public static void Apply(DecodedImage img, TrainTransformOptions o, SlakRandom rng, Span<float> dst)
    {
        var x = Augment(img, o, rng);
        Normalize(x, o.Mean, o.Std, dst);
        if (EraseBox(o.Size, o.Size, o.EraseProbability, rng) is { } box)
        {
            var noise = new float[3 * box.Height * box.Width];
            for (int i = 0; i < noise.Length; i++) noise[i] = (float)rng.NextNormal();
            Erase(dst, 3, o.Size, o.Size, box, noise);
        }
    }
}
