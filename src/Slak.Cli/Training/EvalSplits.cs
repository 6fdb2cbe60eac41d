// The split that `slak eval` scores. Fashion-MNIST: train or test (as before), or val, the stratified hold-out of the
// training set that `slak train --val-split` makes (same fixed split seed, so the same images). Image folders
// (train/<class>/..., optional val/ and test/): the split's images read with the evaluation transform (resize the short
// side to size / crop_pct, bicubic, centre crop) and ImageNet normalisation, as training evaluates them; val is val/
// when present, else the hold-out of train/. A structural problem of the folder is an error listing every problem.
using System.Globalization;
using Slak.Data;
using Slak.IO;
using Slak.Models;

namespace Slak.Cli.Training;

/// <summary>The images one `slak eval` scores.</summary>
/// <param name="Images">The split's images.</param>
/// <param name="Normalization">How they are normalised (as the model was trained).</param>
/// <param name="Description">What was read, for the output line.</param>
internal sealed record EvalSplit(IImageSource Images, DataNormalization Normalization, string Description);

/// <summary>Loads the split `slak eval` scores.</summary>
internal static class EvalSplits
{
    /// <summary>The <paramref name="split"/> (train, val or test) of <paramref name="folder"/> (null: Debian's
    /// Fashion-MNIST). <paramref name="side"/>: the input side, null for the default (Fashion-MNIST: the run's preset's
    /// or 32; image folders: the run's --input-size, else its preset's at most 224, else the preset the config matches,
    /// else 224). <paramref name="run"/>: the run's saved options, when evaluating a run folder.</summary>
    public static EvalSplit Load(string? folder, string split, int? side, Slak.Train.TrainOptions? run, ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(split);
        ArgumentNullException.ThrowIfNull(config);
        double valFraction = run?.ValSplit is > 0 and < 1 ? run.ValSplit : new Slak.Train.TrainOptions().ValSplit;
        if (DataSets.IsImageFolder(folder))
            return ImageFolder(folder!, split, side ?? ImageFolderSide(run, config), run?.CropPct ?? new Slak.Train.TrainOptions().CropPct,
                valFraction, config);
        int s = side ?? (run is not null ? DataSets.SideFor(ModelPresets.Get(run.Preset)) : DataSets.PaddedSide(28));
        if (s < 28) throw new ArgumentOutOfRangeException("--input-size", s, "--input-size must be >= 28 (the images are 28x28)");
        if (config.InChans != 1)
            throw new ArgumentException($"Fashion-MNIST images have 1 channel but the model expects in_chans={config.InChans}", "--data");
        var (train, test) = DataSets.FashionMnist(folder, s);
        IImageSource images = split switch
        {
            "train" => train,
            "test" => test,
            "val" => ValidationSplit.Split(train, valFraction).Val,
            _ => throw new ArgumentOutOfRangeException(nameof(split), split, "the split must be train, val or test"),
        };
        return new EvalSplit(images, DataNormalization.FashionMnist, $"Fashion-MNIST {split} at {s}x{s}");
    }

    private static int ImageFolderSide(Slak.Train.TrainOptions? run, ModelConfig config)
    {
        if (run is not null)
            return run.InputSize > 0 ? run.InputSize : Math.Min(224, ModelPresets.Get(run.Preset).InputSize);
        return Math.Min(224, Slak.Analysis.ErfInputSize.MatchPreset(config)?.InputSize ?? 224);
    }

    private static EvalSplit ImageFolder(string folder, string split, int side, double cropPct, double valFraction, ModelConfig config)
    {
        if (side < 1) throw new ArgumentOutOfRangeException("--input-size", side, "--input-size must be >= 1");
        var index = ImageFolderScanner.Scan(folder);
        if (index.Problems.Count > 0) throw new InvalidDataException(index.Report());
        int classes = index.Classes.Count;
        if (config.InChans != 3)
            throw new ArgumentException($"image folders are read as RGB (3 channels) but the model expects in_chans={config.InChans}", "--data");
        if (config.NumClasses != classes)
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{folder} has {classes} classes but the model has num_classes={config.NumClasses}"), "--data");
        IImageSource Read(IReadOnlyList<ImageFolderEntry> entries, string name) => entries.Count > 0
            ? new ImageFolderDataset(entries, classes, side, cropPct)
            : throw new InvalidDataException($"{folder}: {name}/ has no usable image");
        IImageSource images = split switch
        {
            "train" => Read(index.Train, ImageFolderScanner.TrainFolder),
            "test" => Read(index.Test ?? throw new InvalidDataException($"{folder} has no test/ folder"), ImageFolderScanner.TestFolder),
            "val" => index.Val is not null ? Read(index.Val, ImageFolderScanner.ValFolder)
                : ValidationSplit.Split(Read(index.Train, ImageFolderScanner.TrainFolder), valFraction).Val,
            _ => throw new ArgumentOutOfRangeException(nameof(split), split, "the split must be train, val or test"),
        };
        string which = split == "val" && index.Val is null
            ? string.Create(CultureInfo.InvariantCulture, $"val (held out of train/, fraction {valFraction})") : $"{split}/";
        return new EvalSplit(images, DataNormalization.Imagenet, string.Create(CultureInfo.InvariantCulture,
            $"image folder {folder} {which}, {classes} classes, read as 3x{side}x{side} (resize {EvalTransform.ScaleSize(side, cropPct)}, centre crop)"));
    }
}
