// .npy: round trips of float32/float64/int64 (0-d, 1-d, empty, large headers), files written by numpy read back
// with the values numpy wrote, and every malformed or unsupported file rejected with a message naming the problem.
using System.Buffers.Binary;
using System.Text;
using NUnit.Framework;
using Slak.IO;

namespace Slak.Tests.IO;

[TestFixture]
public sealed class NpyTests : ScratchFolderFixture
{
    private static double Seq(int i) => i * 0.37 - 2.1;

    [Test]
    public void RoundTripsAllThreeDTypes()
    {
        int seed = IoTestData.NewSeed();
        var rng = new Random(seed);
        float[] f = Enumerable.Range(0, 3 * 1 * 36 * 40).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        double[] d = Enumerable.Range(0, 7).Select(_ => rng.NextDouble() * 1e300).ToArray();
        long[] l = [long.MinValue, -1, 0, long.MaxValue, rng.NextInt64()];
        string pf = Path.Combine(Folder, "f.npy"), pd = Path.Combine(Folder, "d.npy");
        string pl = Path.Combine(Folder, "l.npy");
        Npy.Write(pf, f, [3, 1, 36, 40]);
        Npy.Write(pd, d, [7]);
        Npy.Write(pl, l, [5, 1]);

        NpyArray af = Npy.Read(pf), ad = Npy.Read(pd), al = Npy.Read(pl);
        Assert.That(af.DType, Is.EqualTo(NpyDType.Float32));
        Assert.That(af.Shape, Is.EqualTo(new[] { 3, 1, 36, 40 }));
        Assert.That(af.ToFloat32(), Is.EqualTo(f), $"seed {seed}");
        Assert.That(ad.DType, Is.EqualTo(NpyDType.Float64));
        Assert.That(ad.ShapeText, Is.EqualTo("(7,)"));
        Assert.That(ad.ToFloat64(), Is.EqualTo(d), $"seed {seed}");
        Assert.That(al.ToInt64(), Is.EqualTo(l), $"seed {seed}");
        Assert.That(al.Shape, Is.EqualTo(new[] { 5, 1 }));
        Assert.That(af.ToFloat64(), Is.EqualTo(f.Select(x => (double)x)), "float32 widens exactly");
        Assert.That(Assert.Throws<InvalidOperationException>(() => af.ToInt64())!.Message, Does.Contain("'<f4'"));
        Assert.That(File.ReadAllBytes(pf).Length % 64, Is.EqualTo(f.Length * 4 % 64), "header padded to 64 bytes");
    }

    [Test]
    public void ScalarEmptyAndLongHeaders()
    {
        var scalar = Npy.Parse(Npy.Encode(new[] { 2.5 }, []));
        Assert.That(scalar.Shape, Is.Empty);
        Assert.That(scalar.ToFloat64(), Is.EqualTo(new[] { 2.5 }));
        var empty = Npy.Parse(Npy.Encode(Array.Empty<float>(), [0, 4]));
        Assert.That(empty.Shape, Is.EqualTo(new[] { 0, 4 }));
        Assert.That(empty.ToFloat32(), Is.Empty);
        // 30,000 one-sized dimensions need a header over 65,535 bytes: the writer switches to version 2.0.
        int[] shape = Enumerable.Repeat(1, 30_000).ToArray();
        byte[] bytes = Npy.Encode(new[] { 7L }, shape);
        Assert.That(bytes[6], Is.EqualTo(2), "format version 2.0 for long headers");
        var back = Npy.Parse(bytes);
        Assert.That(back.Shape, Has.Count.EqualTo(30_000));
        Assert.That(back.ToInt64(), Is.EqualTo(new[] { 7L }));
    }

    [Test]
    public void ReadsFilesWrittenByNumpy()
    {
        var f4 = Npy.Read(IoTestData.Path("io", "npy", "f4_2x3x4.npy"));
        Assert.That(f4.Shape, Is.EqualTo(new[] { 2, 3, 4 }));
        Assert.That(f4.ToFloat32(), Is.EqualTo(Enumerable.Range(0, 24).Select(i => (float)Seq(i))));
        var f8 = Npy.Read(IoTestData.Path("io", "npy", "f8_5.npy"));
        Assert.That(f8.ToFloat64(), Is.EqualTo(Enumerable.Range(0, 5).Select(Seq)));
        var i8 = Npy.Read(IoTestData.Path("io", "npy", "i8_2x3.npy"));
        Assert.That(i8.Shape, Is.EqualTo(new[] { 2, 3 }));
        Assert.That(i8.ToInt64(), Is.EqualTo(Enumerable.Range(0, 6).Select(i => i * 123456789012L - 500000000000L)));
        var scalar = Npy.Read(IoTestData.Path("io", "npy", "f8_scalar.npy"));
        Assert.That(scalar.Shape, Is.Empty);
        Assert.That(scalar.ToFloat64(), Is.EqualTo(new[] { 3.25 }));
        var v2 = Npy.Read(IoTestData.Path("io", "npy", "f4_v2.npy"));
        Assert.That(v2.Shape, Is.EqualTo(new[] { 3, 2 }));
        Assert.That(v2.ToFloat32(), Is.EqualTo(Enumerable.Range(0, 6).Select(i => (float)Seq(i))));
        var empty = Npy.Read(IoTestData.Path("io", "npy", "f4_empty.npy"));
        Assert.That(empty.Shape, Is.EqualTo(new[] { 0, 4 }));
    }

