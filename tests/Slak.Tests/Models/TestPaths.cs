// Where the committed fixtures land in the test output folder (tests/TestData is copied as TestData/).
using NUnit.Framework;

namespace Slak.Tests.Models;

internal static class TestPaths
{
    public static string Data(params string[] parts) =>
        Path.Combine([TestContext.CurrentContext.TestDirectory, "TestData", .. parts]);
}
