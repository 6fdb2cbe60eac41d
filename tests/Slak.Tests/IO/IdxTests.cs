// IDX: raw and gzip files written by Python read back; bad magic, wrong rank, truncated header/data/gzip and
// trailing bytes are rejected with a message; the MNIST-layout folder loader reports missing files with
// the install hint.
using System.Buffers.Binary;
using System.IO.Compression;
using NUnit.Framework;
using Slak.IO;

namespace Slak.Tests.IO;

[TestFixture]
public sealed class IdxTests : ScratchFolderFixture
{
    private static byte[] Images(int n, int rows, int cols, int dataBytes = -1)
    {
        int len = dataBytes >= 0 ? dataBytes : n * rows * cols;
        var bytes = new byte[16 + len];
        BinaryPrimitives.WriteInt32BigEndian(bytes, Idx.ImagesMagic);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), n);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(12), cols);
        for (int i = 0; i < len; i++) bytes[16 + i] = (byte)(i * 7 % 256);
        return bytes;
    }

    private static byte[] Labels(params byte[] labels)
    {
        var bytes = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, Idx.LabelsMagic);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), labels.Length);
        labels.CopyTo(bytes, 8);
        return bytes;
    }

    private static byte[] Gzip(byte[] raw)
    {
        using var memory = new MemoryStream();
        using (var gz = new GZipStream(memory, CompressionLevel.Fastest)) gz.Write(raw);
        return memory.ToArray();
    }

    private static void Rejected(byte[] content, params string[] phrases)
    {
        var error = Assert.Throws<InvalidDataException>(() => Idx.Parse(content, "bad-idx"));
        Assert.That(error!.Message, Does.Contain("bad-idx"));
        foreach (string p in phrases) Assert.That(error.Message, Does.Contain(p));
    }

    [Test]
    public void ReadsRawAndGzipFilesWrittenByPython()
    {
        byte[] expected = Enumerable.Range(0, 60).Select(i => (byte)(i * 7 % 256)).ToArray();
        foreach (string suffix in new[] { "", ".gz" })
        {
            var images = Idx.ReadImages(IoTestData.Path("io", "idx", "images-idx3-ubyte" + suffix));
            Assert.That(images.Magic, Is.EqualTo(0x803));
            Assert.That(images.Dims, Is.EqualTo(new[] { 3, 4, 5 }));
            Assert.That(images.Data, Is.EqualTo(expected));
            var labels = Idx.ReadLabels(IoTestData.Path("io", "idx", "labels-idx1-ubyte" + suffix));
            Assert.That(labels.Dims, Is.EqualTo(new[] { 3 }));
            Assert.That(labels.Data, Is.EqualTo(new byte[] { 0, 9, 4 }));
        }
    }

    [Test]
    public void RejectsBadMagic()
    {
        byte[] bad = Images(1, 2, 2);
        bad[0] = 1;
        Rejected(bad, "bad magic 0x01000803", "two zero bytes");
        bad = Images(1, 2, 2);
        bad[2] = 0x0D; // float32 elements
        Rejected(bad, "element type 0x0D");
        bad = Images(1, 2, 2);
        bad[3] = 9;
        Rejected(bad, "9 dimensions");
        var error = Assert.Throws<InvalidDataException>(() =>
        {
            string path = Path.Combine(Folder, "labels-as-images");
            File.WriteAllBytes(path, Labels(1, 2));
            Idx.ReadImages(path);
        });
        Assert.That(error!.Message, Does.Contain("0x00000801").And.Contain("expected 0x00000803"));
    }

    [Test]
    public void RejectsTruncatedOrOversizedFiles()
    {
        Rejected([0, 0], "too short for the 4-byte magic");
        Rejected(Images(2, 3, 3)[..10], "truncated header");
        Rejected(Images(2, 3, 3, dataBytes: 17), "truncated data", "[2, 3, 3] need 18 bytes", "only 17");
        Rejected(Images(2, 3, 3, dataBytes: 19), "1 unexpected bytes");
        byte[] zero = Images(0, 3, 3);
        Rejected(zero, "dimension 0 is 0");
        // A gzip stream cut short: either the inflater complains or the length check catches it.
        byte[] gz = Gzip(Images(50, 28, 28));
        var error = Assert.Throws<InvalidDataException>(() => Idx.Parse(gz[..(gz.Length / 2)], "cut.gz"));
        Assert.That(error!.Message, Does.Contain("cut.gz").And.Contain("truncated"));
        Assert.That(Idx.Parse(gz).Dims, Is.EqualTo(new[] { 50, 28, 28 }), "the whole gzip file parses");
    }

    [Test]
    public void FolderLoaderReportsMissingFilesAndMismatches()
    {
        var missing = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(Folder));
        Assert.That(missing!.Message, Does.Contain("train-images-idx3-ubyte").And.Contain("dataset-fashion-mnist")
            .And.Contain("/usr/share/datasets/fashion-mnist").And.Contain(Folder));
        Assert.That(FashionMnist.IsAvailable(Folder), Is.False);

        File.WriteAllBytes(Path.Combine(Folder, "train-images-idx3-ubyte.gz"), Gzip(Images(3, 4, 5)));
        File.WriteAllBytes(Path.Combine(Folder, "train-labels-idx1-ubyte"), Labels(0, 9, 4));
        File.WriteAllBytes(Path.Combine(Folder, "t10k-images-idx3-ubyte"), Images(2, 4, 5));
        File.WriteAllBytes(Path.Combine(Folder, "t10k-labels-idx1-ubyte.gz"), Gzip(Labels(1, 2)));
        Assert.That(FashionMnist.IsAvailable(Folder), Is.True);
        var data = FashionMnist.Load(Folder);
        Assert.That(data.Train.Count, Is.EqualTo(3));
        Assert.That(data.Test.Count, Is.EqualTo(2));
        Assert.That((data.Train.Rows, data.Train.Cols), Is.EqualTo((4, 5)));
        Assert.That(data.Train.Labels, Is.EqualTo(new byte[] { 0, 9, 4 }));
        float[] pixels = data.Test.ImagesToFloat32();
        Assert.That(pixels[1], Is.EqualTo(7f / 255f));

        File.WriteAllBytes(Path.Combine(Folder, "t10k-labels-idx1-ubyte.gz"), Gzip(Labels(1, 2, 3)));
        var mismatch = Assert.Throws<InvalidDataException>(() => Mnist.Load(Folder));
        Assert.That(mismatch!.Message, Does.Contain("2 images").And.Contain("3 labels"));
        File.WriteAllBytes(Path.Combine(Folder, "t10k-labels-idx1-ubyte.gz"), Gzip(Labels(1, 10)));
        var label = Assert.Throws<InvalidDataException>(() => Mnist.Load(Folder));
        Assert.That(label!.Message, Does.Contain("label 1 is 10"));
    }

    [Test]
    public void RealFashionMnistLoadsWhenInstalled()
    {
        if (!FashionMnist.IsAvailable())
        {
            Assert.Ignore($"Fashion-MNIST not installed in {FashionMnist.DefaultFolder} "
                + "(apt-get install dataset-fashion-mnist)");
        }
        var data = FashionMnist.Load();
        Assert.That(data.Train.Count, Is.EqualTo(60_000));
        Assert.That(data.Test.Count, Is.EqualTo(10_000));
        Assert.That((data.Train.Rows, data.Train.Cols, data.Test.Rows, data.Test.Cols), Is.EqualTo((28, 28, 28, 28)));
        // Both splits are balanced: 6,000 and 1,000 images of each of the 10 classes.
        Assert.That(data.Train.Labels.CountBy(l => l).Select(g => g.Value), Is.All.EqualTo(6_000));
        Assert.That(data.Test.Labels.CountBy(l => l).Select(g => g.Value), Is.All.EqualTo(1_000));
        Assert.That(data.Train.Labels.Distinct().Order(), Is.EqualTo(Enumerable.Range(0, 10).Select(i => (byte)i)));
        Assert.That(data.Train.Images.Max(), Is.EqualTo(255));
    }
}
