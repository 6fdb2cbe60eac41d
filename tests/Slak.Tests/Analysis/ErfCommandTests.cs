// `slak erf` end to end (issue 23 item 1): an .npy batch used as is writes erf.npy (the library's map), erf.png and
// erf.json; a small Fashion-MNIST folder (IDX files written here) at the default size of a nano preset (4x 32 = 128);
// clear errors for image folders, a --size that contradicts the .npy, and an unknown model without --size.
using System.Buffers.Binary;
using System.CommandLine;
using System.Text.Json;
using NUnit.Framework;
using Slak.Analysis;
using Slak.IO;
using Slak.Models;
using Slak.Tests.Export;

namespace Slak.Tests.Analysis;

public sealed class ErfCommandTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"slak-erf-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private (string Config, string Weights, SlakModel Model) SaveModel(ModelConfig config, ulong seed)
    {
        var model = ExportTestModels.Create(config, seed, masks: false);
        string cfg = Path.Combine(_dir, "config.json"), weights = Path.Combine(_dir, "weights.safetensors");
        config.Save(cfg);
        StateDictIO.SaveSafeTensors(model, weights);
        return (cfg, weights, model);
    }

    private static int Run(params string[] args) =>
        new Slak.Cli.Commands.ErfCommand().Build().Parse(args)
            .Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });

    [Test]
    public void NpyBatchWritesMapPngAndJson()
    {
        var (cfg, weights, model) = SaveModel(ErfMapTests.Tiny, 6101);
        int[] shape = [4, 2, 36, 36];
        var x = ExportTestModels.RandomInput(shape, 6102);
        string npy = Path.Combine(_dir, "batch.npy"), outDir = Path.Combine(_dir, "out");
        Npy.Write(npy, x, shape);
        Assert.That(Run("--model-config", cfg, "--weights", weights, "--data", npy, "--images", "3", "--out", outDir,
                        "--batch-size", "2"), Is.Zero);
        var written = Npy.Read(Path.Combine(outDir, "erf.npy"));
        Assert.That(written.GetShape(), Is.EqualTo(new[] { 36, 36 }));
        var expected = EffectiveReceptiveField.Compute(model, x.AsSpan(0, 3 * 2 * 36 * 36), [3, 2, 36, 36]);
        var map = written.ToFloat64();
        double max = expected.Map.Max();
        for (int i = 0; i < map.Length; i++)
            Assert.That(map[i], Is.EqualTo(expected.Map[i]).Within(1e-5 * max), $"pixel {i}");
        Assert.That(new FileInfo(Path.Combine(outDir, "erf.png")).Length, Is.GreaterThan(1000));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "erf.json")));
        Assert.That(json.RootElement.GetProperty("images").GetInt32(), Is.EqualTo(3));
        Assert.That(json.RootElement.GetProperty("skipped_nan").GetInt32(), Is.Zero);
        var ratios = ErfRatios.Compute(expected);
        foreach (var (t, r) in ratios)
        {
            var v = json.RootElement.GetProperty("ratios").GetProperty(t.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (r is null) Assert.That(v.ValueKind, Is.EqualTo(JsonValueKind.Null));
            else Assert.That(v.GetDouble(), Is.EqualTo(r.Value).Within(1e-12));
        }
    }

    [Test]
    public void FashionMnistFolderAtThePresetsDefaultSize()
    {
        // slak_nano trains at 32x32, so its ERF default is 128x128; the test split is enlarged 4x (112) and padded.
        var config = ModelPresets.Get("slak_nano").Config;
        var (cfg, weights, _) = SaveModel(config, 6201);
        string data = Path.Combine(_dir, "fmnist");
        WriteFashionMnist(data, 3);
        string outDir = Path.Combine(_dir, "out");
        Assert.That(Run("--model-config", cfg, "--weights", weights, "--data", data, "--images", "2", "--out", outDir), Is.Zero);
        Assert.That(Npy.Read(Path.Combine(outDir, "erf.npy")).GetShape(), Is.EqualTo(new[] { 128, 128 }));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "erf.json")));
        Assert.That(json.RootElement.GetProperty("images").GetInt32(), Is.EqualTo(2));
    }

    [Test]
    public void BadDataGetsClearErrors()
    {
        var (cfg, weights, _) = SaveModel(ErfMapTests.Tiny, 6301);
        string folder = Path.Combine(_dir, "images", "cat");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "1.png"), [0x89, 0x50]);
        var e = Assert.Throws<NotSupportedException>(() =>
            Run("--model-config", cfg, "--weights", weights, "--data", Path.Combine(_dir, "images")));
        Assert.That(e!.Message, Does.Contain("image folders: not yet"));

        string npy = Path.Combine(_dir, "b.npy");
        Npy.Write(npy, new float[2 * 32 * 32], [1, 2, 32, 32]);
        var size = Assert.Throws<ArgumentException>(() =>
            Run("--model-config", cfg, "--weights", weights, "--data", npy, "--size", "64"));
        Assert.That(size!.Message, Does.Contain("--size 64").And.Contain("32x32"));

        var oneChannel = ErfMapTests.Tiny with { InChans = 1 };
        var (cfg1, weights1, _) = SaveModel(oneChannel, 6302);
        string data = Path.Combine(_dir, "fmnist");
        WriteFashionMnist(data, 1);
        var unknown = Assert.Throws<ArgumentException>(() =>
            Run("--model-config", cfg1, "--weights", weights1, "--data", data));
        Assert.That(unknown!.Message, Does.Contain("--size is required"));
    }

    // A Fashion-MNIST folder in IDX format with n random images per split.
    private static void WriteFashionMnist(string folder, int n)
    {
        Directory.CreateDirectory(folder);
        var rng = new SlakRandom(99);
        foreach (var split in new[] { "train", "t10k" })
        {
            var images = new byte[16 + n * 28 * 28];
            BinaryPrimitives.WriteInt32BigEndian(images, Idx.ImagesMagic);
            BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(4), n);
            BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(8), 28);
            BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(12), 28);
            for (int i = 16; i < images.Length; i++) images[i] = (byte)rng.NextInt(256);
            File.WriteAllBytes(Path.Combine(folder, $"{split}-images-idx3-ubyte"), images);
            var labels = new byte[8 + n];
            BinaryPrimitives.WriteInt32BigEndian(labels, Idx.LabelsMagic);
            BinaryPrimitives.WriteInt32BigEndian(labels.AsSpan(4), n);
            for (int i = 8; i < labels.Length; i++) labels[i] = (byte)rng.NextInt(10);
            File.WriteAllBytes(Path.Combine(folder, $"{split}-labels-idx1-ubyte"), labels);
        }
    }
}
