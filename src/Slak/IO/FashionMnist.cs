// Fashion-MNIST (Zalando; 60,000 train + 10,000 test 28x28 grey images, 10 classes) from Debian's
// dataset-fashion-mnist package or any folder with the four IDX files.
namespace Slak.IO;

/// <summary>Loads Fashion-MNIST.</summary>
public static class FashionMnist
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the files.</summary>
    public const string DefaultFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>Number of classes.</summary>
    public const int ClassCount = 10;

    /// <summary>Class names in label order.</summary>
    public static readonly IReadOnlyList<string> ClassNames =
    [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ];

    /// <summary>What to do when the files are missing.</summary>
    public const string InstallHint =
        "Install Debian's package dataset-fashion-mnist (apt-get install dataset-fashion-mnist; it puts the files "
        + "under " + DefaultFolder + "), or pass the folder that holds train-images-idx3-ubyte.gz, "
        + "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz.";

    /// <summary>Whether the four files are present in <paramref name="folder"/> (default:
    /// <see cref="DefaultFolder"/>).</summary>
    public static bool IsAvailable(string? folder = null)
    {
        string f = folder ?? DefaultFolder;
        return IdxDataset.FileNames.All(
            n => File.Exists(Path.Combine(f, n + ".gz")) || File.Exists(Path.Combine(f, n)));
    }

    /// <summary>Loads the train (60,000) and test (10,000) splits from <paramref name="folder"/> (default:
    /// <see cref="DefaultFolder"/>).</summary>
    /// <exception cref="FileNotFoundException">A file is missing; the message says what to install.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or truncated.</exception>
    public static TrainTestData Load(string? folder = null) =>
        IdxDataset.Load(folder ?? DefaultFolder, ClassCount, InstallHint);
}
