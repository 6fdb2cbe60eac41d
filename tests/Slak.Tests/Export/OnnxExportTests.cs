// ONNX export (issue 23 item 3): the exported graph runs in ONNX Runtime and its logits match the project's
// inference path (SlakInference.Logits, what `slak infer` runs) within 1e-4 of the logits' scale, for the large-kernel
// variants (decomposed, dense K x K, N > K, no BatchNorm, width factor), odd and non-square inputs, dynamic N / H / W,
// masks (sparse taps exported as zeros), merged and kept branches; the graph has the promised structure; bad arguments
// get clear errors. Models are random (ExportTestModels: seeds fixed and printed).
using NUnit.Framework;
using Slak.Export;
using Slak.Export.OnnxIr;
using Slak.Inference;
using Slak.IO;
using Slak.Models;

namespace Slak.Tests.Export;

public sealed class OnnxExportTests
{
    private static readonly ModelConfig Small = new()
    {
        InChans = 2, NumClasses = 7, Depths = [1, 1, 2, 1], Dims = [8, 12, 16, 20], KernelSize = [9, 7, 5, 3, 3],
        Decom = true, Bn = true, WidthFactor = 1.0, LayerScaleInitValue = 1e-6,
    };

    public static IEnumerable<TestCaseData> Variants()
    {
        yield return new TestCaseData("decomposed", Small, 35, 33);
        yield return new TestCaseData("dense KxK + small", Small with { Decom = false }, 32, 32);
        yield return new TestCaseData("decomposed N > K", Small with { KernelSize = [3, 5, 5, 3, 7] }, 32, 40);
        yield return new TestCaseData("dense N > K (no small branch)", Small with { Decom = false, KernelSize = [7, 7, 7, 7, 100] }, 36, 32);
        yield return new TestCaseData("no BN", Small with { Bn = false }, 33, 37);
        yield return new TestCaseData("width factor 1.3, no layer scale",
                                      Small with { WidthFactor = 1.3, LayerScaleInitValue = 0 }, 45, 39);
    }

