// What the loader, the evaluator and the trainer read images from: a fixed number of labelled images of one shape
// (C, H, W), read one at a time into a caller's buffer. In-memory sets (ImageDataset) copy; image folders decode
// and resize a file per read, so a set larger than memory streams through a bounded number of batches.
namespace Slak.Data;

/// <summary>Labelled images of one shape, read by index.</summary>
public interface IImageSource
{
    /// <summary>Number of images.</summary>
    int Count { get; }

    /// <summary>Channels.</summary>
    int Channels { get; }

    /// <summary>Height.</summary>
    int Height { get; }

    /// <summary>Width.</summary>
    int Width { get; }

    /// <summary>Number of classes.</summary>
    int ClassCount { get; }

    /// <summary>Elements per image.</summary>
    int ImageSize => Channels * Height * Width;

    /// <summary>The label of image <paramref name="index"/>.</summary>
    int LabelAt(int index);

    /// <summary>Writes image <paramref name="index"/> (C, H, W), values in [0, 1], into <paramref name="destination"/>.
    /// Thread-safe.</summary>
    /// <exception cref="Slak.IO.ImageFileException">The image's file cannot be read or decoded (sources backed by
    /// files); the loader skips and counts such images.</exception>
    void ReadImage(int index, Span<float> destination);

    /// <summary>The images at <paramref name="indices"/>, in that order.</summary>
    IImageSource Subset(IReadOnlyList<int> indices);
}

/// <summary>A source that applies its training augmentation while decoding (an image folder's RandomResizedCrop,
/// flip and RandAugment act on the full-size picture, before it is brought to the input size).</summary>
public interface IAugmentedImageSource : IImageSource
{
    /// <summary>Writes the augmented image <paramref name="index"/> (C, H, W) in [0, 1], drawing only from
    /// <paramref name="rng"/>.</summary>
    void ReadAugmentedImage(int index, Span<float> destination, SlakRandom rng);
}
