// PyTorch parity of evaluation-mode logits (issue 3 item 3): the fixtures under tests/TestData/infer/ were made by
// tools/make_infer_fixture.py with Debian's python3-torch (random SLaK twins with odd widths, non-square inputs,
// 40 % zero weights, small BN variances and a scaled stem so the eps values matter). Checked against the float64
// PyTorch logits within 1e-4 relative, through the library and through the `slak infer` command.
using NUnit.Framework;
using Slak.Inference;
using Slak.IO;
using Slak.Models;

namespace Slak.Tests.Models;

public sealed class InferenceParityTests
{
    private static void AssertClose(float[] actual, double[] expected, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        double worst = 0;
        int worstAt = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            double rel = Math.Abs(actual[i] - expected[i]) / (Math.Abs(expected[i]) + 1e-3);
            if (!(rel <= worst)) { worst = rel; worstAt = i; }
        }
        Assert.That(worst, Is.LessThanOrEqualTo(1e-4),
            $"{what}: worst |y - ref| / (|ref| + 1e-3) = {worst:E2} at {worstAt}: {actual[Math.Max(worstAt, 0)]} vs {expected[Math.Max(worstAt, 0)]}");
    }

    [TestCase("decom_bn", 1)]
    [TestCase("decom_bn", 2)]
    [TestCase("dense_nobn", 5)]
    public void LogitsMatchPyTorch(string fixture, int batchSize)
    {
        string dir = TestPaths.Data("infer", fixture);
        var config = ModelConfig.Load(Path.Combine(dir, "config.json"));
        var model = SlakInference.LoadModel(config, Path.Combine(dir, "weights.safetensors"), Device.Cpu);
        var input = Npy.Read(Path.Combine(dir, "input.npy"));
        var logits = SlakInference.Logits(model, input.ToFloat32(), input.GetShape(), batchSize);
        AssertClose(logits, Npy.Read(Path.Combine(dir, "logits_f64.npy")).ToFloat64(), $"{fixture} batch {batchSize}");
    }

    [Test]
    public void InferCommandWritesLogits()
    {
        string dir = TestPaths.Data("infer", "decom_bn");
        string output = Path.Combine(Path.GetTempPath(), $"slak-logits-{Guid.NewGuid():N}.npy");
        try
        {
            var cmd = new Slak.Cli.Commands.InferCommand().Build();
            int rc = cmd.Parse([
                "--model-config", Path.Combine(dir, "config.json"), "--weights", Path.Combine(dir, "weights.safetensors"),
                "--input", Path.Combine(dir, "input.npy"), "--output", output, "--batch-size", "2"]).Invoke();
            Assert.That(rc, Is.Zero);
            var written = Npy.Read(output);
            Assert.That(written.GetShape(), Is.EqualTo(new[] { 3, 10 }));
            Assert.That(written.DType, Is.EqualTo(NpyDType.Float32));
            AssertClose(written.ToFloat32(), Npy.Read(Path.Combine(dir, "logits_f64.npy")).ToFloat64(), "slak infer");
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Test]
    public void WrongChannelCountIsRejected()
    {
        string dir = TestPaths.Data("infer", "dense_nobn");
        var options = new InferenceOptions(Path.Combine(dir, "config.json"), Path.Combine(dir, "weights.safetensors"),
                                           TestPaths.Data("infer", "decom_bn", "input.npy"), Path.Combine(Path.GetTempPath(), "never.npy"), Device.Cpu);
        var e = Assert.Throws<InvalidDataException>(() => SlakInference.Run(options));
        Assert.That(e!.Message, Does.Contain("in_chans=3").And.Contain("(3, 1, 36, 40)"));
    }

    [Test]
    public void WrongConfigForWeightsIsReportedByName()
    {
        string dir = TestPaths.Data("infer", "decom_bn");
        var config = ModelConfig.Load(Path.Combine(dir, "config.json")) with { KernelSize = [9, 7, 5, 5, 3] };
        var e = Assert.Throws<StateDictMismatchException>(() => SlakInference.LoadModel(config, Path.Combine(dir, "weights.safetensors"), Device.Cpu));
        Assert.That(e!.Message, Does.Contain("stages.0.0.large_kernel.LoRA1.conv.weight: checkpoint (10, 1, 7, 3) vs model (10, 1, 9, 3)"));
    }
}
