// The image-folder transforms against PIL / torchvision fixtures (tools/make_transform_fixtures.py): PIL bicubic
// resize (down with antialiasing, up, one side), the evaluation resize + centre crop, the resized crop of a fixed
// RandomResizedCrop box, the flip, ToTensor + Normalize, random erasing of a fixed box with given noise, and every
// RandAugment op at fixed arguments. Tolerances: every image result is bit-exact (max difference 0, measured against
// Debian's PIL 9.4 / torchvision 0.14); normalisation and erasing within 1e-6.
using NUnit.Framework;
using Slak.Data;
using Slak.IO;

namespace Slak.Tests.Data;

public class TransformFixtureTests
{
    private static string Fixture(string name) =>
        Path.Combine(TestContext.CurrentContext.TestDirectory, "TestData", "transforms", name + ".npy");

    private static DecodedImage LoadImage(string name)
    {
        var (data, shape) = ImageTestData.ReadUInt8Npy(Fixture(name));
        return new DecodedImage(data, shape[1], shape[0]);
    }

    private static DecodedImage Input => LoadImage("input");

    private static void AssertImage(DecodedImage actual, string fixture, int maxDiff = 0, double maxFraction = 0)
    {
        var expected = LoadImage(fixture);
        Assert.That((actual.Width, actual.Height), Is.EqualTo((expected.Width, expected.Height)), fixture);
        int max = 0, off = 0;
        for (int i = 0; i < expected.Rgb.Length; i++)
        {
            int d = Math.Abs(actual.Rgb[i] - expected.Rgb[i]);
            max = Math.Max(max, d);
            if (d > 0) off++;
        }
        double fraction = (double)off / expected.Rgb.Length;
        TestContext.Out.WriteLine($"{fixture}: max |diff| {max}, {off} values differ ({fraction:P2})");
        Assert.That(max, Is.LessThanOrEqualTo(maxDiff), $"{fixture}: {off} values differ");
        Assert.That(fraction, Is.LessThanOrEqualTo(maxFraction), fixture);
    }

    [TestCase(17, 13)]
    [TestCase(26, 20)]
    [TestCase(104, 80)]
    [TestCase(75, 31)]
    [TestCase(52, 23)]
    [TestCase(33, 40)]
    [TestCase(200, 7)]
    public void ResizeMatchesPilBicubic(int w, int h) => AssertImage(PilResize.ResizeBicubic(Input, w, h), $"resize_{w}x{h}");

    [TestCase(32, 0.875, "0.875")]
    [TestCase(24, 0.875, "0.875")]
    [TestCase(36, 1.0, "1.0")]
    [TestCase(16, 0.9, "0.9")]
    public void EvalTransformMatchesTorchvision(int size, double pct, string pctText)
    {
        var img = EvalTransform.CenterCrop(EvalTransform.ResizeShortSide(Input, EvalTransform.ScaleSize(size, pct)), size);
        AssertImage(img, $"eval_{size}_{pctText}");
    }

    [TestCase(3, 5, 30, 40, 24)]
    [TestCase(0, 0, 40, 52, 32)]
    [TestCase(10, 20, 9, 14, 32)]
    [TestCase(1, 2, 37, 21, 20)]
    public void ResizedCropMatchesTorchvision(int top, int left, int h, int w, int size) =>
        AssertImage(TrainTransform.ResizedCrop(Input, top, left, h, w, size), $"rrc_{top}_{left}_{h}_{w}_{size}");

    [Test]
    public void FlipMatchesTorchvision() => AssertImage(PilOps.FlipHorizontal(Input), "hflip");

    [Test]
    public void NormalizeAndEraseMatchTorchvision()
    {
        var img = Input;
        var values = new float[3 * img.Width * img.Height];
        TrainTransform.Normalize(img, AugmentOptions.ImageNetMean.ToArray(), AugmentOptions.ImageNetStd.ToArray(), values);
        var expected = Npy.Read(Fixture("normalize")).ToFloat32();
        Assert.That(values, Is.EqualTo(expected).Within(1e-6f));
        var noise = Npy.Read(Fixture("erase_noise")).ToFloat32();
        TrainTransform.Erase(values, 3, img.Height, img.Width, (5, 7, 11, 13), noise);
        Assert.That(values, Is.EqualTo(Npy.Read(Fixture("erase")).ToFloat32()).Within(1e-6f));
    }

    private static readonly (byte, byte, byte) Fill = (124, 116, 104);

    [TestCase("AutoContrast", 0.0, "AutoContrast_0")]
    [TestCase("Equalize", 0.0, "Equalize_0")]
    [TestCase("Invert", 0.0, "Invert_0")]
    [TestCase("Posterize", 1.0, "Posterize_1")]
    [TestCase("PosterizeIncreasing", 3.0, "Posterize_3")]
    [TestCase("Posterize", 0.0, "Posterize_0")]
    [TestCase("Solarize", 26.0, "Solarize_26")]
    [TestCase("SolarizeIncreasing", 128.0, "Solarize_128")]
    [TestCase("SolarizeAdd", 99.0, "SolarizeAdd_99")]
    [TestCase("Color", 0.19, "Color_0.19")]
    [TestCase("ColorIncreasing", 1.81, "Color_1.81")]
    [TestCase("Contrast", 0.19, "Contrast_0.19")]
    [TestCase("ContrastIncreasing", 1.81, "Contrast_1.81")]
    [TestCase("Brightness", 0.19, "Brightness_0.19")]
    [TestCase("BrightnessIncreasing", 1.81, "Brightness_1.81")]
    [TestCase("Sharpness", 0.19, "Sharpness_0.19")]
    [TestCase("SharpnessIncreasing", 1.81, "Sharpness_1.81")]
    public void PointAndEnhanceOpsMatchPil(string op, double arg, string fixture) =>
        AssertImage(RandAugment.ApplyOp(Input, op, arg, Fill), "op_" + fixture);

    [TestCase("Rotate", 27.0, "Rotate_27")]
    [TestCase("Rotate", -13.5, "Rotate_-13.5")]
    [TestCase("ShearX", 0.27, "ShearX_0.27")]
    [TestCase("ShearX", -0.135, "ShearX_-0.135")]
    [TestCase("ShearY", 0.27, "ShearY_0.27")]
    [TestCase("TranslateXRel", 0.405, "TranslateX_21.06")]
    [TestCase("TranslateYRel", -0.405, "TranslateY_-16.2")]
    public void GeometricOpsMatchPil(string op, double arg, string fixture) =>
        AssertImage(RandAugment.ApplyOp(Input, op, arg, Fill), "op_" + fixture);

    [Test]
    public void IntegerTranslateMatchesPil() =>
        AssertImage(PilOps.Affine(Input, 1, 0, -7, 0, 1, 0, Fill), "op_TranslateX_-7");
}