    // Relative to the logits' scale: max |ort - slak| / max |slak| over the batch (a per-element ratio would blow
    // up on the few of 1000 logits that happen to lie near zero).
    internal static void AssertClose(float[] actual, float[] expected, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        double worst = 0, scale = expected.Max(v => Math.Abs((double)v));
        int at = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = Math.Abs((double)actual[i] - expected[i]);
            if (!(d <= worst)) { worst = d; at = i; }
        }
        double rel = worst / scale;
        TestContext.Out.WriteLine($"{what}: max |ort - slak| / max |slak| = {rel:E2} (scale {scale:G3})");
        Assert.That(scale, Is.GreaterThan(1e-2), $"{what}: logits too small to compare meaningfully");
        Assert.That(rel, Is.LessThan(1e-4),
            $"{what}: max |ort - slak| / max |slak| = {rel:E2} at {at}: ONNX Runtime {actual[at]} vs slak {expected[at]}");
    }

    private static void CheckParity(SlakModel model, OnnxExportOptions options, int[] shape, ulong seed, string what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var bytes = OnnxExporter.ToBytes(model, options);
        double export = clock.Elapsed.TotalSeconds;
        using var session = OnnxRuntimeRunner.Open(bytes);
        double load = clock.Elapsed.TotalSeconds;
        var x = ExportTestModels.RandomInput(shape, seed);
        var expected = SlakInference.Logits(model, x, shape, shape[0]);
        double slak = clock.Elapsed.TotalSeconds;
        var (actual, outShape) = OnnxRuntimeRunner.Run(session, x, shape);
        TestContext.Out.WriteLine($"{what}: {bytes.Length / 1e6:0.0} MB; export {export:0.0} s, ORT load " +
            $"{load - export:0.0} s, slak {slak - load:0.0} s, ORT run {clock.Elapsed.TotalSeconds - slak:0.0} s");
        Assert.That(outShape, Is.EqualTo(new long[] { shape[0], model.Config.NumClasses }), what);
        AssertClose(actual, expected, what);
    }

    [TestCaseSource(nameof(Variants))]
    public void LogitsMatchInference(string name, ModelConfig config, int h, int w)
    {
        const ulong seed = 2301;
        TestContext.Out.WriteLine($"seed {seed}");
        var model = ExportTestModels.Create(config, seed);
        foreach (bool keep in new[] { false, true })
            CheckParity(model, new OnnxExportOptions { KeepBranches = keep }, [2, config.InChans, h, w], seed + 1,
                        $"{name}, {(keep ? "branches kept" : "merged")}, {h}x{w}");
    }

    [Test]
    public void BatchAndSpatialSizesAreDynamic()
    {
        var model = ExportTestModels.Create(Small, 7);
        using var session = OnnxRuntimeRunner.Open(OnnxExporter.ToBytes(model));
        foreach (var shape in new[] { new[] { 1, 2, 32, 32 }, new[] { 3, 2, 48, 41 }, new[] { 2, 2, 64, 33 } })
        {
            var x = ExportTestModels.RandomInput(shape, 11);
            var (actual, _) = OnnxRuntimeRunner.Run(session, x, shape);
            AssertClose(actual, SlakInference.Logits(model, x, shape, shape[0]), $"input {string.Join("x", shape)}");
        }
        var proto = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(model));
        var input = proto.Graph.Input.Single();
        var output = proto.Graph.Output.Single();
        Assert.That(input.Name, Is.EqualTo("input"));
        Assert.That(input.Type.TensorType.Shape.Dim.Select(d => d.DimParam.Length > 0 ? d.DimParam : d.DimValue.ToString()),
                    Is.EqualTo(new[] { "N", "2", "H", "W" }));
        Assert.That(output.Name, Is.EqualTo("logits"));
        Assert.That(output.Type.TensorType.Shape.Dim.Select(d => d.DimParam.Length > 0 ? d.DimParam : d.DimValue.ToString()),
                    Is.EqualTo(new[] { "N", "7" }));
    }

    [Test]
    public void GraphHasOneFoldedConvPerLargeKernelOrOnePerBranch()
    {
        var model = ExportTestModels.Create(Small, 3);
        int blocks = Small.TotalBlocks;
        var merged = OnnxExporter.CountOps(ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(model)));
        var kept = OnnxExporter.CountOps(ModelProto.Parser.ParseFrom(
            OnnxExporter.ToBytes(model, new OnnxExportOptions { KeepBranches = true })));
        TestContext.Out.WriteLine("merged: " + string.Join(", ", merged.Select(p => $"{p.Key} {p.Value}")));
        Assert.That(merged.Keys, Has.No.Member("BatchNormalization"));
        Assert.That(merged.Keys, Has.No.Member("Sum"));
        // stem + 3 downsampling convolutions + one depthwise per block; one per branch when kept (3 where N < K, 2
        // in the last stage where K = N = 3).
        int branches = model.Blocks.Sum(b => b.LargeKernel.Branches.Count());
        Assert.That(branches, Is.EqualTo(3 * blocks - 1));
        Assert.That(merged["Conv"], Is.EqualTo(4 + blocks));
        Assert.That(kept["Conv"], Is.EqualTo(4 + branches));
        Assert.That(kept["Sum"], Is.EqualTo(blocks));
        Assert.That(merged["LayerNormalization"], Is.EqualTo(4 + blocks + 1));
        Assert.That(merged["Erf"], Is.EqualTo(blocks));
        Assert.That(merged["Gemm"], Is.EqualTo(1));

        var proto = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(model));
        Assert.That(proto.IrVersion, Is.EqualTo(8));
        Assert.That(proto.OpsetImport.Single().Version, Is.EqualTo(17));
        var lk = proto.Graph.Initializer.Single(t => t.Name == "stages.0.0.large_kernel.merged.weight");
        Assert.That(lk.Dims, Is.EqualTo(new long[] { 8, 1, 9, 9 }), "union kernel of 9x3 + 3x9 + 3x3");
    }

    [Test]
    public void MaskedTapsAreExportedAsZerosAndBranchesMergeCentred()
    {
        // A single-branch check by hand: the merged kernel is the sum of the folded branches, each centred.
        var model = ExportTestModels.Create(Small, 5);
        var lk = model.Blocks.First().LargeKernel;
        var parts = LargeKernelFolding.FoldBranches(lk);
        var merged = LargeKernelFolding.Merge(lk);
        var lora1 = lk.LoRA1!.Conv;
        var mask = lora1.WeightMask!.ToArray();
        int zeros = 0;
        for (int i = 0; i < mask.Length; i++)
        {
            if (mask[i] != 0) continue;
            zeros++;
            Assert.That(parts[0].Weight[i], Is.Zero, $"masked tap {i} of LoRA1 must export as 0");
        }
        Assert.That(zeros, Is.GreaterThan(0));
        var bn = lk.LoRA1.Bn!;
        double s0 = bn.Weight.ToArray()[0] / Math.Sqrt(bn.RunningVar.ToArray()[0] + bn.Eps);
        var w = lora1.Weight.ToArray();
        int live = Array.FindIndex(mask, m => m != 0 && true);
        Assert.That(live, Is.LessThan(9 * 3), "a live tap in channel 0");
        Assert.That(parts[0].Weight[live], Is.EqualTo(w[live] * s0).Within(1e-6 * Math.Abs(w[live] * s0) + 1e-9));
        // Centre tap of channel 0 (4, 4) of the 9x9 union = LoRA1 (4, 1) + LoRA2 (1, 4) + small (1, 1).
        double expected = (double)parts[0].Weight[4 * 3 + 1] + parts[1].Weight[1 * 9 + 4] + parts[2].Weight[1 * 3 + 1];
        Assert.That(merged.Weight[4 * 9 + 4], Is.EqualTo(expected).Within(1e-6));
        // Corner (0, 0) of the union is outside every branch.
        Assert.That(merged.Weight[0], Is.Zero);
        Assert.That(merged.Bias![0], Is.EqualTo(parts.Sum(p => (double)p.Bias![0])).Within(1e-6));
    }

    public static IEnumerable<TestCaseData> Presets() =>
        ModelPresets.Presets.Where(p => p.Name.Contains("nano", StringComparison.Ordinal))
            .Select(p => new TestCaseData(p.Name, p.InputSize))
            .Append(new TestCaseData("slak_tiny", 32));

    [TestCaseSource(nameof(Presets))]
    public void PresetExportsAndMatches(string preset, int size)
    {
        var config = ModelPresets.Get(preset).Config;
        ulong seed = (ulong)preset.Length * 977;
        TestContext.Out.WriteLine($"seed {seed}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var model = ExportTestModels.Create(config, seed, masks: preset != "slak_tiny");
        TestContext.Out.WriteLine($"model built in {clock.Elapsed.TotalSeconds:0.0} s");
        CheckParity(model, new OnnxExportOptions(), [1, config.InChans, size, size], seed, $"{preset} at {size}x{size}");
    }

    [Test]
    public void ExportCommandWritesAFileThatMatchesSlakInfer()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"slak-export-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var config = Small with { Bn = true };
            var model = ExportTestModels.Create(config, 17, masks: false);
            string weights = Path.Combine(dir, "weights.safetensors"), cfg = Path.Combine(dir, "config.json");
            string onnx = Path.Combine(dir, "model.onnx"), input = Path.Combine(dir, "x.npy");
            string logits = Path.Combine(dir, "logits.npy");
            StateDictIO.SaveSafeTensors(model, weights);
            config.Save(cfg);
            int[] shape = [3, 2, 37, 32];
            var x = ExportTestModels.RandomInput(shape, 19);
            Npy.Write(input, x, shape);
            int rc = new Slak.Cli.Commands.ExportCommand().Build().Parse(
                ["--onnx", onnx, "--weights", weights, "--model-config", cfg, "--opset", "17"]).Invoke();
            Assert.That(rc, Is.Zero);
            rc = new Slak.Cli.Commands.InferCommand().Build().Parse(
                ["--model-config", cfg, "--weights", weights, "--input", input, "--output", logits]).Invoke();
            Assert.That(rc, Is.Zero);
            using var session = OnnxRuntimeRunner.Open(onnx);
            var (actual, _) = OnnxRuntimeRunner.Run(session, x, shape);
            AssertClose(actual, Npy.Read(logits).ToFloat32(), "slak export vs slak infer");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestCase("decom_bn", false)]
    [TestCase("decom_bn", true)]
    [TestCase("dense_nobn", false)]
    public void ExportedFixtureMatchesPyTorch(string fixture, bool keepBranches)
    {
        // The PyTorch fixtures of `slak infer` (tests/TestData/infer): ONNX Runtime against the float64 PyTorch
        // logits, through the exporter's checkpoint path.
        string dir = Slak.Tests.Models.TestPaths.Data("infer", fixture);
        string onnx = Path.Combine(Path.GetTempPath(), $"slak-export-{Guid.NewGuid():N}.onnx");
        try
        {
            OnnxExporter.ExportCheckpoint(Path.Combine(dir, "config.json"), Path.Combine(dir, "weights.safetensors"),
                                          onnx, new OnnxExportOptions { KeepBranches = keepBranches });
            var input = Npy.Read(Path.Combine(dir, "input.npy"));
            using var session = OnnxRuntimeRunner.Open(onnx);
            var (actual, _) = OnnxRuntimeRunner.Run(session, input.ToFloat32(), input.GetShape());
            var expected = Npy.Read(Path.Combine(dir, "logits_f64.npy")).ToFloat64().Select(v => (float)v).ToArray();
            AssertClose(actual, expected, $"{fixture} vs PyTorch float64");
        }
        finally
        {
            File.Delete(onnx);
        }
    }

    [Test]
    public void BadArgumentsGetClearErrors()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"slak-export-bad-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var model = ExportTestModels.Create(Small, 23, masks: false);
            string weights = Path.Combine(dir, "weights.safetensors"), cfg = Path.Combine(dir, "config.json");
            string other = Path.Combine(dir, "other.json"), onnx = Path.Combine(dir, "m.onnx");
            StateDictIO.SaveSafeTensors(model, weights);
            Small.Save(cfg);
            (Small with { Dims = [8, 12, 16, 24] }).Save(other);

            var opset = Assert.Throws<ArgumentException>(() =>
                OnnxExporter.ExportCheckpoint(cfg, weights, onnx, new OnnxExportOptions { Opset = 13 }));
            Assert.That(opset!.Message, Does.Contain("opset 13").And.Contain("17"));
            Assert.Throws<ArgumentException>(() => OnnxExporter.ToBytes(model, new OnnxExportOptions { Opset = 18 }));

            var missing = Assert.Throws<FileNotFoundException>(() =>
                OnnxExporter.ExportCheckpoint(cfg, Path.Combine(dir, "nope.safetensors"), onnx));
            Assert.That(missing!.Message, Does.Contain("nope.safetensors"));

            var mismatch = Assert.Throws<StateDictMismatchException>(() =>
                OnnxExporter.ExportCheckpoint(other, weights, onnx));
            Assert.That(mismatch!.Message, Does.Contain("stages.3.0"));

            var noFolder = Assert.Throws<DirectoryNotFoundException>(() =>
                OnnxExporter.ExportCheckpoint(cfg, weights, Path.Combine(dir, "no", "such", "m.onnx")));
            Assert.That(noFolder!.Message, Does.Contain("does not exist"));
            var isDir = Assert.Throws<IOException>(() => OnnxExporter.ExportCheckpoint(cfg, weights, dir));
            Assert.That(isDir!.Message, Does.Contain("is a directory"));
            Assert.That(File.Exists(onnx), Is.False, "nothing written after a failed export");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
