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
