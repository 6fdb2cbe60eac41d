// Host-side per-image augmentation (random crop with zero padding, horizontal flip), normalisation and the
// timm-style batch mixing (mixup / CutMix with label-smoothed targets). Everything draws from an explicit
// SlakRandom, so a batch is a pure function of its generator's seed.
namespace Slak.Data;

/// <summary>Augmentation and mixing routines.</summary>
public static class Augment
{
    /// <summary>Writes image <paramref name="src"/> (C, H, W) into <paramref name="dst"/>, randomly cropped (with
    /// zero padding) and flipped as <paramref name="options"/> says, then normalised.</summary>
    public static void AugmentImage(ReadOnlySpan<float> src, Span<float> dst, int c, int h, int w,
                                    AugmentOptions options, SlakRandom? rng)
    {
        ArgumentNullException.ThrowIfNull(options);
        int pad = options.CropPadding;
        if ((pad > 0 || options.HorizontalFlip || options.EraseProbability > 0) && rng is null)
            throw new ArgumentNullException(nameof(rng), "random augmentation needs a generator");
        int dy = pad > 0 ? rng!.NextInt(2 * pad + 1) - pad : 0;
        int dx = pad > 0 ? rng!.NextInt(2 * pad + 1) - pad : 0;
        bool flip = options.HorizontalFlip && rng!.NextFloat() < 0.5f;
        if (dy == 0 && dx == 0 && !flip) Normalize(src, dst, c, h * w, options);
        else ShiftFlipNormalize(src, dst, c, h, w, dy, dx, flip, options);
        if (options.EraseProbability > 0 && TrainTransform.EraseBox(h, w, options.EraseProbability, rng!) is { } box)
        {
            var noise = new float[c * box.Height * box.Width];
            for (int i = 0; i < noise.Length; i++) noise[i] = rng!.NextNormal();
            TrainTransform.Erase(dst, c, h, w, box, noise);
        }
    }

    private static void ShiftFlipNormalize(ReadOnlySpan<float> src, Span<float> dst, int c, int h, int w, int dy, int dx, bool flip,
                                           AugmentOptions options)
    {
        for (int ch = 0; ch < c; ch++)
        {
            float mean = options.Mean[options.Mean.Length == 1 ? 0 : ch];
            float inv = 1f / options.Std[options.Std.Length == 1 ? 0 : ch];
            for (int y = 0; y < h; y++)
            {
                int sy = y + dy;
                for (int x = 0; x < w; x++)
                {
                    int sx = (flip ? w - 1 - x : x) + dx;
                    float v = (uint)sy < (uint)h && (uint)sx < (uint)w ? src[(ch * h + sy) * w + sx] : 0f;
                    dst[(ch * h + y) * w + x] = (v - mean) * inv;
                }
            }
        }
    }

    /// <summary>(v - mean) * (1 / std) per channel, as <see cref="ShiftFlipNormalize"/> computes it, a vector at a
    /// time where the hardware has vectors (lane-wise the same float operations, so the same bits).</summary>
    private static void Normalize(ReadOnlySpan<float> src, Span<float> dst, int channels, int plane, AugmentOptions options)
    {
        for (int ch = 0; ch < channels; ch++)
        {
            float mean = options.Mean[options.Mean.Length == 1 ? 0 : ch];
            float inv = 1f / options.Std[options.Std.Length == 1 ? 0 : ch];
            var from = src.Slice(ch * plane, plane);
            var to = dst.Slice(ch * plane, plane);
            int i = 0;
            if (System.Numerics.Vector.IsHardwareAccelerated)
            {
                var m = new System.Numerics.Vector<float>(mean);
                var s = new System.Numerics.Vector<float>(inv);
                int n = System.Numerics.Vector<float>.Count;
                for (; i + n <= plane; i += n) ((new System.Numerics.Vector<float>(from.Slice(i)) - m) * s).CopyTo(to.Slice(i));
            }
            for (; i < plane; i++) to[i] = (from[i] - mean) * inv;
        }
    }

