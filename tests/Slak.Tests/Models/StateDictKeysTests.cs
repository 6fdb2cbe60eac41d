// The model's state_dict must equal the reference's key by key: names, order and shapes (slak-facts §7.2), for the
// paper presets (fixtures generated from the PyTorch twin, tools/make_state_dict_fixture.py) and for the variants a
// converter meets (§7.3: Decom=false, N > K, bn=false, no gamma). Models are built shape-only, so slak_base
// allocates nothing.
using NUnit.Framework;
using Slak.Models;
using Slak.NN;

namespace Slak.Tests.Models;

public sealed class StateDictKeysTests
{
    private static List<(string Name, string Shape)> Keys(SlakModel model) =>
        [.. model.StateDict().Select(e => (e.Name, string.Join(",", e.Tensor.ShapeArray)))];

    [TestCase("slak_tiny", 470)]
    [TestCase("slak_small", 920)]
    [TestCase("slak_base", 920)]
    public void PaperPresetMatchesReferenceFixture(string preset, int count)
    {
        var expected = File.ReadAllLines(TestPaths.Data("state_dict", preset + ".txt"))
            .Where(l => l.Length > 0).Select(l => l.Split('\t')).Select(p => (p[0], p[1])).ToList();
        var model = new SlakModel(ModelPresets.Get(preset).Config, ModuleInit.ShapeOnly);
        Assert.That(model.IsShapeOnly, Is.True);
        var actual = Keys(model);
        Assert.That(expected, Has.Count.EqualTo(count));
        Assert.That(actual, Has.Count.EqualTo(expected.Count));
        for (int i = 0; i < expected.Count; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]), $"{preset}: entry {i}");
    }

    [Test]
    public void TinyShapesFromFactsSheet()
    {
        var sd = new SlakModel(ModelPresets.Get("slak_tiny").Config, ModuleInit.ShapeOnly).StateDict()
            .ToDictionary(e => e.Name, e => e.Tensor.ShapeArray);
        Assert.Multiple(() =>
        {
            Assert.That(sd["downsample_layers.0.0.weight"], Is.EqualTo(new[] { 124, 3, 4, 4 }));
            Assert.That(sd["stages.0.0.large_kernel.LoRA1.conv.weight"], Is.EqualTo(new[] { 124, 1, 51, 5 }));
            Assert.That(sd["stages.0.0.large_kernel.LoRA2.conv.weight"], Is.EqualTo(new[] { 124, 1, 5, 51 }));
            Assert.That(sd["stages.0.0.large_kernel.small_conv.conv.weight"], Is.EqualTo(new[] { 124, 1, 5, 5 }));
            Assert.That(sd["stages.3.2.large_kernel.LoRA1.conv.weight"], Is.EqualTo(new[] { 998, 1, 13, 5 }));
            Assert.That(sd["stages.3.2.pwconv1.weight"], Is.EqualTo(new[] { 3992, 998 }));
            Assert.That(sd["stages.1.0.large_kernel.LoRA1.bn.num_batches_tracked"], Is.Empty);
            Assert.That(sd["downsample_layers.3.1.weight"], Is.EqualTo(new[] { 998, 499, 2, 2 }));
            Assert.That(sd["head.weight"], Is.EqualTo(new[] { 1000, 998 }));
        });
    }

    /// <summary>The expected key list of one block, written from slak-facts §1.3/§1.4/§7.2-7.3.</summary>
    private static List<(string, string)> BlockKeys(string p, int c, int k, int n, bool decom, bool bn, bool gamma)
    {
        var keys = new List<(string, string)>();
        if (gamma) keys.Add(($"{p}gamma", $"{c}"));
        void Branch(string name, int kh, int kw)
        {
            keys.Add(($"{p}large_kernel.{name}.conv.weight", $"{c},1,{kh},{kw}"));
            if (!bn) return;
            foreach (var s in new[] { "weight", "bias", "running_mean", "running_var" }) keys.Add(($"{p}large_kernel.{name}.bn.{s}", $"{c}"));
            keys.Add(($"{p}large_kernel.{name}.bn.num_batches_tracked", ""));
        }
        if (decom) { Branch("LoRA1", k, n); Branch("LoRA2", n, k); }
        else Branch("lkb_origin", k, k);
        if (n < k) Branch("small_conv", n, n);
        keys.AddRange([($"{p}norm.weight", $"{c}"), ($"{p}norm.bias", $"{c}"), ($"{p}pwconv1.weight", $"{4 * c},{c}"),
                       ($"{p}pwconv1.bias", $"{4 * c}"), ($"{p}pwconv2.weight", $"{c},{4 * c}"), ($"{p}pwconv2.bias", $"{c}")]);
        return keys;
    }

    private static List<(string, string)> ExpectedKeys(ModelConfig cfg)
    {
        int[] d = cfg.StageWidths();
        var keys = new List<(string, string)>
        {
            ("downsample_layers.0.0.weight", $"{d[0]},{cfg.InChans},4,4"), ("downsample_layers.0.0.bias", $"{d[0]}"),
            ("downsample_layers.0.1.weight", $"{d[0]}"), ("downsample_layers.0.1.bias", $"{d[0]}"),
        };
        for (int i = 1; i < 4; i++)
        {
            keys.AddRange([($"downsample_layers.{i}.0.weight", $"{d[i - 1]}"), ($"downsample_layers.{i}.0.bias", $"{d[i - 1]}"),
                           ($"downsample_layers.{i}.1.weight", $"{d[i]},{d[i - 1]},2,2"), ($"downsample_layers.{i}.1.bias", $"{d[i]}")]);
        }
        for (int s = 0; s < 4; s++)
            for (int b = 0; b < cfg.Depths[s]; b++)
                keys.AddRange(BlockKeys($"stages.{s}.{b}.", d[s], cfg.KernelSize[s], cfg.SmallKernel, cfg.Decom, cfg.Bn, cfg.LayerScaleInitValue > 0));
        keys.AddRange([("norm.weight", $"{d[3]}"), ("norm.bias", $"{d[3]}"), ("head.weight", $"{cfg.NumClasses},{d[3]}"), ("head.bias", $"{cfg.NumClasses}")]);
        return keys;
    }

    [TestCase(true, true, 1e-6, new[] { 7, 7, 5, 5, 3 }, TestName = "Decom bn gamma")]
    [TestCase(false, true, 1e-6, new[] { 7, 7, 5, 5, 3 }, TestName = "dense KxK + NxN (RepLKNet)")]
    [TestCase(false, true, 1e-6, new[] { 7, 7, 7, 7, 100 }, TestName = "N > K: no small_conv (ConvNeXt)")]
    [TestCase(true, false, 1e-6, new[] { 7, 5, 3, 3, 3 }, TestName = "bn=false, K == N in stages 3-4")]
    [TestCase(true, true, 0.0, new[] { 9, 7, 5, 3, 3 }, TestName = "no gamma (layer scale 0)")]
    public void VariantKeysMatchSpecification(bool decom, bool bn, double layerScale, int[] kernels)
    {
        var cfg = new ModelConfig
        {
            InChans = 2, NumClasses = 7, Depths = [1, 2, 1, 1], Dims = [8, 12, 16, 20], KernelSize = kernels,
            WidthFactor = 1.3, Decom = decom, Bn = bn, LayerScaleInitValue = layerScale,
        };
        var actual = Keys(new SlakModel(cfg, ModuleInit.ShapeOnly));
        Assert.That(actual, Is.EqualTo(ExpectedKeys(cfg)));
    }

    [Test]
    public void WidthFactorTruncatesLikePython()
    {
        Assert.That(new ModelConfig { Dims = [96, 192, 384, 768], WidthFactor = 1.3 }.StageWidths(), Is.EqualTo(new[] { 124, 249, 499, 998 }));
        Assert.That(new ModelConfig { Dims = [128, 256, 512, 1024], WidthFactor = 1.3 }.StageWidths(), Is.EqualTo(new[] { 166, 332, 665, 1331 }));
        Assert.That(new ModelConfig { Dims = [192, 384, 768, 1536], WidthFactor = 1.3 }.StageWidths(), Is.EqualTo(new[] { 249, 499, 998, 1996 }));
    }

    [Test]
    public void ParametersAndBuffersAreSeparated()
    {
        var model = new SlakModel(ModelPresets.Get("slak_tiny").Config, ModuleInit.ShapeOnly);
        var buffers = model.NamedBuffers().Select(b => b.Name).ToList();
        Assert.That(buffers, Has.Count.EqualTo(18 * 3 * 3));
        Assert.That(buffers.All(b => b.EndsWith("running_mean", StringComparison.Ordinal) || b.EndsWith("running_var", StringComparison.Ordinal)
                                     || b.EndsWith("num_batches_tracked", StringComparison.Ordinal)), Is.True);
        Assert.That(model.NamedParameters().Count() + buffers.Count, Is.EqualTo(470));
        Assert.That(Math.Round(model.ParameterCount() / 1e6, 2), Is.EqualTo(50.70), "SLaK-T has 50.70 M parameters (slak-facts §1.7)");
    }
}
