// config.json: exact reference keys, round trip through a file, and a clear rejection (naming the key) of every
// kind of bad input: missing/unknown keys, wrong JSON types, even kernels, wrong list lengths, non-positive dims.
using System.Text.Json.Nodes;
using NUnit.Framework;
using Slak.Models;

namespace Slak.Tests.Models;

public sealed class ModelConfigTests
{
    private static readonly ModelConfig Sample = new()
    {
        InChans = 1, NumClasses = 10, Depths = [2, 1, 1, 1], Dims = [8, 16, 16, 32], DropPathRate = 0.1,
        LayerScaleInitValue = 1e-6, HeadInitScale = 0.5, KernelSize = [7, 7, 5, 5, 3], WidthFactor = 1.3,
        Decom = true, Bn = false,
    };

    [Test]
    public void JsonHasExactlyTheReferenceKeysInOrder()
    {
        var obj = JsonNode.Parse(Sample.ToJson())!.AsObject();
        Assert.That(obj.Select(p => p.Key), Is.EqualTo(new[]
        {
            "in_chans", "num_classes", "depths", "dims", "drop_path_rate", "layer_scale_init_value", "head_init_scale",
            "kernel_size", "width_factor", "Decom", "bn",
        }));
    }

    [Test]
    public void FileRoundTrip()
    {
        string path = Path.Combine(Path.GetTempPath(), $"slak-config-{Guid.NewGuid():N}.json");
        try
        {
            Sample.Save(path);
            var back = ModelConfig.Load(path);
            Assert.That(back, Is.EqualTo(Sample));
            Assert.That(back.ToJson(), Is.EqualTo(Sample.ToJson()));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void ReadsThePythonFixtureConfigs()
    {
        var cfg = ModelConfig.Load(TestPaths.Data("infer", "decom_bn", "config.json"));
        Assert.That(cfg.StageWidths(), Is.EqualTo(new[] { 10, 20, 20, 41 }));
        Assert.That(cfg.Decom && cfg.Bn, Is.True);
        var dense = ModelConfig.Load(TestPaths.Data("infer", "dense_nobn", "config.json"));
        Assert.That(dense.Decom || dense.Bn, Is.False);
    }

    [Test]
    public void DecomNullReadsAsFalse()
    {
        var node = JsonNode.Parse(Sample.ToJson())!.AsObject();
        node["Decom"] = null;
        Assert.That(ModelConfig.FromJson(node.ToJsonString()).Decom, Is.False);
    }

    private static string Mutate(Action<JsonObject> change)
    {
        var node = JsonNode.Parse(Sample.ToJson())!.AsObject();
        change(node);
        return node.ToJsonString();
    }

    private static IEnumerable<TestCaseData> BadConfigs()
    {
        yield return new TestCaseData(Mutate(o => o.Remove("dims")), "missing key(s) dims").SetName("missing key");
        yield return new TestCaseData(Mutate(o => o["dim"] = 3), "unknown key 'dim'").SetName("unknown key");
        yield return new TestCaseData(Mutate(o => o["kernel_size"] = new JsonArray(7, 7, 6, 5, 3)), "kernel_size").SetName("even K");
        yield return new TestCaseData(Mutate(o => o["kernel_size"] = new JsonArray(7, 7, 5, 5, 4)), "kernel_size value 4 (N)").SetName("even N used by Decom");
        yield return new TestCaseData(Mutate(o => o["kernel_size"] = new JsonArray(7, 7, 5, 5)), "must have 5 values").SetName("4 kernels");
        yield return new TestCaseData(Mutate(o => o["depths"] = new JsonArray(2, 1, 1)), "depths must have 4 values").SetName("3 depths");
        yield return new TestCaseData(Mutate(o => o["dims"] = new JsonArray(8, 0, 16, 32)), "dims values must be >= 1").SetName("zero dim");
        yield return new TestCaseData(Mutate(o => o["width_factor"] = 0.01), "width_factor").SetName("width truncates to 0");
        yield return new TestCaseData(Mutate(o => o["in_chans"] = 1.5), "in_chans must be an integer").SetName("fractional int");
        yield return new TestCaseData(Mutate(o => o["bn"] = "yes"), "bn must be true or false").SetName("string bool");
        yield return new TestCaseData(Mutate(o => o["drop_path_rate"] = 1.0), "drop_path_rate must be in [0, 1)").SetName("drop path 1");
        yield return new TestCaseData(Mutate(o => o["num_classes"] = 0), "num_classes must be >= 1").SetName("no classes");
        yield return new TestCaseData("[1, 2]", "expected a JSON object").SetName("not an object");
        yield return new TestCaseData("{\"in_chans\": 3,", "not valid JSON").SetName("truncated JSON");
    }

    [TestCaseSource(nameof(BadConfigs))]
    public void RejectsBadConfigWithMessage(string json, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.FromJson(json, "cfg.json"));
        Assert.That(e!.Message, Does.Contain(expected).And.Contain("cfg.json"));
    }

    [Test]
    public void ConvNeXtBaselineAcceptsEvenUnusedN()
    {
        var cfg = ModelPresets.Get("convnext_tiny").Config;
        Assert.That(cfg.KernelSize[4], Is.EqualTo(100));
        Assert.DoesNotThrow(() => cfg.Validate());
        Assert.Throws<ArgumentException>(() => (cfg with { Decom = true }).Validate());
    }

    [Test]
    public void StageSizesRejectTooSmallInput()
    {
        var cfg = ModelPresets.Get("slak_nano").Config;
        Assert.That(cfg.StageSizes(32, 32), Is.EqualTo(new[] { (8, 8), (4, 4), (2, 2), (1, 1) }));
        var e = Assert.Throws<ArgumentException>(() => cfg.StageSizes(28, 28));
        Assert.That(e!.Message, Does.Contain("28x28").And.Contain("32x32"));
    }

    [Test]
    public void DropPathRatesAreLinspace()
    {
        Assert.That(SlakModel.DropPathRates(0.1, 5), Is.EqualTo(new[] { 0, 0.025, 0.05, 0.075, 0.1 }).Within(1e-12));
        Assert.That(SlakModel.DropPathRates(0.3, 1), Is.EqualTo(new[] { 0.0 }));
    }
}
