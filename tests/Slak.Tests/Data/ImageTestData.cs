// Paths of the committed image test data (tools/make_image_folder.py) and a reader for its uint8 .npy files
// (the library's Npy reader takes float and int64 arrays only).
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Slak.Tests.Data;

internal static partial class ImageTestData
{
    public static string Path(params string[] parts) =>
        System.IO.Path.Combine([TestContext.CurrentContext.TestDirectory, "TestData", "images", .. parts]);

    /// <summary>A fresh scratch folder (the caller deletes it).</summary>
    public static string NewScratchFolder()
    {
        string folder = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "slak-image-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>A uint8 .npy array: its bytes and shape.</summary>
    public static (byte[] Data, int[] Shape) ReadUInt8Npy(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.That(bytes.AsSpan(0, 6).SequenceEqual(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y' }), Is.True, path);
        int major = bytes[6];
        int headerLen = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
        int start = major == 1 ? 10 : 12;
        string header = System.Text.Encoding.ASCII.GetString(bytes, start, headerLen);
        Assert.That(header, Does.Contain("'|u1'").And.Contain("'fortran_order': False"), path);
        var shape = ShapePattern().Match(header).Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(int.Parse).ToArray();
        return (bytes.AsSpan(start + headerLen).ToArray(), shape);
    }

    [GeneratedRegex(@"'shape': \(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