    /// <summary>Label-smoothed one-hot targets (N, K): 1 - s + s/K on the label, s/K elsewhere.</summary>
    public static float[] SmoothedOneHot(ReadOnlySpan<int> labels, int classes, double smoothing)
    {
        if (!(smoothing is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, "smoothing must be in [0, 1)");
        var t = new float[labels.Length * classes];
        float off = (float)(smoothing / classes), on = (float)(1 - smoothing) + off;
        for (int n = 0; n < labels.Length; n++)
        {
            t.AsSpan(n * classes, classes).Fill(off);
            t[n * classes + labels[n]] = on;
        }
        return t;
    }

    /// <summary>timm's Mixup in batch mode: mixes <paramref name="images"/> (N, C, H, W) in place with the batch
    /// reversed and returns the mixed smoothed targets (N, K) and lambda (1 when not mixed).</summary>
    public static (float[] Targets, double Lambda) MixBatch(Span<float> images, int n, int c, int h, int w,
        ReadOnlySpan<int> labels, int classes, double smoothing, MixupOptions options, SlakRandom rng)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(rng);
        if (images.Length != (long)n * c * h * w || labels.Length != n)
            throw new ArgumentException($"batch of {labels.Length} labels and {images.Length} values does not match ({n}, {c}, {h}, {w})", nameof(images));
        double lam = 1;
        bool cutmix = false;
        if (options.Enabled && rng.NextDouble() < options.Prob)
        {
            if (options.MixupAlpha > 0 && options.CutmixAlpha > 0)
            {
                cutmix = rng.NextDouble() < options.SwitchProb;
                lam = cutmix ? rng.NextBeta(options.CutmixAlpha, options.CutmixAlpha) : rng.NextBeta(options.MixupAlpha, options.MixupAlpha);
            }
            else if (options.MixupAlpha > 0) lam = rng.NextBeta(options.MixupAlpha, options.MixupAlpha);
            else { cutmix = true; lam = rng.NextBeta(options.CutmixAlpha, options.CutmixAlpha); }
        }
        int plane = c * h * w;
        if (lam < 1 && cutmix)
        {
            // timm rand_bbox + correct_lam: a box of side sqrt(1 - lam) centred uniformly, clipped to the image.
            double ratio = Math.Sqrt(1 - lam);
            int cutH = (int)(h * ratio), cutW = (int)(w * ratio);
            int cy = rng.NextInt(h), cx = rng.NextInt(w);
            int yl = Math.Clamp(cy - cutH / 2, 0, h), yh = Math.Clamp(cy + cutH / 2, 0, h);
            int xl = Math.Clamp(cx - cutW / 2, 0, w), xh = Math.Clamp(cx + cutW / 2, 0, w);
            lam = 1 - (double)(yh - yl) * (xh - xl) / (h * w);
            var source = images.ToArray();
            for (int i = 0; i < n; i++)
            {
                int j = n - 1 - i;
                for (int ch = 0; ch < c; ch++)
                    for (int y = yl; y < yh; y++)
                    {
                        int row = ch * h * w + y * w;
                        source.AsSpan(j * plane + row + xl, xh - xl).CopyTo(images[(i * plane + row + xl)..]);
                    }
            }
        }
        else if (lam < 1)
        {
            var source = images.ToArray();
            float a = (float)lam, b = (float)(1 - lam);
            for (int i = 0; i < n; i++)
            {
                int j = n - 1 - i;
                for (int k = 0; k < plane; k++) images[i * plane + k] = a * source[i * plane + k] + b * source[j * plane + k];
            }
        }
        var y1 = SmoothedOneHot(labels, classes, smoothing);
        if (lam >= 1) return (y1, 1);
        var targets = new float[y1.Length];
        float la = (float)lam, lb = (float)(1 - lam);
        for (int i = 0; i < n; i++)
        {
            int j = n - 1 - i;
            for (int k = 0; k < classes; k++) targets[i * classes + k] = la * y1[i * classes + k] + lb * y1[j * classes + k];
        }
        return (targets, lam);
    }
}
