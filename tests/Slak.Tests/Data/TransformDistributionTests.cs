// The random draws of the training transform by distribution (seed printed; thresholds are chi-square / normal
// quantiles at about 1e-4, so a correct implementation fails about once in ten thousand runs): RandomResizedCrop's
// area fraction and log aspect ratio (uniform where no retry is needed), its position and the centre-crop fallback;
// the flip rate; random erasing's rate, area and aspect; RandAugment's op frequencies (uniform with replacement,
// probability 0.5 each), magnitude (N(9, 0.5) clipped to [0, 10]) and signs; and the configuration parser.
using NUnit.Framework;
using Slak.Data;
using Slak.IO;
using Slak.Tests.Support;

namespace Slak.Tests.Data;

public class TransformDistributionTests
{
    private static ulong NewSeed() => (ulong)TestRandom.NewSeed();

    /// <summary>Pearson's statistic of <paramref name="counts"/> against equal expected counts.</summary>
    private static double ChiSquareUniform(int[] counts)
    {
        double expected = counts.Sum() / (double)counts.Length;
        return counts.Sum(c => (c - expected) * (c - expected) / expected);
    }

    [Test]
    public void RandomResizedCropAreaRatioAndPosition()
    {
        ulong seed = NewSeed();
        var rng = new SlakRandom(seed);
        const int W = 400, H = 300, N = 20000;
        var area = new int[8];
        var ratio = new int[8];
        double topSum = 0, leftSum = 0;
        int small = 0, positioned = 0;
        double lo = Math.Log(3.0 / 4), hi = Math.Log(4.0 / 3);
        for (int i = 0; i < N; i++)
        {
            var (top, left, h, w) = TrainTransform.RandomResizedCropBox(W, H, rng, (0.08, 1.0), (3.0 / 4, 4.0 / 3));
            Assert.That(top >= 0 && left >= 0 && top + h <= H && left + w <= W, Is.True, $"box outside the image (seed {seed})");
            double frac = (double)h * w / (W * H);
            Assert.That(frac, Is.InRange(0.075, 1.0), $"seed {seed}");
            if (h < H && w < W)
            {
                topSum += (double)top / (H - h);
                leftSum += (double)left / (W - w);
                positioned++;
            }
            // Areas up to half the image always fit at the first attempt, so there the draw is the plain one:
            // area uniform in [0.08, 0.5] and log ratio uniform (up to rounding to whole pixels).
            if (frac > 0.085 && frac < 0.495)
            {
                small++;
                area[Math.Min(7, (int)((frac - 0.085) / (0.495 - 0.085) * 8))]++;
                double r = Math.Log((double)w / h);
                ratio[Math.Clamp((int)((r - lo) / (hi - lo) * 8), 0, 7)]++;
            }
        }
        Assert.That(ChiSquareUniform(area), Is.LessThan(30.0), $"area histogram [{string.Join(", ", area)}], seed {seed}");
        Assert.That(ChiSquareUniform(ratio), Is.LessThan(30.0), $"log-ratio histogram [{string.Join(", ", ratio)}], seed {seed}");
        Assert.That(small, Is.GreaterThan(N / 3), $"seed {seed}");
        // Position uniform: mean of top / (H - h) is 1/2 (std 1/sqrt(12 n)).
        double sigma = 1 / Math.Sqrt(12.0 * positioned);
        Assert.That(topSum / positioned, Is.EqualTo(0.5).Within(4 * sigma), $"seed {seed}");
        Assert.That(leftSum / positioned, Is.EqualTo(0.5).Within(4 * sigma), $"seed {seed}");
    }

    [Test]
    public void RandomResizedCropFallsBackToACentreCrop()
    {
        var rng = new SlakRandom(NewSeed());
        // An impossible scale range: every attempt fails; the fallback clamps the ratio and centres the box.
        Assert.That(TrainTransform.RandomResizedCropBox(400, 100, rng, (1.5, 2.0), (3.0 / 4, 4.0 / 3)), Is.EqualTo((0, 133, 100, 133)));
        Assert.That(TrainTransform.RandomResizedCropBox(100, 400, rng, (1.5, 2.0), (3.0 / 4, 4.0 / 3)), Is.EqualTo((133, 0, 133, 100)));
        Assert.That(TrainTransform.RandomResizedCropBox(120, 100, rng, (1.5, 2.0), (3.0 / 4, 4.0 / 3)), Is.EqualTo((0, 0, 100, 120)));
    }

    [Test]
    public void FlipRateIsOneHalf()
    {
        ulong seed = NewSeed();
        var rng = new SlakRandom(seed);
        var rgb = new byte[2 * 1 * 3];
        rgb[0] = 200; // left pixel bright, right pixel dark
        var img = new DecodedImage(rgb, 2, 1);
        var o = new TrainTransformOptions { Size = 2, Scale = (1, 1), Ratio = (2, 2) };
        const int N = 4000;
        int flipped = 0;
        for (int i = 0; i < N; i++)
            if (TrainTransform.Augment(img, o, rng).Rgb[0] < 100) flipped++;
        Assert.That(flipped, Is.EqualTo(N / 2).Within(4 * Math.Sqrt(N * 0.25)), $"seed {seed}");
    }

