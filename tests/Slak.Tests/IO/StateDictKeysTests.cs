// StateDictKeys: prefixes and legacy names normalise to the reference names, and Match reports missing,
// unexpected, mismatched and duplicate keys by name (against the committed SLaK-T key list).
using NUnit.Framework;
using Slak.IO;

namespace Slak.Tests.IO;

[TestFixture]
public sealed class StateDictKeysTests
{
    private static List<KeyValuePair<string, int[]>> TinyKeys() =>
        File.ReadAllLines(IoTestData.Path("state_dict", "slak_tiny.txt")).Select(l => l.Split('\t'))
            .Select(p => new KeyValuePair<string, int[]>(p[0],
                p[1].Length == 0 ? [] : p[1].Split(',').Select(int.Parse).ToArray()))
            .ToList();

    [TestCase("module.stages.0.0.large_kernel.LoRA1.conv.weight", "stages.0.0.large_kernel.LoRA1.conv.weight")]
    [TestCase("backbone.stages.1.2.large_kernel.Decom2.bn.bias", "stages.1.2.large_kernel.LoRA2.bn.bias")]
    [TestCase("module.backbone.head.weight", "head.weight")]
    [TestCase("stages.0.0.large_kernel.Decom1.conv.weight", "stages.0.0.large_kernel.LoRA1.conv.weight")]
    [TestCase("norm.weight", "norm.weight")]
    public void Normalizes(string key, string canonical) =>
        Assert.That(StateDictKeys.Normalize(key), Is.EqualTo(canonical));

    [Test]
    public void ExactCheckpointWithPrefixesAndWithoutCountersMatches()
    {
        var expected = TinyKeys();
        var checkpoint = expected.Where(kv => !StateDictKeys.IsIgnorable(kv.Key))
            .Select(kv => new KeyValuePair<string, int[]>("module." + kv.Key.Replace(".LoRA1.", ".Decom1."), kv.Value))
            .ToList();
        var match = StateDictKeys.Match(expected, checkpoint);
        Assert.That(match.IsExact, Is.True, match.Describe());
        Assert.That(match.Sources, Has.Count.EqualTo(470 - 18 * 3), "every tensor except 54 BN counters");
        Assert.That(match.Sources[17].Value, Is.EqualTo("module.stages.0.0.large_kernel.Decom1.conv.weight"));
        Assert.That(match.Describe(), Is.Empty);
    }

    [Test]
    public void ReportsEveryDifferenceByName()
    {
        var expected = TinyKeys();
        var checkpoint = expected.Where(kv => kv.Key != "head.bias").ToList();
        checkpoint[1] = new(checkpoint[1].Key, [7]);                       // downsample_layers.0.0.bias
        checkpoint.Add(new("stages.0.0.large_kernel.lkb_origin.conv.weight", [124, 1, 51, 51]));
        checkpoint.Add(new("module.norm.weight", [998]));
        var match = StateDictKeys.Match(expected, checkpoint);
        Assert.That(match.IsExact, Is.False);
        Assert.That(match.Missing, Is.EqualTo(new[] { "head.bias (1000)" }));
        Assert.That(match.Unexpected,
            Is.EqualTo(new[] { "stages.0.0.large_kernel.lkb_origin.conv.weight (124, 1, 51, 51)" }));
        Assert.That(match.ShapeMismatches, Is.EqualTo(new[]
        {
            "downsample_layers.0.0.bias: checkpoint 'downsample_layers.0.0.bias' has shape (7), "
                + "the model expects (124)",
        }));
        Assert.That(match.Duplicates, Has.Count.EqualTo(1));
        Assert.That(match.Duplicates[0], Does.Contain("'module.norm.weight'").And.Contain("'norm.weight'"));
        string report = match.Describe();
        Assert.That(report, Does.Contain("missing keys (1):").And.Contain("unexpected keys (1):")
            .And.Contain("shape mismatches (1):").And.Contain("duplicate keys (1):"));
    }
}
