// A training set from an .npz archive (the trajectory mode of `slak train`): `images` float32 (N, C, H, W), already
// normalised, and `labels` int64 (N). The values are used as they are; the caller turns off augmentation and
// normalisation (TrainOptions.Normalize, CropPadding, HorizontalFlip). An .npz has no test split.
using Slak.IO;

namespace Slak.Data;

/// <summary>Loads image classification data from .npz files.</summary>
public static class NpzImages
{
    /// <summary>Name of the image array.</summary>
    public const string ImagesKey = "images";

    /// <summary>Name of the label array.</summary>
    public const string LabelsKey = "labels";

    /// <summary>True when <paramref name="path"/> names an .npz file (by extension).</summary>
    public static bool IsNpz(string? path) => path is not null && path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads <paramref name="path"/> into a data set of <paramref name="classCount"/> classes (null: the
    /// largest label + 1). Every label must lie in [0, classCount).</summary>
    /// <exception cref="InvalidDataException">An array is missing or has the wrong dtype, rank or length, a label
    /// is out of range, or an image value is not finite.</exception>
    public static ImageDataset Load(string path, int? classCount = null)
    {
        var arrays = Npz.Read(path);
        return FromArrays(arrays, classCount, path);
    }

    /// <summary>A data set from already-read arrays (see <see cref="Load"/>).</summary>
    public static ImageDataset FromArrays(IReadOnlyDictionary<string, NpyArray> arrays, int? classCount, string source)
    {
        ArgumentNullException.ThrowIfNull(arrays);
        if (classCount is < 1) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "class count must be >= 1");
        NpyArray Get(string key) => arrays.TryGetValue(key, out var a) ? a
            : throw new InvalidDataException($"{source}: no array '{key}' (it holds: [{string.Join(", ", arrays.Keys)}]); "
                + "expected 'images' float32 (N, C, H, W) and 'labels' int64 (N)");
        var images = Get(ImagesKey);
        var labels = Get(LabelsKey);
        if (images.DType != NpyDType.Float32)
            throw new InvalidDataException($"{source}: 'images' is {Npy.Descriptor(images.DType)}, expected float32 ('<f4'); "
                + "save images.astype(np.float32)");
        if (images.Shape.Count != 4 || images.Shape.Any(d => d < 1))
            throw new InvalidDataException($"{source}: 'images' has shape {images.ShapeText}, expected (N, C, H, W) with every size >= 1");
        if (labels.DType != NpyDType.Int64)
            throw new InvalidDataException($"{source}: 'labels' is {Npy.Descriptor(labels.DType)}, expected int64 ('<i8'); "
                + "save labels.astype(np.int64)");
        int n = images.Shape[0];
        if (labels.Shape.Count != 1 || labels.Shape[0] != n)
            throw new InvalidDataException($"{source}: 'labels' has shape {labels.ShapeText}, expected ({n},) for {n} images");
        var pixels = images.ToFloat32();
        for (int i = 0; i < pixels.Length; i++)
            if (!float.IsFinite(pixels[i]))
                throw new InvalidDataException($"{source}: image value {i} (image {i / (pixels.Length / n)}) is {pixels[i]}; images must be finite");
        var raw = labels.ToInt64();
        long max = raw.Max();
        int classes = classCount ?? (int)Math.Min(int.MaxValue, max + 1);
        var result = new int[n];
        for (int i = 0; i < n; i++)
        {
            if (raw[i] < 0 || raw[i] >= classes)
                throw new InvalidDataException($"{source}: label {i} is {raw[i]}, outside [0, {classes})"
                    + (classCount is int k ? $": the model has num_classes = {k}" : ""));
            result[i] = (int)raw[i];
        }
        return new ImageDataset(pixels, result, images.Shape[1], images.Shape[2], images.Shape[3], classes);
    }
}