    [Test]
    public void OurFilesMatchNumpysBytes()
    {
        // numpy 1.24 writes exactly this layout (v1.0, header padded to 64 with spaces, '\n' at the end).
        byte[] ours = Npy.Encode(Enumerable.Range(0, 5).Select(Seq).ToArray(), [5]);
        Assert.That(ours, Is.EqualTo(File.ReadAllBytes(IoTestData.Path("io", "npy", "f8_5.npy"))));
    }

    private static void Rejected(byte[] content, params string[] phrases)
    {
        var error = Assert.Throws<InvalidDataException>(() => Npy.Parse(content, "bad.npy"));
        Assert.That(error!.Message, Does.Contain("bad.npy"));
        foreach (string p in phrases) Assert.That(error.Message, Does.Contain(p));
    }

    private static byte[] WithHeader(string dict, int dataBytes, byte major = 1)
    {
        string header = dict + "\n";
        int prefix = major == 1 ? 10 : 12;
        var bytes = new byte[prefix + header.Length + dataBytes];
        new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y' }.CopyTo(bytes, 0);
        bytes[6] = major;
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)header.Length);
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)header.Length);
        Encoding.ASCII.GetBytes(header).CopyTo(bytes, prefix);
        return bytes;
    }

    [Test]
    public void RejectsFilesNumpyWroteInUnsupportedForms()
    {
        var fortran = Assert.Throws<InvalidDataException>(
            () => Npy.Read(IoTestData.Path("io", "npy", "bad_fortran.npy")));
        Assert.That(fortran!.Message, Does.Contain("fortran_order is True").And.Contain("bad_fortran.npy"));
        var big = Assert.Throws<InvalidDataException>(
            () => Npy.Read(IoTestData.Path("io", "npy", "bad_bigendian.npy")));
        Assert.That(big!.Message, Does.Contain("big-endian dtype '>f4'"));
        var i4 = Assert.Throws<InvalidDataException>(() => Npy.Read(IoTestData.Path("io", "npy", "bad_i4.npy")));
        Assert.That(i4!.Message, Does.Contain("unsupported dtype '<i4'").And.Contain("'<f4'"));
    }

    [Test]
    public void RejectsBadMagicAndVersions()
    {
        Rejected([], "not an .npy file");
        Rejected("PK\x03\x04 this is a zip file"u8.ToArray(), "expected the magic");
        byte[] v9 = WithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4);
        v9[6] = 9;
        Rejected(v9, "unsupported format version 9.0");
    }

    [Test]
    public void RejectsTruncatedFiles()
    {
        byte[] good = Npy.Encode(new float[] { 1, 2, 3, 4 }, [2, 2]);
        Rejected(good[..^1], "truncated data", "(2, 2)", "needs 16 bytes", "only 15");
        Rejected(good[..40], "truncated header");
        Rejected(good[..9], "not an .npy file");
        byte[] extra = [.. good, 0];
        Rejected(extra, "1 unexpected bytes");
    }

    [Test]
    public void RejectsMalformedHeaders()
    {
        Rejected(WithHeader("{'descr': '<f4', 'fortran_order': False}", 0), "missing key 'shape'");
        Rejected(WithHeader("{'descr': '<f4', 'shape': (1,)}", 4), "missing key 'fortran_order'");
        Rejected(WithHeader("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", 4), "True or False");
        Rejected(WithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 4), "not a non-negative");
        Rejected(WithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4),
            "unexpected key 'x'");
        Rejected(WithHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", 4), "structured");
        Rejected(WithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", 4), "expected '}'");
        Rejected(WithHeader("{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", 4), "bad header");
        Rejected(WithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk", 4), "after the closing");
        Rejected(WithHeader("{'descr': '<U3', 'fortran_order': False, 'shape': (1,)}", 12), "unsupported dtype '<U3'");
        // A valid header in the version 2.0 layout parses.
        Assert.That(Npy.Parse(WithHeader("{'descr': '<i8', 'fortran_order': False, 'shape': (1L,)}", 8, major: 2))
            .ToInt64(), Is.EqualTo(new[] { 0L }));
    }

    [Test]
    public void WriterValidatesArguments()
    {
        var error = Assert.Throws<ArgumentException>(
            () => Npy.Write(Path.Combine(Folder, "x.npy"), new float[5], [2, 2]));
        Assert.That(error!.Message, Does.Contain("(2, 2) has 4 elements but the data has 5"));
        Assert.That(error.ParamName, Is.EqualTo("shape"));
        Assert.Throws<ArgumentException>(() => Npy.Write(Path.Combine(Folder, "x.npy"), new float[0], [-1]));
        Assert.Throws<ArgumentException>(() => Npy.Write("", new float[1], [1]));
        Assert.That(Directory.GetFiles(Folder), Is.Empty, "a rejected write creates no file");
        Assert.Throws<FileNotFoundException>(() => Npy.Read(Path.Combine(Folder, "none.npy")));
    }
}
