// The image-folder training crop `--train-crop pad`: the transform gives the evaluation view (short side resized to
// size / crop_pct, centre crop), flipped at the flip rate, and leaves the random shift to the loader's padded crop,
// exactly as Fashion-MNIST's IDX path trains; `rrc` (the default) keeps RandomResizedCrop. Seed printed.
using NUnit.Framework;
using Slak.Data;
using Slak.IO;
using Slak.Tests.Support;

namespace Slak.Tests.Data;

public class TrainCropTests
{
    private static DecodedImage Gradient(int width, int height, ulong seed)
    {
        var rng = new SlakRandom(seed);
        var rgb = new byte[width * height * 3];
        for (int i = 0; i < rgb.Length; i++) rgb[i] = (byte)rng.NextInt(256);
        return new DecodedImage(rgb, width, height);
    }

    [Test]
    public void PadCropTrainsOnTheEvaluationViewFlippedAtTheFlipRate()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        TestContext.Progress.WriteLine($"TrainCropTests seed {seed}");
        var image = Gradient(61, 47, seed);
        var view = EvalTransform.CenterCrop(EvalTransform.ResizeShortSide(image, EvalTransform.ScaleSize(32, 0.875)), 32);
        var rng = new SlakRandom(seed);

        var kept = TrainTransform.Augment(image, new TrainTransformOptions { Size = 32, RandomResizedCrop = false, FlipProbability = 0 }, rng);
        Assert.That(kept.Rgb, Is.EqualTo(view.Rgb), $"seed {seed}");
        var flipped = TrainTransform.Augment(image, new TrainTransformOptions { Size = 32, RandomResizedCrop = false, FlipProbability = 1 }, rng);
        Assert.That(flipped.Rgb, Is.EqualTo(PilOps.FlipHorizontal(view).Rgb), $"seed {seed}");

        // The default is RandomResizedCrop: over a few draws the crop is not always the evaluation view.
        var rrc = new TrainTransformOptions { Size = 32, FlipProbability = 0 };
        Assert.That(Enumerable.Range(0, 8).Any(_ => !TrainTransform.Augment(image, rrc, rng).Rgb.SequenceEqual(view.Rgb)), Is.True, $"seed {seed}");
    }

    [Test]
    public void TrainCropAcceptsOnlyRrcOrPad()
    {
        Assert.That(() => new Slak.Train.TrainOptions { TrainCrop = "center" }.Validate(),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contain("rrc or pad").And.Message.Contain("center"));
        Assert.That(() => new Slak.Train.TrainOptions { TrainCrop = "pad" }.Validate(), Throws.Nothing);
    }
}
