// An in-memory image classification set: float32 images (N, C, H, W) in [0, 1] plus integer labels. Small data
// sets (Fashion-MNIST, MNIST, test fixtures) fit in memory, so batches are gathered by index without any I/O.
using Slak.IO;

namespace Slak.Data;

/// <summary>Images (N, C, H, W) and labels held in memory.</summary>
public sealed class ImageDataset : IImageSource
{
    /// <summary>Creates a data set; checks that sizes agree and labels are in [0, classCount).</summary>
    public ImageDataset(float[] images, int[] labels, int channels, int height, int width, int classCount)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (channels < 1 || height < 1 || width < 1)
            throw new ArgumentException($"image shape must be positive, got C={channels}, H={height}, W={width}", nameof(channels));
        if (classCount < 1) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "class count must be >= 1");
        if ((long)labels.Length * channels * height * width != images.Length)
            throw new ArgumentException($"{images.Length} image values do not hold {labels.Length} images of ({channels}, {height}, {width})", nameof(images));
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classCount)
                throw new ArgumentException($"label {i} is {labels[i]}, outside [0, {classCount})", nameof(labels));
        Images = images; Labels = labels; Channels = channels; Height = height; Width = width; ClassCount = classCount;
    }

    /// <summary>Pixels (N, C, H, W), row-major.</summary>
    public float[] Images { get; }

    /// <summary>Labels (N).</summary>
    public int[] Labels { get; }

    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;

    /// <summary>Channels.</summary>
    public int Channels { get; }

    /// <summary>Height.</summary>
    public int Height { get; }

    /// <summary>Width.</summary>
    public int Width { get; }

    /// <summary>Number of classes.</summary>
    public int ClassCount { get; }

    /// <summary>Elements per image.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <inheritdoc />
    public int LabelAt(int index) => Labels[index];

    /// <inheritdoc />
    public void ReadImage(int index, Span<float> destination) =>
        Images.AsSpan(checked(index * ImageSize), ImageSize).CopyTo(destination);

    /// <inheritdoc />
    IImageSource IImageSource.Subset(IReadOnlyList<int> indices) => Select(indices);

    /// <summary>A data set over a loaded IDX split (one channel, pixels scaled to [0, 1]).</summary>
    public static ImageDataset FromLabeledImages(LabeledImageSet set, int? limit = null)
    {
        ArgumentNullException.ThrowIfNull(set);
        var all = new ImageDataset(set.ImagesToFloat32(), set.Labels.Select(b => (int)b).ToArray(), 1, set.Rows, set.Cols, set.ClassCount);
        return limit is int n ? all.Take(n) : all;
    }

    /// <summary>The first <paramref name="count"/> images (all when count >= Count).</summary>
    public ImageDataset Take(int count)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "must take at least one image");
        if (count >= Count) return this;
        return new ImageDataset(Images.AsSpan(0, count * ImageSize).ToArray(), Labels.AsSpan(0, count).ToArray(),
            Channels, Height, Width, ClassCount);
    }

    /// <summary>The images at <paramref name="indices"/>, in that order.</summary>
    public ImageDataset Select(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var images = new float[(long)indices.Count * ImageSize];
        var labels = new int[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            int src = indices[i];
            if ((uint)src >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), src, $"index {i} is outside the {Count} images");
            Images.AsSpan(src * ImageSize, ImageSize).CopyTo(images.AsSpan(i * ImageSize, ImageSize));
            labels[i] = Labels[src];
        }
        return new ImageDataset(images, labels, Channels, Height, Width, ClassCount);
    }

    /// <summary>The images enlarged <paramref name="factor"/> times in each direction by pixel replication
    /// (nearest neighbour), e.g. 28x28 to 56x56 so that a network which downsamples by 4 in its stem still sees
    /// 14x14 (16x16 after padding) stage-1 maps. No new information, but twice the spatial positions per
    /// feature.</summary>
    public ImageDataset UpsampleNearest(int factor)
    {
        if (factor < 1) throw new ArgumentOutOfRangeException(nameof(factor), factor, "upsampling factor must be >= 1");
        if (factor == 1) return this;
        int h = checked(Height * factor), w = checked(Width * factor);
        var result = new float[checked((long)Count * Channels * h * w)];
        for (long plane = 0; plane < (long)Count * Channels; plane++)
            for (int y = 0; y < h; y++)
            {
                long src = (plane * Height + y / factor) * Width, dst = (plane * h + y) * w;
                for (int x = 0; x < w; x++) result[dst + x] = Images[src + x / factor];
            }
        return new ImageDataset(result, Labels, Channels, h, w, ClassCount);
    }

    /// <summary>The images zero-padded (centred) to <paramref name="height"/> x <paramref name="width"/>, e.g.
    /// 28x28 Fashion-MNIST to the 32x32 the nano presets need (the network downsamples by 32). Padding is raw 0,
    /// the background value of these data sets, before normalisation.</summary>
    public ImageDataset PadTo(int height, int width)
    {
        if (height < Height || width < Width)
            throw new ArgumentException($"cannot pad {Height}x{Width} images to the smaller {height}x{width}", nameof(height));
        if (height == Height && width == Width) return this;
        int top = (height - Height) / 2, left = (width - Width) / 2;
        var result = new float[(long)Count * Channels * height * width];
        for (int n = 0; n < Count; n++)
            for (int c = 0; c < Channels; c++)
                for (int y = 0; y < Height; y++)
                {
                    int src = ((n * Channels + c) * Height + y) * Width;
                    int dst = ((n * Channels + c) * height + y + top) * width + left;
                    Array.Copy(Images, src, result, dst, Width);
                }
        return new ImageDataset(result, Labels, Channels, height, width, ClassCount);
    }
}
