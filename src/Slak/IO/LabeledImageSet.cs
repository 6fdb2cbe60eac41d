// A set of single-channel 8-bit images with class labels (one split of MNIST or Fashion-MNIST).
namespace Slak.IO;

/// <summary>Images (<see cref="Count"/> x <see cref="Rows"/> x <see cref="Cols"/> bytes, row-major) and one
/// label per image.</summary>
public sealed class LabeledImageSet
{
    /// <summary>Builds a set, checking that the sizes agree and that every label is below
    /// <paramref name="classCount"/>.</summary>
    public LabeledImageSet(byte[] images, byte[] labels, int rows, int cols, int classCount)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        if (classCount is < 1 or > 256)
            throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "class count must be in [1, 256]");
        if ((long)labels.Length * rows * cols != images.Length)
        {
            throw new ArgumentException($"{images.Length} image bytes do not hold {labels.Length} images of "
                + $"{rows}x{cols}", nameof(images));
        }
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] >= classCount)
            {
                throw new ArgumentException($"label {i} is {labels[i]}, outside [0, {classCount - 1}]",
                    nameof(labels));
            }
        }
        Images = images;
        Labels = labels;
        Rows = rows;
        Cols = cols;
        ClassCount = classCount;
    }

    /// <summary>Pixels, row-major, image after image (0 = background, 255 = full intensity).</summary>
    public byte[] Images { get; }

    /// <summary>Class of each image, in [0, <see cref="ClassCount"/>).</summary>
    public byte[] Labels { get; }

    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;

    /// <summary>Image height.</summary>
    public int Rows { get; }

    /// <summary>Image width.</summary>
    public int Cols { get; }

    /// <summary>Number of classes.</summary>
    public int ClassCount { get; }

    /// <summary>The pixels scaled to [0, 1] as float32, (N, 1, Rows, Cols) row-major.</summary>
    public float[] ImagesToFloat32()
    {
        var result = new float[Images.Length];
        for (int i = 0; i < result.Length; i++) result[i] = Images[i] / 255f;
        return result;
    }
}
