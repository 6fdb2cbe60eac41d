// Loading the training data for the CLI: Fashion-MNIST from Debian's dataset-fashion-mnist (or a folder), padded to
// the input size the model needs (the SLaK network downsamples by 32, so 28x28 becomes 32x32).
using Slak.Data;
using Slak.IO;

namespace Slak.Cli.Training;

/// <summary>Data loading for train/eval.</summary>
internal static class DataSets
{
    /// <summary>Train and test splits of Fashion-MNIST from <paramref name="folder"/> (null: the Debian path),
    /// padded to <paramref name="size"/> x <paramref name="size"/>.</summary>
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
        return (train.PadTo(size, size), test.PadTo(size, size));
    }

    /// <summary>The side that a network downsampling by 32 needs for <paramref name="side"/>.</summary>
    public static int PaddedSide(int side) => (side + 31) / 32 * 32;
}