    [Test]
    public void ErasingRateAreaAndAspect()
    {
        ulong seed = NewSeed();
        var rng = new SlakRandom(seed);
        const int N = 20000, S = 224;
        int erased = 0;
        var area = new int[8];
        var aspect = new int[8];
        double lo = Math.Log(0.3), hi = Math.Log(1 / 0.3);
        for (int i = 0; i < N; i++)
        {
            if (TrainTransform.EraseBox(S, S, 0.25, rng) is not { } b) continue;
            erased++;
            double frac = (double)b.Height * b.Width / (S * S);
            Assert.That(frac, Is.InRange(0.018, 0.34), $"seed {seed}");
            Assert.That(b.Top + b.Height <= S && b.Left + b.Width <= S, Is.True);
            // Boxes that fit at the first try (most): area uniform in [0.02, 1/3], log aspect uniform.
            if (frac > 0.022 && frac < 0.2)
                area[Math.Min(7, (int)((frac - 0.022) / (0.2 - 0.022) * 8))]++;
            aspect[Math.Clamp((int)((Math.Log((double)b.Height / b.Width) - lo) / (hi - lo) * 8), 0, 7)]++;
        }
        Assert.That(erased, Is.EqualTo(N / 4).Within(4 * Math.Sqrt(N * 0.25 * 0.75)), $"seed {seed}");
        Assert.That(ChiSquareUniform(area), Is.LessThan(30.0), $"area [{string.Join(", ", area)}], seed {seed}");
        // The extreme aspects of large boxes do not fit and are redrawn, so only the middle bins are compared.
        Assert.That(ChiSquareUniform(aspect[2..6]), Is.LessThan(22.0), $"aspect [{string.Join(", ", aspect)}], seed {seed}");
    }

    [Test]
    public void RandAugmentOpFrequenciesMagnitudesAndSigns()
    {
        ulong seed = NewSeed();
        var rng = new SlakRandom(seed);
        var ra = RandAugment.Parse("rand-m9-mstd0.5-inc1")!;
        const int N = 30000;
        var counts = new int[15];
        var magnitudes = new List<double>();
        int rotations = 0, negative = 0;
        for (int i = 0; i < N; i++)
            foreach (var (op, m, arg) in ra.Draw(rng))
            {
                counts[RandAugment.IncreasingOps.ToList().IndexOf(op)]++;
                magnitudes.Add(m);
                Assert.That(m, Is.InRange(0.0, 10.0));
                double plus = RandAugment.Argument(op, m, false), minus = RandAugment.Argument(op, m, true);
                Assert.That(Math.Abs(arg - plus) < 1e-12 || Math.Abs(arg - minus) < 1e-12, Is.True, $"{op} at {m}: {arg}");
                if (op == "Rotate")
                {
                    rotations++;
                    if (arg < 0) negative++;
                    Assert.That(Math.Abs(arg), Is.EqualTo(m * 3).Within(1e-9));
                }
            }
        int kept = counts.Sum();
        Assert.That(kept, Is.EqualTo(N).Within(4 * Math.Sqrt(2 * N * 0.25)), $"each of 2 layers applies with probability 0.5 (seed {seed})");
        Assert.That(ChiSquareUniform(counts), Is.LessThan(42.0), $"op counts [{string.Join(", ", counts)}], seed {seed}");
        double mean = magnitudes.Average(), sd = Math.Sqrt(magnitudes.Average(v => (v - mean) * (v - mean)));
        // N(9, 0.5) clipped at 10: mean 8.9958, sd 0.4908.
        Assert.That(mean, Is.EqualTo(8.9958).Within(4 * 0.5 / Math.Sqrt(kept)), $"seed {seed}");
        Assert.That(sd, Is.EqualTo(0.4908).Within(0.02), $"seed {seed}");
        Assert.That(negative, Is.EqualTo(rotations / 2).Within(4 * Math.Sqrt(rotations * 0.25)), $"seed {seed}");
    }

    [Test]
    public void LevelRulesAndParser()
    {
        Assert.That(RandAugment.Argument("PosterizeIncreasing", 9, false), Is.EqualTo(1));
        Assert.That(RandAugment.Argument("SolarizeIncreasing", 9, false), Is.EqualTo(256 - 230));
        Assert.That(RandAugment.Argument("SolarizeAdd", 9, false), Is.EqualTo(99));
        Assert.That(RandAugment.Argument("ColorIncreasing", 9, true), Is.EqualTo(0.19).Within(1e-12));
        Assert.That(RandAugment.Argument("ContrastIncreasing", 10, true), Is.EqualTo(0.1).Within(1e-12));
        Assert.That(RandAugment.Argument("ShearX", 9, true), Is.EqualTo(-0.27).Within(1e-12));
        Assert.That(RandAugment.Argument("TranslateYRel", 9, false), Is.EqualTo(0.405).Within(1e-12));
        Assert.That(RandAugment.Argument("Sharpness", 9, false), Is.EqualTo(1.72).Within(1e-12));
        var ra = RandAugment.Parse("rand-m9-mstd0.5-inc1")!;
        Assert.That((ra.Magnitude, ra.NumLayers, ra.MagnitudeStd, ra.Increasing, ra.MagnitudeMax), Is.EqualTo((9.0, 2, 0.5, true, 10.0)));
        Assert.That(RandAugment.Parse("rand-m7-n3-mstd101")!.MagnitudeStd, Is.EqualTo(double.PositiveInfinity));
        Assert.That(RandAugment.Parse("none"), Is.Null);
        Assert.That(() => RandAugment.Parse("original-mstd0.5"), Throws.ArgumentException.With.Message.Contains("only timm RandAugment"));
        Assert.That(() => RandAugment.Parse("rand-x3"), Throws.ArgumentException.With.Message.Contains("unknown section 'x'"));
    }
}
