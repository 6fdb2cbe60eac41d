// Parameter and MAC counts against slak-facts §1.7 (computed from the reference code at 224x224), dense and at 60 %
// density of every 2-D/4-D weight, the stage MAC split of SLaK-T, mask-based densities, and the presets.
using NUnit.Framework;
using Slak.Models;
using Slak.NN;
using Slak.Tests.Support;

namespace Slak.Tests.Models;

public sealed class ModelSummaryTests
{
    [TestCase("slak_tiny", 50.70, 8.70, 30.47, 5.22)]
    [TestCase("slak_small", 91.13, 16.60, 54.78, 9.96)]
    [TestCase("slak_base", 157.95, 28.51, 94.91, 17.11)]
    public void PaperPresetsMatchFacts(string preset, double mParams, double gMacs, double mParams60, double gMacs60)
    {
        var s = ModelSummary.Of(ModelPresets.Get(preset).Config, 224, 224);
        var d = ModelSummary.Uniform(0.6);
        Assert.Multiple(() =>
        {
            Assert.That(Math.Round(s.Params / 1e6, 2), Is.EqualTo(mParams));
            Assert.That(Math.Round(s.Macs / 1e9, 2), Is.EqualTo(gMacs));
            Assert.That(Math.Round(s.ParamsAt(d) / 1e6, 2), Is.EqualTo(mParams60));
            Assert.That(Math.Round(s.MacsAt(d) / 1e9, 2), Is.EqualTo(gMacs60));
        });
    }

    [Test]
    public void ConvNeXtTinyMatchesFacts()
    {
        var s = ModelSummary.Of(ModelPresets.Get("convnext_tiny").Config, 224, 224);
        Assert.That(Math.Round(s.Params / 1e6, 2), Is.EqualTo(28.60));
        Assert.That(Math.Round(s.Macs / 1e9, 2), Is.EqualTo(4.46));
    }

    [Test]
    public void SlakTinyMacSplit()
    {
        var s = ModelSummary.Of(ModelPresets.Get("slak_tiny").Config, 224, 224);
        double G(Func<LayerCost, bool> f) => Math.Round(s.Layers.Where(f).Sum(l => l.Macs) / 1e9, 2);
        Assert.Multiple(() =>
        {
            Assert.That(G(l => l.Module.Contains("pwconv", StringComparison.Ordinal)), Is.EqualTo(7.01));
            Assert.That(G(l => l.Module.Contains("large_kernel", StringComparison.Ordinal)), Is.EqualTo(1.38));
            Assert.That(G(l => l.Part.StartsWith("downsample", StringComparison.Ordinal)), Is.EqualTo(0.29));
            Assert.That(G(l => l.Part == "stem"), Is.EqualTo(0.02));
            Assert.That(G(l => l.Part == "stage 1" && l.Module.Contains("large_kernel", StringComparison.Ordinal)), Is.EqualTo(0.62));
        });
    }

    [Test]
    public void MaskDensitiesScaleOnlyTheirLayer()
    {
        var cfg = ModelPresets.Get("slak_nano").Config;
        var s = ModelSummary.Of(cfg, 32, 32);
        var head = s.Layers.Single(l => l.Module == "head");
        var mask = new float[head.WeightElements];
        for (int i = 0; i < mask.Length; i += 4) mask[i] = 1f; // about 25 % live
        var d = ModelSummary.FromMasks(new Dictionary<string, float[]> { ["head.weight"] = mask });
        double dead = 1 - mask.Count(v => v != 0) / (double)mask.Length;
        Assert.That(s.MacsAt(d), Is.EqualTo(s.Macs - dead * head.Macs).Within(1e-6));
        Assert.That(s.ParamsAt(d), Is.EqualTo(s.Params - dead * head.WeightElements).Within(1e-6));
    }

    [Test]
    public void RenderHasEveryStageAndTotals()
    {
        string table = ModelSummary.Of(ModelPresets.Get("slak_tiny").Config, 224, 224).Render(ModelSummary.Uniform(0.6), "0.6");
        Assert.That(table, Does.Contain("124x56x56").And.Contain("998x7x7").And.Contain("50.70 M").And.Contain("8.70 G")
            .And.Contain("30.47 M").And.Contain("5.22 G").And.Contain("MACs@0.6"));
    }

