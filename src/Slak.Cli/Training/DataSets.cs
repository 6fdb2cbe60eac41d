// Loading the training data for the CLI: Fashion-MNIST from Debian's dataset-fashion-mnist (or a folder), brought to
// the input size the model needs (the SLaK network downsamples by 32, so 28x28 becomes 32x32; a 64x64 preset gets
// the images enlarged 2x by pixel replication to 56x56, then padded).
using Slak.Data;
using Slak.IO;

namespace Slak.Cli.Training;

/// <summary>Data loading for train/eval.</summary>
internal static class DataSets
{
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
    /// one (32 or 64), else 28x28 padded to 32 (the ImageNet presets run, at a size they were not designed for).</summary>
    public static int SideFor(Slak.Models.ModelPreset preset) =>
        preset.InputSize <= 64 ? preset.InputSize : PaddedSide(28);
}
