// Files made by PyTorch / numpy (tools/make_io_fixtures.py, tools/make_infer_fixture.py,
// tools/make_state_dict_fixture.py) read with the C# readers: every dtype converts as torch converts it, and the
// committed model fixtures are self-consistent (so the model tests built on them start from sound files).
using System.Text.Json;
using NUnit.Framework;
using Slak.IO;

namespace Slak.Tests.IO;

[TestFixture]
public sealed class PyTorchFixtureTests
{
    [Test]
    public void MixedDTypeFileFromPyTorch()
    {
        var file = SafeTensorsFile.Read(IoTestData.Path("io", "safetensors", "mixed.safetensors"));
        Assert.That(file.Metadata, Is.EquivalentTo(new Dictionary<string, string> { ["format"] = "pt" }));
        foreach (string name in new[] { "f32", "f64", "f16", "bf16" })
        {
            float[] ours = file.ToFloat32(name);
            float[] torchs = file.ToFloat32("expected." + name);
            Assert.That(ours.Select(BitConverter.SingleToInt32Bits),
                Is.EqualTo(torchs.Select(BitConverter.SingleToInt32Bits)),
                $"{name}: our float32 conversion must equal torch's .to(float32) bit for bit");
            Assert.That(file[name].Shape, Is.EqualTo(file["expected." + name].Shape));
        }
        Assert.That(file["f16"].DType, Is.EqualTo(SafeTensorsDType.F16));
        Assert.That(file["bf16"].DType, Is.EqualTo(SafeTensorsDType.BF16));
        Assert.That(file["bf16"].Shape, Is.EqualTo(new[] { 2, 2 }));
        Assert.That(file.ToInt64("i64"), Is.EqualTo(new[] { -(1L << 62), 0, (1L << 40) + 3 }));
        Assert.That(file.ToInt64("i32"), Is.EqualTo(new long[] { -7, int.MaxValue }));
        Assert.That(file["u8"].ToUInt8(), Is.EqualTo(new byte[] { 0, 1, 128, 255 }));
        Assert.That(file["bool"].DType, Is.EqualTo(SafeTensorsDType.Bool));
        Assert.That(file.ToInt64("bool"), Is.EqualTo(new long[] { 1, 0, 1 }));
        Assert.That(file["scalar"].Shape, Is.Empty);
        Assert.That(file.ToInt64("scalar"), Is.EqualTo(new long[] { 7 }));
        Assert.That(file["empty"].Shape, Is.EqualTo(new[] { 0, 3 }));
    }

    private static readonly string[] ConfigKeys =
    [
        "in_chans", "num_classes", "depths", "dims", "drop_path_rate", "layer_scale_init_value", "head_init_scale",
        "kernel_size", "width_factor", "Decom", "bn",
    ];

    [TestCase("decom_bn", 145, 3, 36, 40)]
    [TestCase("dense_nobn", 50, 2, 32, 32)]
    public void InferFixtureIsConsistent(string name, int keys, int batch, int height, int width)
    {
        using var config = JsonDocument.Parse(File.ReadAllText(IoTestData.Path("infer", name, "config.json")));
        Assert.That(config.RootElement.EnumerateObject().Select(p => p.Name), Is.EqualTo(ConfigKeys),
            "config.json holds exactly the reference constructor arguments, in order");
        int inChans = config.RootElement.GetProperty("in_chans").GetInt32();
        int classes = config.RootElement.GetProperty("num_classes").GetInt32();
        double widthFactor = config.RootElement.GetProperty("width_factor").GetDouble();
        int[] dims = config.RootElement.GetProperty("dims").EnumerateArray()
            .Select(d => (int)(d.GetInt32() * widthFactor)).ToArray();

        var weights = SafeTensorsFile.Read(IoTestData.Path("infer", name, "weights.safetensors"));
        Assert.That(weights.Entries, Has.Count.EqualTo(keys));
        Assert.That(weights.Metadata["fixture"], Is.EqualTo(name));
        foreach (var e in weights.Entries)
        {
            var expected = e.Name.EndsWith(".num_batches_tracked", StringComparison.Ordinal)
                ? SafeTensorsDType.I64 : SafeTensorsDType.F32;
            Assert.That(e.DType, Is.EqualTo(expected), e.Name);
            if (expected == SafeTensorsDType.I64) Assert.That(e.Shape, Is.Empty, e.Name);
        }
        Assert.That(weights["downsample_layers.0.0.weight"].Shape, Is.EqualTo(new[] { dims[0], inChans, 4, 4 }));
        Assert.That(weights["head.weight"].Shape, Is.EqualTo(new[] { classes, dims[3] }));

        var input = Npy.Read(IoTestData.Path("infer", name, "input.npy"));
        Assert.That(input.DType, Is.EqualTo(NpyDType.Float32));
        Assert.That(input.Shape, Is.EqualTo(new[] { batch, inChans, height, width }));
        var logits = Npy.Read(IoTestData.Path("infer", name, "logits.npy"));
        var logits64 = Npy.Read(IoTestData.Path("infer", name, "logits_f64.npy"));
        Assert.That(logits.DType, Is.EqualTo(NpyDType.Float32));
        Assert.That(logits64.DType, Is.EqualTo(NpyDType.Float64));
        Assert.That(logits.Shape, Is.EqualTo(new[] { batch, classes }));
        Assert.That(logits64.Shape, Is.EqualTo(new[] { batch, classes }));
        double[] a = logits.ToFloat64(), b = logits64.ToFloat64();
        for (int i = 0; i < a.Length; i++)
        {
            Assert.That(a[i], Is.EqualTo(b[i]).Within(1e-5 + 1e-4 * Math.Abs(b[i])),
                $"{name} logit {i}: PyTorch float32 vs float64 (tolerance 1e-5 + 1e-4*|ref|)");
        }
    }

