// Image folders (issue 21 items 1, 5, 6) on the committed generated set: the scan's classes, splits and labels; a
// start-up scan that reports every structural problem at once (first 20 by path, then a count); per-read decoding at
// the input size; decode failures skipped and listed by the loader and the evaluator; a run that stops, without a
// checkpoint, when more than the allowed fraction fails; and `slak train --data <image folder>` end to end.
using System.CommandLine;
using NUnit.Framework;
using Slak.Cli.Commands;
using Slak.Data;
using Slak.IO;
using Slak.Tests.Support;
using Slak.Train;

namespace Slak.Tests.Data;

public class ImageFolderTests
{
    private string _scratch = "";

    [SetUp]
    public void SetUp() => _scratch = ImageTestData.NewScratchFolder();

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_scratch)) Directory.Delete(_scratch, recursive: true);
    }

    private static readonly string[] FmnistClasses =
        ["00_t-shirt_top", "01_trouser", "02_pullover", "03_dress", "04_coat", "05_sandal", "06_shirt", "07_sneaker", "08_bag", "09_ankle_boot"];

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyFolder(d, Path.Combine(to, Path.GetFileName(d)));
    }

    [Test]
    public void GeneratedSetScansCleanWithSortedClasses()
    {
        string root = ImageTestData.Path("fmnist64");
        Assert.That(ImageFolderScanner.IsImageFolder(root), Is.True);
        var index = ImageFolderScanner.Scan(root);
        Assert.That(index.Problems, Is.Empty, () => index.Report());
        Assert.That(index.Classes, Is.EqualTo(FmnistClasses));
        Assert.That(index.Train, Has.Count.EqualTo(240));
        Assert.That(index.Test, Has.Count.EqualTo(80));
        Assert.That(index.Val, Is.Null);
        foreach (var e in index.Train.Concat(index.Test!))
            Assert.That(Path.GetFileName(Path.GetDirectoryName(e.Path)), Is.EqualTo(FmnistClasses[e.Label]), e.Path);
        Assert.That(index.Train.Select(e => e.Path), Is.Ordered.Using((IComparer<string>)StringComparer.Ordinal));
    }

    [Test]
    public void ScanReportsEveryStructuralProblemAtOnce()
    {
        string root = Path.Combine(_scratch, "set");
        foreach (var split in new[] { "train", "val", "test" })
            foreach (var cls in new[] { "a_cat", "b_dog" })
                CopyFolder(ImageTestData.Path("fmnist64", split == "val" ? "test" : split, FmnistClasses[cls == "a_cat" ? 0 : 1]), Path.Combine(root, split, cls));
        string bad = Path.Combine(root, "train", "b_dog");
        foreach (var f in Directory.GetFiles(ImageTestData.Path("bad"))) File.Copy(f, Path.Combine(bad, Path.GetFileName(f)));
        Directory.CreateDirectory(Path.Combine(root, "train", "c_empty"));
        Directory.CreateDirectory(Path.Combine(root, "test", "c_empty"));
        File.WriteAllBytes(Path.Combine(root, "test", "c_empty", ".hidden"), [1, 2, 3]);
        CopyFolder(Path.Combine(root, "test", "a_cat"), Path.Combine(root, "test", "z_extra"));
        File.Copy(ImageTestData.Path("decode", "rgb.png"), Path.Combine(root, "val", "loose.png"));
        File.CreateSymbolicLink(Path.Combine(root, "train", "a_cat", "dangling.png"), Path.Combine(_scratch, "no-such-target.png"));

        var index = ImageFolderScanner.Scan(root);
        string Reason(params string[] parts) =>
            index.Problems.SingleOrDefault(p => p.Path == Path.Combine([root, .. parts]))?.Reason ?? "(no problem reported)";
        Assert.That(Reason("train", "b_dog", "zero_byte.jpg"), Does.Contain("empty file"));
        Assert.That(Reason("train", "b_dog", "not_an_image.jpg"), Does.Contain("not an image"));
        Assert.That(Reason("train", "b_dog", "unsupported.tif"), Does.Contain("unsupported format (TIFF)"));
        Assert.That(Reason("train", "b_dog", "bomb.png"), Does.Contain("100000x100000").And.Contain("exceeds the limit"));
        Assert.That(Reason("train", "b_dog", "corrupt.png"), Does.Contain("corrupt"));
        Assert.That(Reason("train", "a_cat", "dangling.png"), Does.Contain("cannot be read"));
        Assert.That(Reason("train", "c_empty"), Does.Contain("empty class folder"));
        Assert.That(Reason("test", "c_empty"), Does.Contain("empty class folder"));
        Assert.That(Reason("val", "c_empty"), Does.Contain("has no folder in val/"));
        Assert.That(Reason("test", "z_extra"), Does.Contain("is not in train/"));
        Assert.That(Reason("val", "loose.png"), Does.Contain("directly in a split folder"));
        Assert.That(index.Problems, Has.Count.EqualTo(11), () => index.Report());
        Assert.That(index.Problems.Select(p => p.Path), Is.Ordered.Using((IComparer<string>)StringComparer.Ordinal));
        // Truncated pixel data passes the header scan; the decoder finds it (the loader skips it).
        Assert.That(index.Train.Select(e => Path.GetFileName(e.Path)), Does.Contain("truncated.jpg").And.Contain("truncated.png"));
        Assert.That(index.Classes, Is.EqualTo(new[] { "a_cat", "b_dog", "c_empty" }));
        Assert.That(index.Test!.Select(e => e.Label).Distinct(), Is.EquivalentTo(new[] { 0, 1 }), "z_extra's files are left out");
        string report = index.Report();
        Assert.That(report, Does.StartWith($"image folder {root}: 11 problems:"));
        Assert.That(report, Does.Not.Contain("more"));
    }

    [Test]
    public void ReportListsTwentyProblemsThenACount()
    {
        string cls = Path.Combine(_scratch, "set", "train", "a");
        Directory.CreateDirectory(cls);
        for (int i = 0; i < 27; i++) File.WriteAllBytes(Path.Combine(cls, $"empty_{i:D2}.png"), []);
        var index = ImageFolderScanner.Scan(Path.Combine(_scratch, "set"));
        string report = index.Report();
        Assert.That(index.Problems, Has.Count.EqualTo(27));
        Assert.That(report.Split('\n').Count(l => l.Contains("empty file")), Is.EqualTo(20));
        Assert.That(report, Does.Contain("empty_19.png").And.Not.Contain("empty_20.png").And.EndWith("... and 7 more"));
    }

    [Test]
    public void MissingTrainFolderIsNamed()
    {
        Assert.That(() => ImageFolderScanner.Scan(_scratch), Throws.InstanceOf<DirectoryNotFoundException>().With.Message.Contains("no train/ folder"));
        Directory.CreateDirectory(Path.Combine(_scratch, "train"));
        Assert.That(() => ImageFolderScanner.Scan(_scratch), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("no class folders"));
    }

    [Test]
    public void ReadImageDecodesResizesAndCrops()
    {
        var index = ImageFolderScanner.Scan(ImageTestData.Path("fmnist64"));
        var png = index.Train.First(e => e.Path.EndsWith(".png", StringComparison.Ordinal));
        // crop_pct 1 at the stored size: no resize, no crop: the decoded bytes / 255, planar.
        var same = new ImageFolderDataset([png], 10, 64, cropPct: 1.0);
        var values = new float[same.ImageSize];
        same.ReadImage(0, values);
        var decoded = ImageDecoder.DecodeFile(png.Path);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 64 * 64; i++)
                Assert.That(values[c * 4096 + i], Is.EqualTo(decoded.Rgb[3 * i + c] / 255f), $"channel {c}, pixel {i}");
        // At 32 with crop_pct 0.875: resize to 36 and centre crop 32 (offset 2), as the eval transform.
        var small = new ImageFolderDataset([png], 10, 32);
        var v32 = new float[3 * 32 * 32];
        small.ReadImage(0, v32);
        var expected = new float[3 * 32 * 32];
        EvalTransform.ToChw(PilResize.Crop(PilResize.ResizeBicubic(decoded, 36, 36), 2, 2, 32, 32), expected);
        Assert.That(v32, Is.EqualTo(expected));
        Assert.That(small.Channels, Is.EqualTo(3));
    }

    [Test]
    public void LoaderAndEvaluatorSkipAndListUndecodableFiles()
    {
        var index = ImageFolderScanner.Scan(ImageTestData.Path("fmnist64"));
        var entries = index.Train.Take(10).ToList();
        string truncated = ImageTestData.Path("bad", "truncated.jpg");
        entries.Insert(3, new ImageFolderEntry(truncated, 2));
        var data = new ImageFolderDataset(entries, 10, 32);
        var loader = new BatchLoader(data, new BatchLoaderOptions { BatchSize = 4, Shuffle = false, DropLast = false, Prefetch = 0, Augment = new AugmentOptions().ForEvaluation() }, 0);
        var batches = loader.ToList();
        Assert.That(batches.Sum(b => b.Count), Is.EqualTo(10));
        Assert.That(batches[0].Count, Is.EqualTo(3));
        Assert.That(batches[0].Labels, Is.EqualTo(new[] { entries[0].Label, entries[1].Label, entries[2].Label }));
        Assert.That(loader.Failures.Select(f => f.Path), Is.EqualTo(new[] { truncated }));
        Assert.That(loader.Failures.Single().Message, Does.Contain("truncated"));
    }

    /// <summary>An in-memory set whose listed images fail as an undecodable file would.</summary>
    private sealed class FailingSource(ImageDataset inner, ISet<int> failing) : IImageSource
    {
        public int Count => inner.Count;
        public int Channels => inner.Channels;
        public int Height => inner.Height;
        public int Width => inner.Width;
        public int ClassCount => inner.ClassCount;
        public int LabelAt(int index) => inner.LabelAt(index);

        public void ReadImage(int index, Span<float> destination)
        {
            if (failing.Contains(index)) throw new ImageFileException($"/data/img_{index:D4}.jpg", "truncated (simulated)");
            inner.ReadImage(index, destination);
        }

        public IImageSource Subset(IReadOnlyList<int> indices) =>
            new FailingSource(inner.Select(indices), indices.Select((src, i) => (src, i)).Where(t => failing.Contains(t.src)).Select(t => t.i).ToHashSet());
    }

    [Test]
    public void RunSkipsAFewBadImagesAndStopsOnTooMany()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        var train = Slak.Tests.Train.TinyNet.Synthetic(100, seed);
        var val = Slak.Tests.Train.TinyNet.Synthetic(20, seed + 1);
        var options = new TrainOptions { Epochs = 2, BatchSize = 10, Lr = 1e-2, Seed = seed, Sparse = false, MaxBadImageFraction = 0.02 };
        var log = new List<string>();
        var ok = new Trainer(Slak.Tests.Train.TinyNet.Make(seed), new FailingSource(train, new HashSet<int> { 5, 50 }), val, null, options, Path.Combine(_scratch, "ok"));
        ok.Log += log.Add;
        var r = ok.Run();
        Assert.That(r.Completed, Is.True, r.Message);
        Assert.That(r.Last!.TestTop1, Is.Null, "no test split: nothing scored");
        Assert.That(log.Where(l => l.Contains("2 training images could not be read and were skipped")).ToList(), Has.Count.EqualTo(2), string.Join("\n", log));
        Assert.That(log.First(l => l.Contains("skipped")), Does.Contain("/data/img_0005.jpg").And.Contain("/data/img_0050.jpg"));

        string stopFolder = Path.Combine(_scratch, "stop");
        var bad = new Trainer(Slak.Tests.Train.TinyNet.Make(seed), new FailingSource(train, new HashSet<int> { 1, 2, 3 }), val, null, options, stopFolder);
        var rs = bad.Run();
        Assert.That(rs.Completed, Is.False);
        Assert.That(rs.Message, Does.Contain("3 training images of 100").And.Contain("more than the allowed fraction 0.02").And.Contain("/data/img_0002.jpg"));
        Assert.That(Directory.Exists(Path.Combine(stopFolder, "last")), Is.False, "no checkpoint of the failed epoch");
    }

    private static (int Rc, string Out) RunCli(params string[] args)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        Console.SetOut(output);
        Console.SetError(errors);
        int rc;
        try
        {
            rc = new TrainCommand().Build().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (InvalidDataException e)
        {
            rc = 1;
            errors.WriteLine(e.Message);
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
        return (rc, output + "\n" + errors);
    }

    [Test]
    public void SlakTrainOnTheGeneratedImageFolderEndToEnd()
    {
        string run = Path.Combine(_scratch, "run");
        var (rc, text) = RunCli("--data", ImageTestData.Path("fmnist64"), "--epochs", "1", "--batch-size", "16", "--limit", "48",
            "--device", "cpu", "--out", run, "--log-every", "0");
        TestContext.Out.WriteLine(text);
        Assert.That(rc, Is.Zero, text);
        Assert.That(text, Does.Contain("10 classes, 240 train / no val/").And.Contain("48 train / 24 validation / 80 test images"));
        Assert.That(text, Does.Match(@"test accuracy: \d+\.\d\d% top-1, \d+\.\d\d% top-5"));
        var line = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Single();
        Assert.That(line, Does.Contain("\"val_top1\"").And.Contain("\"test_top1\""));
        Assert.That(File.Exists(Path.Combine(run, "best", "model.safetensors")), Is.True);
        Assert.That(File.ReadAllText(Path.Combine(run, "options.json")), Does.Contain("\"normalization\": \"imagenet\""));
    }

    [Test]
    public void SlakTrainRefusesABadFolderListingEveryProblem()
    {
        string root = Path.Combine(_scratch, "set");
        CopyFolder(ImageTestData.Path("fmnist64", "test", FmnistClasses[0]), Path.Combine(root, "train", "a"));
        CopyFolder(ImageTestData.Path("fmnist64", "test", FmnistClasses[1]), Path.Combine(root, "train", "b"));
        File.Copy(ImageTestData.Path("bad", "zero_byte.jpg"), Path.Combine(root, "train", "b", "zero_byte.jpg"));
        File.Copy(ImageTestData.Path("bad", "bomb.png"), Path.Combine(root, "train", "a", "bomb.png"));
        var (rc, text) = RunCli("--data", root, "--epochs", "1", "--device", "cpu", "--out", Path.Combine(_scratch, "run"));
        Assert.That(rc, Is.Not.Zero);
        Assert.That(text, Does.Contain("2 problems").And.Contain("zero_byte.jpg: empty file").And.Contain("bomb.png: 100000x100000").And.Contain("--bad-images skip"));
        Assert.That(Directory.Exists(Path.Combine(_scratch, "run")), Is.False);
    }
}
