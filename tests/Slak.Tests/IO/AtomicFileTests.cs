// AtomicFile: the new content replaces the old one whole, and a failed write leaves the old file and no temp file.
using Slak.IO;
using NUnit.Framework;

namespace Slak.Tests.IO;

[TestFixture]
public sealed class AtomicFileTests : ScratchFolderFixture
{
    [Test]
    public void WriteCreatesAndReplacesTheFile()
    {
        string path = Path.Combine(Folder, "a.bin");
        AtomicFile.WriteAllBytes(path, [1, 2, 3]);
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 1, 2, 3 }));
        AtomicFile.WriteAllText(path, "new content");
        Assert.That(File.ReadAllText(path), Is.EqualTo("new content"));
        Assert.That(Directory.GetFiles(Folder), Has.Length.EqualTo(1), "no temp file may be left behind");
    }

    [Test]
    public void FailedWriteKeepsTheOldFileAndRemovesTheTempFile()
    {
        string path = Path.Combine(Folder, "keep.txt");
        AtomicFile.WriteAllText(path, "old");
        var error = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[1000]);
            throw new InvalidOperationException("disk full (simulated)");
        }));
        Assert.That(error!.Message, Does.Contain("simulated"));
        Assert.That(File.ReadAllText(path), Is.EqualTo("old"));
        Assert.That(Directory.GetFiles(Folder), Is.EqualTo(new[] { path }), "temp file left behind");
    }

    [Test]
    public void MissingFolderIsReportedWithThePath()
    {
        string path = Path.Combine(Folder, "no-such-folder", "x.bin");
        var error = Assert.Throws<DirectoryNotFoundException>(() => AtomicFile.WriteAllBytes(path, [1]));
        Assert.That(error!.Message, Does.Contain("no-such-folder"));
    }

    [Test]
    public void ArgumentsAreValidated()
    {
        Assert.Throws<ArgumentException>(() => AtomicFile.WriteAllBytes("", [1]));
        Assert.Throws<ArgumentNullException>(() => AtomicFile.Write(Path.Combine(Folder, "x"), null!));
        var error = Assert.Throws<ArgumentException>(() => AtomicFile.WriteAllBytes(Folder, [1]));
        Assert.That(error!.Message, Does.Contain("is a folder"));
    }
}
