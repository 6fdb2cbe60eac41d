// The train and test splits of an image classification data set, with the folder they were read from.
namespace Slak.IO;

/// <summary>Train and test splits loaded from <see cref="Folder"/>.</summary>
/// <param name="Train">The training split.</param>
/// <param name="Test">The test split.</param>
/// <param name="Folder">The folder the files were read from.</param>
public sealed record TrainTestData(LabeledImageSet Train, LabeledImageSet Test, string Folder);
