// Augmentation: crop/flip against a direct index computation, mixup/cutmix target sums and lambda, label smoothing,
// and the batch loader's independence from thread timing.
using NUnit.Framework;
using Slak.Data;
using Slak.Tests.Support;
using Slak.Tests.Train;

namespace Slak.Tests.Data;

public class AugmentTests
{
    [Test]
    public void NormalisationWithoutCropOrFlipIsTheScalarFormulaBitForBit()
    {
        int seed = TestRandom.NewSeed();
        TestContext.Progress.WriteLine($"NormalisationWithoutCropOrFlipIsTheScalarFormulaBitForBit seed {seed}");
        var rng = new SlakRandom((ulong)seed);
        const int c = 3, h = 7, w = 13; // a plane of 91 values: whole vectors and a remainder
        var src = Enumerable.Range(0, c * h * w).Select(_ => rng.NextFloat()).ToArray();
        var dst = new float[src.Length];
        Array.Fill(dst, float.NaN);
        var opts = new AugmentOptions { CropPadding = 0, HorizontalFlip = false }.WithNormalization(DataNormalization.Imagenet);
        Augment.AugmentImage(src, dst, c, h, w, opts, rng);
        for (int i = 0; i < src.Length; i++)
        {
            int ch = i / (h * w);
            float expected = (src[i] - opts.Mean[ch]) * (1f / opts.Std[ch]);
            Assert.That(BitConverter.SingleToInt32Bits(dst[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(expected)), $"value {i}, seed {seed}");
        }
    }

    [Test]
    public void MixupAndCutmixTargetsSumToOneAndMatchLambda()
    {
        int seed = TestRandom.NewSeed();
        var rng = new SlakRandom((ulong)seed);
        int n = 6, c = 1, h = 8, w = 8, k = 5;
        foreach (var opts in new[]
        {
            new MixupOptions { MixupAlpha = 0.8 }, new MixupOptions { CutmixAlpha = 1.0 },
            new MixupOptions { MixupAlpha = 0.8, CutmixAlpha = 1.0, SwitchProb = 0.5 },
        })
        {
            for (int rep = 0; rep < 5; rep++)
            {
                var labels = Enumerable.Range(0, n).Select(_ => rng.NextInt(k)).ToArray();
                var images = Enumerable.Range(0, n * c * h * w).Select(i => (float)(i / (c * h * w))).ToArray();
                var (targets, lam) = Augment.MixBatch(images, n, c, h, w, labels, k, 0.1, opts, rng);
                for (int i = 0; i < n; i++)
                {
                    double sum = 0;
                    for (int j = 0; j < k; j++) sum += targets[i * k + j];
                    Assert.That(sum, Is.EqualTo(1.0).Within(1e-5), $"row {i} ({opts}), seed {seed}");
                    // Every pixel of image i comes from image i or image n-1-i; the share of the latter is 1 - lambda.
                    int partner = n - 1 - i;
                    if (partner == i) continue;
                    double share = 0;
                    for (int p = 0; p < c * h * w; p++)
                    {
                        float v = images[i * c * h * w + p];
                        share += (v - i) / (partner - i);
                    }
                    Assert.That(share / (c * h * w), Is.EqualTo(1 - lam).Within(1e-4), $"image {i} ({opts}), seed {seed}");
                }
            }
        }
    }

    [Test]
    public void SmoothedOneHotValues()
    {
        var t = Augment.SmoothedOneHot([2, 0], 4, 0.1);
        Assert.That(t, Is.EqualTo(new[] { 0.025f, 0.025f, 0.925f, 0.025f, 0.925f, 0.025f, 0.025f, 0.025f }).Within(1e-7));
    }

    [Test]
    public void CropAndFlipMoveEveryPixelByTheDrawnOffset()
    {
        int seed = TestRandom.NewSeed();
        int h = 6, w = 7;
        var src = Enumerable.Range(0, h * w).Select(i => (float)(i + 1)).ToArray();
        var opts = new AugmentOptions { CropPadding = 2, HorizontalFlip = true, Mean = [0f], Std = [1f] };
        for (int rep = 0; rep < 20; rep++)
        {
            var rng = new SlakRandom((ulong)seed + (ulong)rep);
            var probe = new SlakRandom((ulong)seed + (ulong)rep);
            int dy = probe.NextInt(5) - 2, dx = probe.NextInt(5) - 2;
            bool flip = probe.NextFloat() < 0.5f;
            var dst = new float[h * w];
            Augment.AugmentImage(src, dst, 1, h, w, opts, rng);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    int sy = y + dy, sx = (flip ? w - 1 - x : x) + dx;
                    float expected = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[sy * w + sx] : 0f;
                    Assert.That(dst[y * w + x], Is.EqualTo(expected), $"({y},{x}) rep {rep}, seed {seed}");
                }
        }
    }

    [Test]
    public void BatchesDoNotDependOnPrefetchOrThreadTiming()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        var data = TinyNet.Synthetic(100, seed);
        var opts = new BatchLoaderOptions
        {
            BatchSize = 16, Seed = seed, Smoothing = 0.1, Mixup = new MixupOptions { MixupAlpha = 0.8, CutmixAlpha = 1.0 },
        };
        var inline = new BatchLoader(data, opts with { Prefetch = 0 }, 3).ToList();
        var background = new BatchLoader(data, opts with { Prefetch = 2 }, 3).ToList();
        Assert.That(inline, Has.Count.EqualTo(6), "drop last: 100 / 16");
        for (int i = 0; i < inline.Count; i++)
        {
            Assert.That(background[i].Images, Is.EqualTo(inline[i].Images), $"batch {i}, seed {seed}");
            Assert.That(background[i].Targets, Is.EqualTo(inline[i].Targets), $"batch {i}, seed {seed}");
        }
        var other = new BatchLoader(data, opts, 4).First();
        Assert.That(other.Labels, Is.Not.EqualTo(inline[0].Labels), "another epoch has another order");
        var eval = new BatchLoader(data, opts.ForEvaluation(), 0).ToList();
        Assert.That(eval.Sum(b => b.Count), Is.EqualTo(100), "evaluation keeps the last partial batch");
        Assert.That(eval.SelectMany(b => b.Labels), Is.EqualTo(data.Labels), "evaluation keeps the order");
    }
}