    [Test]
    public void EveryPresetBuildsAndSummarizes()
    {
        foreach (var p in ModelPresets.Presets)
        {
            var s = ModelSummary.Of(p.Config, p.InputSize, p.InputSize);
            Assert.That(s.Params, Is.GreaterThan(0), p.Name);
            TestContext.Out.WriteLine($"{p.Name}: {ModelSummary.Count(s.Params)} params, {ModelSummary.Count(s.Macs)} MACs at {p.InputSize}, {ModelSummary.Count(s.MacsAt(ModelSummary.Uniform(p.Density)))} at density {p.Density}");
        }
        Assert.That(ModelPresets.Get("SLAK_NANO").Name, Is.EqualTo("slak_nano"));
        var e = Assert.Throws<ArgumentException>(() => ModelPresets.Get("slak_huge"));
        Assert.That(e!.Message, Does.Contain("slak_tiny"));
    }

    [Test]
    public void LiveModelAndShapeOnlyModelAgree()
    {
        var cfg = ModelPresets.Get("replk_nano").Config;
        var live = ModelSummary.Of(new SlakModel(cfg, ModuleInit.FromRandom(new SlakRandom(3))), 32, 32);
        var meta = ModelSummary.Of(cfg, 32, 32);
        Assert.That((live.Params, live.Macs), Is.EqualTo((meta.Params, meta.Macs)));
    }

    [Test]
    public void SummaryWeightsOptionUsesCheckpointMasksOrNonzeroWeights()
    {
        var s = ModelSummary.Of(ModelPresets.Get("slak_nano").Config, 32, 32);
        var layer = s.Layers.First(l => l.WeightKey == "stages.1.0.pwconv1.weight");
        int n = checked((int)layer.WeightElements);
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        var mask = new byte[n];
        int live = 0;
        for (int i = 0; i < n; i++) live += mask[i] = (byte)(rng.NextDouble() < 0.3 ? 1 : 0);
        string dir = Path.Combine(Path.GetTempPath(), "slak-summary-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            // A trainer state file: masks only; unmasked weights count as dense.
            string state = Path.Combine(dir, "trainer.safetensors");
            new Slak.IO.SafeTensorsWriter().AddUInt8("mask." + layer.WeightKey, mask, [n]).Write(state);
            var d = Slak.Cli.Commands.SummaryCommand.RealDensities(state, s);
            Assert.That(d(layer.WeightKey!), Is.EqualTo(live / (double)n), $"seed {seed}");
            Assert.That(d("head.weight"), Is.EqualTo(1.0));

            // Model weights: the nonzero fraction; a weight missing from the file is an error that names it.
            string weights = Path.Combine(dir, "model.safetensors");
            new Slak.IO.SafeTensorsWriter().AddFloat32(layer.WeightKey!, mask.Select(b => b * 0.5f).ToArray(), [n]).Write(weights);
            var ex = Assert.Throws<ArgumentException>(() => Slak.Cli.Commands.SummaryCommand.RealDensities(weights, s));
            Assert.That(ex!.Message, Does.Contain("stem").Or.Contain("downsample_layers.0.0.weight"));
            var w = new Slak.IO.SafeTensorsWriter();
            foreach (var key in s.Layers.Select(l => l.WeightKey).OfType<string>())
            {
                var l = s.Layers.First(x => x.WeightKey == key);
                w.AddFloat32(key, key == layer.WeightKey ? mask.Select(b => b * 0.5f).ToArray()
                                                         : Enumerable.Repeat(1f, (int)l.WeightElements).ToArray(), [(int)l.WeightElements]);
            }
            w.Write(weights);
            d = Slak.Cli.Commands.SummaryCommand.RealDensities(weights, s);
            Assert.That(d(layer.WeightKey!), Is.EqualTo(live / (double)n), $"seed {seed}");
            Assert.That(s.MacsAt(d), Is.EqualTo(s.Macs - layer.Macs * (1 - live / (double)n)).Within(1e-6 * s.Macs));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
