// Shared helpers of the IO tests: fixture paths, a scratch folder per test, and a logged random seed.
using NUnit.Framework;

namespace Slak.Tests.IO;

internal static class IoTestData
{
    public static string Path(params string[] parts) =>
        System.IO.Path.Combine([TestContext.CurrentContext.TestDirectory, "TestData", .. parts]);

    /// <summary>A fresh empty folder for one test (deleted by the caller's TearDown).</summary>
    public static string NewScratchFolder()
    {
        string folder = System.IO.Path.Combine(
            System.IO.Path.GetTempPath(), "slak-io-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>A seed that changes per run; put it in assertion messages so a failure can be replayed.</summary>
    public static int NewSeed() => Environment.TickCount ^ Guid.NewGuid().GetHashCode();
}
