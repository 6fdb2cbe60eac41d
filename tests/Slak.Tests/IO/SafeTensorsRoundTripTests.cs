// safetensors written by SafeTensorsWriter read back bit-exactly, deterministically, and in the reference layout
// (8-byte aligned header, offsets relative to the data start); conversions of F16/BF16/F64 to float32.
using System.Buffers.Binary;
using System.Text;
using Slak.IO;
using NUnit.Framework;

namespace Slak.Tests.IO;

[TestFixture]
public sealed class SafeTensorsRoundTripTests : ScratchFolderFixture
{
    [Test]
    public void RandomTensorsRoundTripExactly()
    {
        int seed = IoTestData.NewSeed();
        var rng = new Random(seed);
        float[] weight = new float[124 * 1 * 7 * 5];
        for (int i = 0; i < weight.Length; i++) weight[i] = (float)(rng.NextDouble() * 2 - 1) * 1e3f;
        weight[0] = float.NaN;
        weight[1] = float.NegativeInfinity;
        weight[2] = -0f;
        long[] counts = [rng.NextInt64(), -1, long.MinValue];
        byte[] mask = new byte[30];
        rng.NextBytes(mask);

        var writer = new SafeTensorsWriter()
            .SetMetadata("format", "pt")
            .SetMetadata("slak.step", "123")
            .AddFloat32("stages.0.0.large_kernel.LoRA1.conv.weight", weight, [124, 1, 7, 5])
            .AddInt64("counts", counts, [3])
            .AddInt64("stages.0.0.large_kernel.LoRA1.bn.num_batches_tracked", [42], [])
            .AddUInt8("mask.head.weight", mask, [5, 6])
            .AddFloat32("empty", [], [0, 3]);
        string path = Path.Combine(Folder, "w.safetensors");
        writer.Write(path);

        var file = SafeTensorsFile.Read(path);
        string msg = $"seed {seed}";
        Assert.That(file.Metadata, Is.EquivalentTo(new Dictionary<string, string>
        {
            ["format"] = "pt", ["slak.step"] = "123",
        }), msg);
        Assert.That(file.Names, Is.EqualTo(new[]
        {
            "stages.0.0.large_kernel.LoRA1.conv.weight", "counts",
            "stages.0.0.large_kernel.LoRA1.bn.num_batches_tracked", "mask.head.weight", "empty",
        }), "header order must be insertion order");
        var w = file["stages.0.0.large_kernel.LoRA1.conv.weight"];
        Assert.That(w.DType, Is.EqualTo(SafeTensorsDType.F32));
        Assert.That(w.Shape, Is.EqualTo(new[] { 124, 1, 7, 5 }));
        float[] back = w.ToFloat32();
        Assert.That(back.Select(BitConverter.SingleToInt32Bits),
            Is.EqualTo(weight.Select(BitConverter.SingleToInt32Bits)),
            msg + ": float bits must survive (NaN, -inf, -0 included)");
        Assert.That(file.ToInt64("counts"), Is.EqualTo(counts), msg);
        var scalar = file["stages.0.0.large_kernel.LoRA1.bn.num_batches_tracked"];
        Assert.That(scalar.Shape, Is.Empty);
        Assert.That(scalar.ElementCount, Is.EqualTo(1));
        Assert.That(scalar.ToInt64(), Is.EqualTo(new long[] { 42 }));
        Assert.That(file["mask.head.weight"].ToUInt8(), Is.EqualTo(mask), msg);
        Assert.That(file["empty"].ToFloat32(), Is.Empty);
        Assert.That(file["empty"].Shape, Is.EqualTo(new[] { 0, 3 }));

        Assert.That(writer.ToBytes(), Is.EqualTo(File.ReadAllBytes(path)), "output must be deterministic");
        Assert.That(file.HeaderLength % 8, Is.EqualTo(0), "header padded to 8 bytes like the reference writer");
        Assert.That(Directory.GetFiles(Folder), Has.Length.EqualTo(1), "no temp file left");
    }

    [Test]
    public void HeaderIsTheDocumentedJson()
    {
        byte[] bytes = new SafeTensorsWriter().SetMetadata("k", "v").AddFloat32("a", [1f, 2f], [2])
            .AddInt64("b", [5], []).ToBytes();
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.That(header.TrimEnd(' '), Is.EqualTo(
            "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}"));
        Assert.That(bytes.Length, Is.EqualTo(8 + n + 16));
    }