    [Test]
    public void DecomBnFixtureHasTheDecomposedBranchesInStateDictOrder()
    {
        var weights = SafeTensorsFile.Read(IoTestData.Path("infer", "decom_bn", "weights.safetensors"));
        string[] names = weights.Names.ToArray();
        int gamma = Array.IndexOf(names, "stages.0.1.gamma");
        Assert.That(names[gamma..(gamma + 3)], Is.EqualTo(new[]
        {
            "stages.0.1.gamma", "stages.0.1.large_kernel.LoRA1.conv.weight", "stages.0.1.large_kernel.LoRA1.bn.weight",
        }));
        // width 1.3: dims 8,16,16,32 -> 10,20,20,41; stage kernels (7,3),(7,3),(5,3),(5,3).
        Assert.That(weights["stages.0.1.large_kernel.LoRA1.conv.weight"].Shape, Is.EqualTo(new[] { 10, 1, 7, 3 }));
        Assert.That(weights["stages.0.1.large_kernel.LoRA2.conv.weight"].Shape, Is.EqualTo(new[] { 10, 1, 3, 7 }));
        Assert.That(weights["stages.3.0.large_kernel.small_conv.conv.weight"].Shape, Is.EqualTo(new[] { 41, 1, 3, 3 }));
        Assert.That(weights["stages.3.0.pwconv1.weight"].Shape, Is.EqualTo(new[] { 164, 41 }));
        var dense = SafeTensorsFile.Read(IoTestData.Path("infer", "dense_nobn", "weights.safetensors"));
        Assert.That(dense.Names.Where(n => n.Contains("gamma", StringComparison.Ordinal)), Is.Empty,
            "layer_scale_init_value 0 means no gamma");
        Assert.That(dense.Contains("stages.0.0.large_kernel.lkb_origin.conv.weight"), Is.True);
        Assert.That(dense.Contains("stages.0.0.large_kernel.small_conv.conv.weight"), Is.True);
        Assert.That(dense.Contains("stages.2.0.large_kernel.small_conv.conv.weight"), Is.False,
            "K = N = 3: no small_conv");
        Assert.That(dense.Names.Where(n => n.Contains(".bn.", StringComparison.Ordinal)), Is.Empty, "bn=False");
    }

    [TestCase("slak_tiny", 470, 124, 998)]
    [TestCase("slak_small", 920, 124, 998)]
    [TestCase("slak_base", 920, 166, 1331)]
    public void StateDictKeyListsAreWellFormed(string preset, int keys, int d0, int d3)
    {
        string[] lines = File.ReadAllLines(IoTestData.Path("state_dict", preset + ".txt"));
        Assert.That(lines, Has.Length.EqualTo(keys));
        var parsed = lines.Select(l => l.Split('\t')).ToArray();
        Assert.That(parsed.Select(p => p.Length), Is.All.EqualTo(2), "name<TAB>shape");
        Assert.That(parsed.Select(p => p[0]).Distinct().Count(), Is.EqualTo(keys), "names are unique");
        var shapes = parsed.ToDictionary(p => p[0], p => p[1]);
        Assert.That(shapes["downsample_layers.0.0.weight"], Is.EqualTo($"{d0},3,4,4"));
        Assert.That(shapes["stages.0.0.large_kernel.LoRA1.conv.weight"], Is.EqualTo($"{d0},1,51,5"));
        Assert.That(shapes["stages.0.0.large_kernel.LoRA1.bn.num_batches_tracked"], Is.Empty, "0-d shape is empty");
        Assert.That(shapes["head.weight"], Is.EqualTo($"1000,{d3}"));
        Assert.That(parsed[^1][0], Is.EqualTo("head.bias"));
    }
}
