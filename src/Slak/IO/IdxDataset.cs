// Loads an MNIST-layout folder (train-/t10k- images and labels, .gz or raw) into train and test splits; shared by
// FashionMnist and Mnist, which differ only in where the files are expected and what to install when they are not.
namespace Slak.IO;

/// <summary>Loads the four files of an MNIST-layout data set from one folder.</summary>
public static class IdxDataset
{
    /// <summary>The four file names (without ".gz"): train images, train labels, test images, test labels.
    /// </summary>
    public static readonly IReadOnlyList<string> FileNames =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    /// <summary>Loads the splits from <paramref name="folder"/>; each file may be gzip-compressed (".gz") or raw.
    /// </summary>
    /// <param name="folder">The folder holding the four files.</param>
    /// <param name="classCount">Number of classes (labels must be below it).</param>
    /// <param name="missingHint">Appended to the message when a file is missing: what to install or pass.</param>
    /// <exception cref="FileNotFoundException">A file is missing (the message says which and what to do).
    /// </exception>
    /// <exception cref="InvalidDataException">A file is malformed, truncated, or the files disagree.</exception>
    public static TrainTestData Load(string folder, int classCount, string missingHint)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(missingHint);
        string[] paths = FileNames.Select(name => Locate(folder, name, missingHint)).ToArray();
        return new TrainTestData(
            LoadSplit(paths[0], paths[1], classCount), LoadSplit(paths[2], paths[3], classCount), folder);
    }

    private static string Locate(string folder, string name, string missingHint)
    {
        string gz = Path.Combine(folder, name + ".gz");
        if (File.Exists(gz)) return gz;
        string raw = Path.Combine(folder, name);
        if (File.Exists(raw)) return raw;
        string where = Directory.Exists(folder) ? $"in '{folder}'" : $"('{folder}' does not exist)";
        throw new FileNotFoundException($"data file {name}.gz (or {name}) not found {where}. {missingHint}", gz);
    }

    private static LabeledImageSet LoadSplit(string imagesPath, string labelsPath, int classCount)
    {
        IdxArray images = Idx.ReadImages(imagesPath);
        IdxArray labels = Idx.ReadLabels(labelsPath);
        if (images.Dims[0] != labels.Dims[0])
        {
            throw new InvalidDataException(
                $"'{imagesPath}' has {images.Dims[0]} images but '{labelsPath}' has {labels.Dims[0]} labels");
        }
        int bad = Array.FindIndex(labels.Data, l => l >= classCount);
        if (bad >= 0)
        {
            throw new InvalidDataException(
                $"IDX '{labelsPath}': label {bad} is {labels.Data[bad]}, outside [0, {classCount - 1}]");
        }
        return new LabeledImageSet(images.Data, labels.Data, images.Dims[1], images.Dims[2], classCount);
    }
}
