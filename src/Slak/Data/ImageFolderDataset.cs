// An image-folder split as an IImageSource: every read decodes the file (SkiaSharp, to RGB), resizes the short side
// to floor(size / crop_pct) with PIL's bicubic and centre-crops size x size (the reference evaluation transform),
// giving (3, size, size) in [0, 1]; normalisation and random augmentation are the loader's. Nothing is cached, so
// memory does not grow with the data set; a file that fails to decode throws ImageFileException naming it.
using Slak.IO;

namespace Slak.Data;

/// <summary>Images decoded from files on every read.</summary>
public sealed class ImageFolderDataset : IAugmentedImageSource
{
    private readonly ImageFolderEntry[] _entries;

    /// <summary>A split of <paramref name="classCount"/> classes read at <paramref name="size"/> x
    /// <paramref name="size"/>.</summary>
    public ImageFolderDataset(IReadOnlyList<ImageFolderEntry> entries, int classCount, int size,
                              double cropPct = EvalTransform.DefaultCropPct, long maxPixels = ImageDecoder.DefaultMaxPixels,
                              TrainTransformOptions? training = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (classCount < 1) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "class count must be >= 1");
        EvalTransform.ScaleSize(size, cropPct); // validates both
        foreach (var e in entries)
            if ((uint)e.Label >= (uint)classCount)
                throw new ArgumentException($"{e.Path}: label {e.Label} outside [0, {classCount})", nameof(entries));
        _entries = entries.ToArray();
        ClassCount = classCount;
        Height = Width = size;
        CropPct = cropPct;
        MaxPixels = maxPixels;
        if (training is not null && training.Size != size)
            throw new ArgumentException($"training transform size {training.Size} differs from the data set's {size}", nameof(training));
        Training = training;
    }

    /// <summary>The training transform (RandomResizedCrop, flip, RandAugment) of <see cref="ReadAugmentedImage"/>;
    /// null: training reads are evaluation reads.</summary>
    public TrainTransformOptions? Training { get; }

    /// <inheritdoc />
    public int Count => _entries.Length;

    /// <inheritdoc />
    public int Channels => 3;

    /// <inheritdoc />
    public int Height { get; }

    /// <inheritdoc />
    public int Width { get; }

    /// <inheritdoc />
    public int ClassCount { get; }

    /// <summary>Elements per image (3 x size x size).</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>Centre-crop fraction of the resize.</summary>
    public double CropPct { get; }

    /// <summary>Pixel limit of one decoded file.</summary>
    public long MaxPixels { get; }

    /// <summary>The file of image <paramref name="index"/>.</summary>
    public string PathAt(int index) => _entries[index].Path;

    /// <inheritdoc />
    public int LabelAt(int index) => _entries[index].Label;

    /// <inheritdoc />
    public void ReadImage(int index, Span<float> destination)
    {
        var image = ImageDecoder.DecodeFile(_entries[index].Path, MaxPixels);
        EvalTransform.Apply(image, Height, CropPct, destination);
    }

    /// <inheritdoc />
    public void ReadAugmentedImage(int index, Span<float> destination, SlakRandom rng)
    {
        if (Training is null)
        {
            ReadImage(index, destination);
            return;
        }
        var image = ImageDecoder.DecodeFile(_entries[index].Path, MaxPixels);
        EvalTransform.ToChw(TrainTransform.Augment(image, Training, rng), destination);
    }

    /// <inheritdoc />
    public IImageSource Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        return new ImageFolderDataset(indices.Select(i => _entries[i]).ToArray(), ClassCount, Height, CropPct, MaxPixels, Training);
    }
}
