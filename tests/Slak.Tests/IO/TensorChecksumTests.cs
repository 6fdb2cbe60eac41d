// Per-tensor checksums (issue 30): files written with checksums verify on every read; a flipped bit in any tensor,
// an edited metadata value, a tensor added or dropped afterwards are errors naming the file and the tensor; files
// without checksums (official or converted weights) load and report themselves unverified.
using NUnit.Framework;
using Slak.IO;

namespace Slak.Tests.IO;

public class TensorChecksumTests
{
    private static byte[] Sample(bool checksums) => new SafeTensorsWriter { Checksums = checksums }
        .SetMetadata("format", "pt").SetMetadata("epoch", "3")
        .AddFloat32("a", [1f, 2f, 3f], [3]).AddInt64("b", [7], []).AddUInt8("m", [0, 1], [2]).ToBytes();

    [Test]
    public void WrittenChecksumsVerify()
    {
        var file = SafeTensorsFile.Parse(Sample(true), "sample");
        Assert.That(file.Verified, Is.True);
        Assert.That(file.Metadata.ContainsKey(TensorChecksums.MetadataKey), Is.True);
        Assert.That(file.ToFloat32("a"), Is.EqualTo(new[] { 1f, 2f, 3f }));
        // XxHash64 of the empty input with seed 0 (the published test vector).
        Assert.That(TensorChecksums.Of([]), Is.EqualTo("ef46db3751d8e999"));
    }

    [Test]
    public void FilesWithoutChecksumsLoadUnverified()
    {
        var file = SafeTensorsFile.Parse(Sample(false), "plain");
        Assert.That(file.Verified, Is.False);
        string path = Path.Combine(Path.GetTempPath(), $"slak-cks-{Guid.NewGuid():N}.safetensors");
        try
        {
            File.WriteAllBytes(path, Sample(false));
            Assert.That(TensorChecksums.FileHasChecksums(path), Is.False);
            File.WriteAllBytes(path, Sample(true));
            Assert.That(TensorChecksums.FileHasChecksums(path), Is.True);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestCase("a")]
    [TestCase("b")]
    [TestCase("m")]
    public void AFlippedBitNamesTheTensor(string tensor)
    {
        byte[] bytes = Sample(true);
        var clean = SafeTensorsFile.Parse(bytes, "sample");
        bytes[8 + clean.HeaderLength + clean[tensor].DataBegin] ^= 0x01;
        Assert.That(() => SafeTensorsFile.Parse(bytes, "damaged.safetensors"), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("damaged.safetensors").And.Message.Contains($"checksum mismatch in tensor '{tensor}'"));
    }

    [Test]
    public void AnEditedMetadataValueIsCaught()
    {
        byte[] bytes = Sample(true);
        string text = System.Text.Encoding.UTF8.GetString(bytes);
        int at = text.IndexOf("\"epoch\":\"3\"", StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThan(0));
        bytes[at + "\"epoch\":\"".Length] = (byte)'4';
        Assert.That(() => SafeTensorsFile.Parse(bytes, "edited"), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("checksum mismatch in the metadata"));
    }

    [Test]
    public void ATensorWithoutChecksumOrAChecksumWithoutTensorIsCaught()
    {
        var file = SafeTensorsFile.Parse(Sample(true), "sample");
        var w = new SafeTensorsWriter();
        foreach (var (k, v) in file.Metadata) w.SetMetadata(k, v);
        foreach (var e in file.Entries.Where(e => e.Name != "b")) w.AddRaw(e.Name, e.DType, e.Data.Span, e.GetShape());
        Assert.That(() => SafeTensorsFile.Parse(w.ToBytes(), "dropped"), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("'b'").And.Message.Contains("does not hold"));
        w.AddFloat32("b", [1f], []).AddFloat32("extra", [1f], [1]);
        Assert.That(() => SafeTensorsFile.Parse(w.ToBytes(), "added"), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("tensor 'b'"));
    }
}