    [Test]
    public void HalfAndBFloat16AndDoubleConvertToFloat32()
    {
        int seed = IoTestData.NewSeed();
        var rng = new Random(seed);
        var halves = new Half[64];
        var bf16 = new ushort[64];
        var doubles = new double[64];
        for (int i = 0; i < 64; i++)
        {
            halves[i] = (Half)(rng.NextDouble() * 200 - 100);
            bf16[i] = (ushort)rng.Next(0, 65536);
            doubles[i] = rng.NextDouble() * 1e6 - 5e5;
        }
        byte[] h = new byte[128], b = new byte[128], d = new byte[512];
        for (int i = 0; i < 64; i++)
        {
            BinaryPrimitives.WriteHalfLittleEndian(h.AsSpan(2 * i), halves[i]);
            BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2 * i), bf16[i]);
            BinaryPrimitives.WriteDoubleLittleEndian(d.AsSpan(8 * i), doubles[i]);
        }
        var file = SafeTensorsFile.Parse(new SafeTensorsWriter()
            .AddRaw("h", SafeTensorsDType.F16, h, [8, 8])
            .AddRaw("b", SafeTensorsDType.BF16, b, [64])
            .AddRaw("d", SafeTensorsDType.F64, d, [4, 16]).ToBytes());
        float[] hf = file.ToFloat32("h"), bf = file.ToFloat32("b"), df = file.ToFloat32("d");
        for (int i = 0; i < 64; i++)
        {
            Assert.That(hf[i], Is.EqualTo((float)halves[i]), $"seed {seed}, F16 element {i}");
            // bfloat16 is the top half of a float32: reference by construction from the bits.
            float expectB = BitConverter.Int32BitsToSingle(bf16[i] << 16);
            Assert.That(BitConverter.SingleToInt32Bits(bf[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(expectB)),
                $"seed {seed}, BF16 element {i} bits 0x{bf16[i]:X4}");
            Assert.That(df[i], Is.EqualTo((float)doubles[i]), $"seed {seed}, F64 element {i}");
        }
        var error = Assert.Throws<InvalidOperationException>(() => SafeTensorsFile.Parse(
            new SafeTensorsWriter().AddUInt8("m", [1], [1]).ToBytes()).ToFloat32("m"));
        Assert.That(error!.Message, Does.Contain("'m'").And.Contain("U8"));
    }

    [Test]
    public void CopyToFloat32ChecksTheDestinationLength()
    {
        var file = SafeTensorsFile.Parse(new SafeTensorsWriter().AddFloat32("a", [1, 2, 3], [3]).ToBytes());
        var error = Assert.Throws<ArgumentException>(() => file["a"].CopyToFloat32(new float[2]));
        Assert.That(error!.Message, Does.Contain("'a'").And.Contain("2").And.Contain("3"));
        Assert.That(error.ParamName, Is.EqualTo("destination"));
        var missing = Assert.Throws<KeyNotFoundException>(() => _ = file["b"]);
        Assert.That(missing!.Message, Does.Contain("'b'"));
    }

    [Test]
    public void WriterRejectsBadArguments()
    {
        var w = new SafeTensorsWriter().AddFloat32("a", [1], [1]);
        Assert.That(Assert.Throws<ArgumentException>(() => w.AddFloat32("a", [1], [1]))!.Message,
            Does.Contain("already added"));
        Assert.That(Assert.Throws<ArgumentException>(() => w.AddFloat32("b", [1, 2, 3], [2, 2]))!.Message,
            Does.Contain("[2, 2] has 4 elements but the data has 3"));
        Assert.That(Assert.Throws<ArgumentException>(() => w.AddFloat32("c", [], [-1]))!.Message,
            Does.Contain("negative"));
        Assert.That(Assert.Throws<ArgumentException>(() => w.AddFloat32("__metadata__", [1], [1]))!.Message,
            Does.Contain("reserved"));
        Assert.That(Assert.Throws<ArgumentException>(
            () => w.AddRaw("d", SafeTensorsDType.F32, new byte[6], [1]))!.Message, Does.Contain("multiple"));
        Assert.Throws<ArgumentException>(() => w.AddFloat32("", [1], [1]));
        Assert.That(w.Count, Is.EqualTo(1), "failed adds must not add anything");
    }
}
