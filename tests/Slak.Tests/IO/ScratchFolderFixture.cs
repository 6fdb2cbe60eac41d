// What the file-format tests share: a fresh scratch folder per test (IoTestData.NewScratchFolder), deleted with what
// the test left in it.
using NUnit.Framework;

namespace Slak.Tests.IO;

/// <summary>Base of the fixtures whose tests write files.</summary>
public abstract class ScratchFolderFixture
{
    /// <summary>The current test's scratch folder (empty at the start of each test).</summary>
    private protected string Folder { get; private set; } = "";

    [SetUp]
    public void CreateScratchFolder() => Folder = IoTestData.NewScratchFolder();

    [TearDown]
    public void DeleteScratchFolder() => Directory.Delete(Folder, recursive: true);
}
