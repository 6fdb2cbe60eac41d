// Per-image training augmentation and the normalisation applied to every image (train and test).
namespace Slak.Data;

/// <summary>Augmentation and normalisation settings.</summary>
public sealed record AugmentOptions
{
    /// <summary>Random crop with this zero padding on every side (0: no crop).</summary>
    public int CropPadding { get; init; } = 2;

    /// <summary>Random horizontal flip with probability 0.5.</summary>
    public bool HorizontalFlip { get; init; } = true;

    /// <summary>Per-channel mean subtracted after augmentation (one value broadcasts).</summary>
    public float[] Mean { get; init; } = [0.2860f];

    /// <summary>Per-channel standard deviation divided by (one value broadcasts).</summary>
    public float[] Std { get; init; } = [0.3530f];

    /// <summary>ImageNet's per-channel mean (RGB), the reference normalisation of image folders.</summary>
    public static IReadOnlyList<float> ImageNetMean { get; } = [0.485f, 0.456f, 0.406f];

    /// <summary>ImageNet's per-channel standard deviation (RGB).</summary>
    public static IReadOnlyList<float> ImageNetStd { get; } = [0.229f, 0.224f, 0.225f];

    /// <summary>These options with the normalisation <paramref name="normalization"/> names.</summary>
    public AugmentOptions WithNormalization(DataNormalization normalization) => normalization switch
    {
        DataNormalization.FashionMnist => this with { Mean = [0.2860f], Std = [0.3530f] },
        DataNormalization.Imagenet => this with { Mean = ImageNetMean.ToArray(), Std = ImageNetStd.ToArray() },
        _ => throw new ArgumentOutOfRangeException(nameof(normalization), normalization, "unknown normalisation"),
    };

    /// <summary>Random erasing after normalisation (timm, mode 'pixel', one box) with this probability (0:
    /// off).</summary>
    public double EraseProbability { get; init; }

    /// <summary>Let a source that augments while decoding (<see cref="IAugmentedImageSource"/>: an image folder's
    /// RandomResizedCrop, flip, RandAugment) do so, with a per-sample generator.</summary>
    public bool SourceAugmentation { get; init; }

    /// <summary>No augmentation, same normalisation (evaluation).</summary>
    public AugmentOptions ForEvaluation() => this with { CropPadding = 0, HorizontalFlip = false, EraseProbability = 0, SourceAugmentation = false };

    /// <summary>Throws naming a bad value.</summary>
    public void Validate(int channels)
    {
        if (!(EraseProbability is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(EraseProbability), EraseProbability, "erasing probability must be in [0, 1]");
        if (CropPadding < 0) throw new ArgumentOutOfRangeException(nameof(CropPadding), CropPadding, "crop padding must be >= 0");
        if (Mean.Length != 1 && Mean.Length != channels)
            throw new ArgumentException($"mean has {Mean.Length} values for {channels} channels", nameof(Mean));
        if (Std.Length != 1 && Std.Length != channels)
            throw new ArgumentException($"std has {Std.Length} values for {channels} channels", nameof(Std));
        if (Std.Any(s => !(s > 0))) throw new ArgumentException($"std values must be > 0, got [{string.Join(", ", Std)}]", nameof(Std));
    }
}
