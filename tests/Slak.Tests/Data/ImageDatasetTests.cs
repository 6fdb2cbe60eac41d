// Geometry of the data pipeline: nearest-neighbour enlargement and centred zero padding against direct index
// formulas, their composition for the 64x64 preset, the input side chosen per preset, and bad factors/sizes.
using NUnit.Framework;
using Slak.Cli.Training;
using Slak.Data;
using Slak.Models;
using Slak.Tests.Support;

namespace Slak.Tests.Data;

public class ImageDatasetTests
{
    private static ImageDataset Random(int n, int c, int h, int w, int seed)
    {
        var rng = new Random(seed);
        var images = new float[n * c * h * w];
        for (int i = 0; i < images.Length; i++) images[i] = (float)rng.NextDouble() + 0.01f;
        return new ImageDataset(images, Enumerable.Range(0, n).Select(i => i % 3).ToArray(), c, h, w, 3);
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void UpsampleNearestReplicatesEachPixel(int factor)
    {
        int seed = TestRandom.NewSeed();
        var d = Random(3, 2, 5, 7, seed);
        var u = d.UpsampleNearest(factor);
        Assert.That((u.Height, u.Width, u.Channels, u.Count), Is.EqualTo((5 * factor, 7 * factor, 2, 3)));
        Assert.That(u.Labels, Is.EqualTo(d.Labels));
        for (int n = 0; n < 3; n++)
            for (int c = 0; c < 2; c++)
                for (int y = 0; y < u.Height; y++)
                    for (int x = 0; x < u.Width; x++)
                        Assert.That(u.Images[((n * 2 + c) * u.Height + y) * u.Width + x],
                            Is.EqualTo(d.Images[((n * 2 + c) * 5 + y / factor) * 7 + x / factor]),
                            $"({n},{c},{y},{x}) factor {factor}, seed {seed}");
    }

    [Test]
    public void FashionMnistGeometryFor64IsEnlargeThenPad()
    {
        int seed = TestRandom.NewSeed();
        var d = Random(2, 1, 28, 28, seed);
        var p = d.UpsampleNearest(2).PadTo(64, 64);
        Assert.That((p.Height, p.Width), Is.EqualTo((64, 64)));
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++)
            {
                int sy = y - 4, sx = x - 4;
                float expected = sy is >= 0 and < 56 && sx is >= 0 and < 56 ? d.Images[(28 + sy / 2) * 28 + sx / 2] : 0f;
                Assert.That(p.Images[(64 * 64) + y * 64 + x], Is.EqualTo(expected), $"image 1 ({y},{x}), seed {seed}");
            }
    }

    [Test]
    public void InputSideFollowsThePreset()
    {
        Assert.That(DataSets.SideFor(ModelPresets.Get("slak_nano")), Is.EqualTo(32));
        Assert.That(DataSets.SideFor(ModelPresets.Get("slak_nano64")), Is.EqualTo(64));
        Assert.That(DataSets.SideFor(ModelPresets.Get("slak_tiny")), Is.EqualTo(32), "ImageNet presets run on 28 padded to 32");
    }

    [Test]
    public void BadFactorsAndSizesAreRejectedByName()
    {
        var d = Random(1, 1, 4, 4, 1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => d.UpsampleNearest(0));
        Assert.That(e!.ParamName, Is.EqualTo("factor"));
        var a = Assert.Throws<ArgumentException>(() => d.UpsampleNearest(2).PadTo(6, 6));
        Assert.That(a!.Message, Does.Contain("8x8").And.Contain("6x6"));
    }
}
