// Loading the training data for the CLI. `--data` is either Fashion-MNIST (detected by content: the four IDX files;
// default Debian's dataset-fashion-mnist), brought to the input size the model needs (the SLaK network downsamples by
// 32, so 28x28 becomes 32x32; a 64x64 preset gets the images enlarged 2x by pixel replication to 56x56, then padded),
// or a torchvision ImageFolder layout (train/<class>/..., optional val/ and test/), scanned at start-up (every
// structural problem reported at once) and decoded per read at the input size.
using Slak.Data;
using Slak.IO;
using Slak.Models;

namespace Slak.Cli.Training;

/// <summary>The splits a run trains on.</summary>
/// <param name="Train">Training images.</param>
/// <param name="Val">The data set's own validation split (null: held out of Train by --val-split).</param>
/// <param name="Test">Test images (null: the data set has none).</param>
/// <param name="Normalization">How the images are normalised.</param>
/// <param name="Description">One line saying what was loaded.</param>
internal sealed record TrainingData(IImageSource Train, IImageSource? Val, IImageSource? Test, DataNormalization Normalization, string Description);

/// <summary>Data loading for train/eval.</summary>
internal static class DataSets
{
    /// <summary>The splits of <paramref name="folder"/> (null: Debian's Fashion-MNIST) for <paramref name="preset"/>.
    /// Image folders: structural problems throw with the full report when <paramref name="skipBadImages"/> is false,
    /// else the files are left out and the report goes to <paramref name="warn"/>.</summary>
    public static TrainingData Load(string? folder, ModelPreset preset, int inputSize, double cropPct, bool skipBadImages, Action<string> warn,
                                    string? randAugment = null, bool randomResizedCrop = true)
    {
        ArgumentNullException.ThrowIfNull(preset);
        ArgumentNullException.ThrowIfNull(warn);
        if (IsImageFolder(folder))
            return ImageFolder(folder!, inputSize > 0 ? inputSize : Math.Min(224, preset.InputSize), cropPct, skipBadImages, warn,
                RandAugment.Parse(randAugment ?? DefaultRandAugment), randomResizedCrop);
        if (folder is not null && !Directory.Exists(folder))
            throw new DirectoryNotFoundException($"--data {folder}: no such folder");
        if (folder is not null && !Slak.IO.FashionMnist.IsAvailable(folder))
            throw new IOException($"--data {folder}: neither an image folder (train/<class>/<images>, optional val/ and test/) nor Fashion-MNIST "
                + "(train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz), t10k-labels-idx1-ubyte(.gz))");
        int side = SideFor(preset);
        var (train, test) = FashionMnist(folder, side);
        string how = preset.InputSize != side
            ? $"Fashion-MNIST padded to {side}x{side} (note: preset {preset.Name} is designed for {preset.InputSize}x{preset.InputSize} inputs)"
            : side >= 2 * 28 ? $"Fashion-MNIST enlarged {side / 28}x (nearest neighbour) and padded to {side}x{side}"
            : $"Fashion-MNIST padded to {side}x{side}";
        return new TrainingData(train, null, test, DataNormalization.FashionMnist, how);
    }

    /// <summary>The reference's RandAugment (image folders' default).</summary>
    public const string DefaultRandAugment = "rand-m9-mstd0.5-inc1";

    /// <summary>The reference's random-erasing probability (image folders' default).</summary>
    public const double DefaultReprob = 0.25;

    /// <summary>True when <paramref name="folder"/> is an image folder (has train/ and is not Fashion-MNIST).</summary>
    public static bool IsImageFolder(string? folder) =>
        folder is not null && !Slak.IO.FashionMnist.IsAvailable(folder) && ImageFolderScanner.IsImageFolder(folder);

    private static TrainingData ImageFolder(string folder, int size, double cropPct, bool skip, Action<string> warn, RandAugment? randAugment,
                                            bool randomResizedCrop)
    {
        var index = ImageFolderScanner.Scan(folder);
        if (index.Problems.Count > 0)
        {
            if (!skip) throw new InvalidDataException(index.Report() + "\n(--bad-images skip leaves these files out and trains on the rest)");
            warn("warning: " + index.Report() + "\n(left out: --bad-images skip)");
        }
        if (index.Train.Count == 0) throw new InvalidDataException($"{folder}: train/ has no usable image");
        int classes = index.Classes.Count;
        IImageSource Split(IReadOnlyList<ImageFolderEntry> e) => new ImageFolderDataset(e, classes, size, cropPct);
        var training = new TrainTransformOptions { Size = size, RandAugment = randAugment, RandomResizedCrop = randomResizedCrop, CropPct = cropPct };
        IImageSource? Optional(IReadOnlyList<ImageFolderEntry>? e, string name) =>
            e is null ? null : e.Count > 0 ? Split(e) : throw new InvalidDataException($"{folder}: {name}/ has no usable image");
        var val = Optional(index.Val, ImageFolderScanner.ValFolder);
        var test = Optional(index.Test, ImageFolderScanner.TestFolder);
        string desc = $"image folder {folder}: {classes} classes, {index.Train.Count} train / "
            + (val is null ? "no val/ (validation held out of train/)" : $"{val.Count} val") + " / "
            + (test is null ? "no test/" : $"{test.Count} test") + $" images, read as 3x{size}x{size} (resize {EvalTransform.ScaleSize(size, cropPct)}, centre crop)";
        desc += $"; training: {(randomResizedCrop ? $"RandomResizedCrop {size}" : "that view")}, flip, {(randAugment is null ? "no RandAugment" : "RandAugment")}"
            + (randomResizedCrop ? "" : ", padded random crop");
        return new TrainingData(new ImageFolderDataset(index.Train, classes, size, cropPct, training: training), val, test, DataNormalization.Imagenet, desc);
    }

    /// <summary>Train and test splits of Fashion-MNIST from <paramref name="folder"/> (null: the Debian path),
    /// enlarged by the largest whole factor that fits (nearest neighbour) and zero-padded to <paramref name="size"/> x
    /// <paramref name="size"/>.</summary>
    public static (ImageDataset Train, ImageDataset Test) FashionMnist(string? folder, int size)
    {
        TrainTestData data;
        try
        {
            data = Slak.IO.FashionMnist.Load(folder);
        }
        catch (FileNotFoundException e)
        {
            throw new IOException(e.Message.Contains("dataset-fashion-mnist", StringComparison.Ordinal)
                ? e.Message : $"{e.Message} {Slak.IO.FashionMnist.InstallHint}", e);
        }
        var train = ImageDataset.FromLabeledImages(data.Train);
        var test = ImageDataset.FromLabeledImages(data.Test);
        int factor = Math.Max(1, size / Math.Max(train.Height, train.Width));
        return (train.UpsampleNearest(factor).PadTo(size, size), test.UpsampleNearest(factor).PadTo(size, size));
    }

    /// <summary>The side that a network downsampling by 32 needs for <paramref name="side"/>.</summary>
    public static int PaddedSide(int side) => (side + 31) / 32 * 32;

    /// <summary>The input side to train or evaluate a preset on Fashion-MNIST: the preset's own when it is a small
    /// one (32 or 64), else 28x28 padded to 32 (the ImageNet presets run, at a size they were not designed
    /// for).</summary>
    public static int SideFor(ModelPreset preset) =>
        preset.InputSize <= 64 ? preset.InputSize : PaddedSide(28);
}
