// MNIST digits from a folder with the four IDX files (Debian ships no MNIST package, so the folder is required).
namespace Slak.IO;

/// <summary>Loads MNIST from a folder.</summary>
public static class Mnist
{
    /// <summary>Number of classes.</summary>
    public const int ClassCount = 10;

    /// <summary>Loads the train and test splits from <paramref name="folder"/>.</summary>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or truncated.</exception>
    public static TrainTestData Load(string folder) => IdxDataset.Load(folder, ClassCount,
        "Pass the folder that holds the MNIST files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        + "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (raw, un-gzipped files work too).");
}
