// The start-up scan of a torchvision ImageFolder layout: root/train/<class>/..., optional root/val/<class>/... and
// root/test/<class>/... (files at any depth under a class folder; names starting with '.' ignored). Class index =
// train/'s folder names sorted ordinally; val/ and test/ must have the same class folders. Every file's header is
// read (signature, codec header, pixel limit) without decoding pixels, so empty, unreadable, non-image,
// unsupported, corrupt-header and oversized files are all found before training starts; truncated or corrupt pixel
// data only shows when decoded (the loader skips and counts those). Every problem is collected, none stops the scan.
namespace Slak.IO;

/// <summary>Scans image folders.</summary>
public static class ImageFolderScanner
{
    /// <summary>Split folder names.</summary>
    public const string TrainFolder = "train", ValFolder = "val", TestFolder = "test";

    /// <summary>True when <paramref name="root"/> has a train/ folder (the image-folder layout).</summary>
    public static bool IsImageFolder(string root) => Directory.Exists(Path.Combine(root, TrainFolder));

    /// <summary>Scans <paramref name="root"/>; problems are collected in the result (see
    /// <see cref="ImageFolderIndex.Report"/>), and files with problems are left out of the splits.</summary>
    /// <exception cref="DirectoryNotFoundException">There is no train/ folder.</exception>
    /// <exception cref="InvalidDataException">train/ has no class folder.</exception>
    public static ImageFolderIndex Scan(string root, long maxPixels = ImageDecoder.DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(root);
        string trainDir = Path.Combine(root, TrainFolder);
        if (!Directory.Exists(trainDir))
            throw new DirectoryNotFoundException($"{root}: not an image folder: no {TrainFolder}/ folder (expected {TrainFolder}/<class>/<images>, optional {ValFolder}/ and {TestFolder}/)");
        var problems = new List<ImageFolderProblem>();
        var classes = ClassFolders(trainDir, problems);
        if (classes.Count == 0)
            throw new InvalidDataException($"{trainDir}: no class folders (expected {TrainFolder}/<class>/<images>)");
        var train = ScanSplit(trainDir, classes, problems, maxPixels);
        var val = ScanOther(root, ValFolder, classes, problems, maxPixels);
        var test = ScanOther(root, TestFolder, classes, problems, maxPixels);
        problems.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return new ImageFolderIndex(root, classes, train, val, test, problems);
    }

    private static List<ImageFolderEntry>? ScanOther(string root, string name, List<string> classes, List<ImageFolderProblem> problems, long maxPixels)
    {
        string dir = Path.Combine(root, name);
        if (!Directory.Exists(dir)) return null;
        var own = ClassFolders(dir, problems);
        foreach (var extra in own.Except(classes, StringComparer.Ordinal))
            problems.Add(new(Path.Combine(dir, extra), $"class folder '{extra}' is not in {TrainFolder}/ (class folders must be the same in every split)"));
        foreach (var missing in classes.Except(own, StringComparer.Ordinal))
            problems.Add(new(Path.Combine(dir, missing), $"class '{missing}' of {TrainFolder}/ has no folder in {name}/ (class folders must be the same in every split)"));
        return ScanSplit(dir, classes.Intersect(own, StringComparer.Ordinal).ToList(), problems, maxPixels, classes);
    }

    private static List<string> ClassFolders(string splitDir, List<ImageFolderProblem> problems)
    {
        foreach (var f in Directory.EnumerateFiles(splitDir).Where(f => !Path.GetFileName(f).StartsWith('.')))
            problems.Add(new(f, "a file directly in a split folder: images belong in a class folder"));
        var names = Directory.EnumerateDirectories(splitDir).Select(Path.GetFileName).OfType<string>()
            .Where(n => !n.StartsWith('.')).ToList();
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    private static List<ImageFolderEntry> ScanSplit(string splitDir, IReadOnlyList<string> present, List<ImageFolderProblem> problems,
        long maxPixels, IReadOnlyList<string>? allClasses = null)
    {
        var index = (allClasses ?? present).Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
        var candidates = new List<ImageFolderEntry>();
        foreach (var cls in present)
        {
            string dir = Path.Combine(splitDir, cls);
            List<string> files;
            try
            {
                files = Directory.EnumerateFiles(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.Hidden })
                    .Where(f => !Path.GetFileName(f).StartsWith('.')).ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problems.Add(new(dir, $"cannot be listed: {e.Message}"));
                continue;
            }
            if (files.Count == 0)
            {
                problems.Add(new(dir, "empty class folder (no image files)"));
                continue;
            }
            files.Sort(StringComparer.Ordinal);
            candidates.AddRange(files.Select(f => new ImageFolderEntry(f, index[cls])));
        }
        var verdict = new string?[candidates.Count];
        Parallel.For(0, candidates.Count, i =>
        {
            try
            {
                ImageDecoder.ReadHeader(candidates[i].Path, maxPixels);
            }
            catch (ImageFileException e)
            {
                verdict[i] = e.Reason;
            }
        });
        var usable = new List<ImageFolderEntry>(candidates.Count);
        for (int i = 0; i < candidates.Count; i++)
        {
            if (verdict[i] is string reason) problems.Add(new(candidates[i].Path, reason));
            else usable.Add(candidates[i]);
        }
        return usable;
    }
}
