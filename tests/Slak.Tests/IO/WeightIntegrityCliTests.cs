// `slak infer` on damaged weights (issue 30): a flipped bit in a checksummed file is an error naming the file and
// the tensor; weights that produce non-finite logits are an error, not a result; official (unchecksummed) weights
// still run, with a note that they are unverified. Through the real process: one line, exit 1.
using NUnit.Framework;
using Slak.IO;
using Slak.Tests.Train;

namespace Slak.Tests.IO;

public class WeightIntegrityCliTests
{
    private string _folder = "";

    private static string Fixture(string name) => Slak.Tests.Models.TestPaths.Data("infer", "decom_bn", name);

    [SetUp]
    public void SetUp()
    {
        _folder = Path.Combine(Path.GetTempPath(), "slak-weight-integrity", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private (int Exit, string Out, string Err) Infer(string weights) => RunIntegrityKit.RunCli("infer",
        "--model-config", Fixture("config.json"), "--weights", weights, "--input", Fixture("input.npy"),
        "--output", Path.Combine(_folder, "logits.npy"));

    private string Copy(bool checksums)
    {
        string path = Path.Combine(_folder, "weights.safetensors");
        File.Copy(Fixture("weights.safetensors"), path, overwrite: true);
        if (checksums) RunIntegrityKit.Rewrite(path, (_, _) => { });
        return path;
    }

    [Test]
    public void OfficialWeightsRunAndAreNotedUnverified()
    {
        var (exit, output, err) = Infer(Copy(checksums: false));
        Assert.That(exit, Is.Zero, err);
        Assert.That(output, Does.Contain("carries no checksums").And.Contain("unverified"));
    }

    [Test]
    public void AFlippedBitInAChecksummedFileIsNamed()
    {
        string path = Copy(checksums: true);
        var (exit, output, err) = Infer(path);
        Assert.That(exit, Is.Zero, err);
        Assert.That(output, Does.Not.Contain("unverified"));
        string tensor = SafeTensorsFile.Read(path).Names.First(n => n.EndsWith("weight", StringComparison.Ordinal));
        RunIntegrityKit.FlipBit(path, tensor);
        (exit, _, err) = Infer(path);
        Assert.That(exit, Is.EqualTo(1), err);
        Assert.That(err, Does.StartWith("slak: error: ").And.Contain("weights.safetensors").And.Contain($"checksum mismatch in tensor '{tensor}'"));
        Assert.That(err, Does.Not.Contain("   at "));
    }

    [Test]
    public void NonFiniteLogitsAreAnError()
    {
        string path = Copy(checksums: false);
        RunIntegrityKit.Rewrite(path, (entries, _) =>
        {
            var head = entries["head.bias"];
            var values = new float[head.Data.Length / 4];
            values[0] = float.PositiveInfinity;
            entries["head.bias"] = (head.DType, head.Shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
        }, checksums: false);
        var (exit, _, err) = Infer(path);
        Assert.That(exit, Is.EqualTo(1), err);
        Assert.That(err, Does.Contain("logits").And.Contain("not finite"));
    }
}
