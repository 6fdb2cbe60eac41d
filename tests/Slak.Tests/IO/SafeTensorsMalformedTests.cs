// Every malformed safetensors case is rejected with an InvalidDataException whose message names the problem (and
// the file), before any tensor data is interpreted; nothing reads out of range.
using System.Buffers.Binary;
using System.Text;
using Slak.IO;
using NUnit.Framework;

namespace Slak.Tests.IO;

[TestFixture]
public sealed class SafeTensorsMalformedTests
{
    private static byte[] File(string header, int dataBytes, ulong? headerLength = null)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        return bytes;
    }

    private static void Rejected(byte[] content, params string[] phrases)
    {
        var error = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Parse(content, "bad.safetensors"));
        Assert.That(error!.Message, Does.Contain("bad.safetensors"));
        foreach (string p in phrases) Assert.That(error.Message, Does.Contain(p));
    }

    private const string One = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    [Test]
    public void WellFormedBaselineParses() =>
        Assert.That(SafeTensorsFile.Parse(File(One, 8))["a"].ToFloat32(), Is.EqualTo(new float[2]));

    [Test]
    public void TruncatedLengthPrefix()
    {
        Rejected([], "0 bytes", "8-byte header length");
        Rejected([1, 0, 0], "3 bytes");
    }

    [Test]
    public void HeaderLengthLargerThanFile() => Rejected(File(One, 8, headerLength: 1000), "header length 1000",
        "exceeds");

    [Test]
    public void HugeHeaderLengthDoesNotOverflow() => Rejected(File(One, 8, headerLength: ulong.MaxValue),
        "header length 18446744073709551615");

    [Test]
    public void ZeroHeaderLength() => Rejected(File(One, 8, headerLength: 0), "header length is 0");

    [Test]
    public void BadJson()
    {
        Rejected(File("{\"a\": {\"dtype\": \"F32\",", 0), "not valid UTF-8 JSON");
        Rejected(File("[1, 2]", 0), "must be a JSON object");
        Rejected(File("{\"a\": 5}", 0), "tensor 'a'", "expected an object");
    }

    [Test]
    public void InvalidUtf8InHeader()
    {
        byte[] bytes = File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
        bytes[10] = 0xFF; // inside the tensor name
        Rejected(bytes, "not valid UTF-8 JSON");
    }

    [Test]
    public void UnknownDType() => Rejected(
        File("{\"a\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "unknown dtype 'F8'", "BF16");

    [Test]
    public void MissingOrMistypedFields()
    {
        Rejected(File("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "'dtype' is missing");
        Rejected(File("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), "'shape' is missing");
        Rejected(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "'data_offsets' must be");
        Rejected(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8),
            "'data_offsets' must be");
        Rejected(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "shape[0] = -2");
        Rejected(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8), "shape[0] = 2.5");
        Rejected(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\"8\"]}}", 8), "end = \"8\"");
        Rejected(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8), "begin = -8");
    }

    [Test]
    public void ShapeDisagreesWithOffsets() => Rejected(
        File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12),
        "shape [2, 2] of F32 needs 16 bytes", "[0, 12] hold 12");

    [Test]
    public void OverflowingShape() => Rejected(
        File("{\"a\":{\"dtype\":\"F64\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", 8),
        "tensor 'a'", "too many elements");

    [Test]
    public void OverlappingOffsets() => Rejected(File(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "overlap", "'a'", "'b'");

    [Test]
    public void OffsetsOutOfRange() => Rejected(
        File("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), "[0, 16] run past",
        "8 bytes");

    [Test]
    public void EndBeforeBegin() => Rejected(
        File("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8), "end before they begin");

    [Test]
    public void TruncatedData()
    {
        byte[] full = new SafeTensorsWriter().AddFloat32("x", new float[10], [10]).AddFloat32("y", new float[5], [5])
            .ToBytes();
        Rejected(full[..^4], "tensor 'y'", "run past", "truncated");
    }

    [Test]
    public void GapsAndTrailingBytes()
    {
        Rejected(File(One, 12), "trailing bytes");
        Rejected(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
            "bytes [0, 4) belong to no tensor");
    }

    [Test]
    public void DuplicateNames() => Rejected(File(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "names 'a' twice");

    [Test]
    public void BadMetadata()
    {
        Rejected(File("{\"__metadata__\":{\"k\":1}," + One[1..], 8), "'__metadata__' entry 'k' must be a string");
        Rejected(File("{\"__metadata__\":[]," + One[1..], 8), "'__metadata__' must be an object");
    }

    [Test]
    public void ReadFromDiskRejectsTruncatedFilesToo()
    {
        string folder = IoTestData.NewScratchFolder();
        try
        {
            string path = Path.Combine(folder, "t.safetensors");
            byte[] full = new SafeTensorsWriter().AddFloat32("x", new float[10], [10]).ToBytes();
            System.IO.File.WriteAllBytes(path, full[..^1]);
            var error = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Read(path));
            Assert.That(error!.Message, Does.Contain(path).And.Contain("run past"));
            System.IO.File.WriteAllBytes(path, full[..20]);
            error = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Read(path));
            Assert.That(error!.Message, Does.Contain("exceeds"));
            var missing = Assert.Throws<FileNotFoundException>(() => SafeTensorsFile.Read(path + ".nope"));
            Assert.That(missing!.Message, Does.Contain(".nope"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
