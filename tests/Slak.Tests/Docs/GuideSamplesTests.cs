// The C# guide (docs/csharp.md) shows only code that compiles and runs: every C# block in it is preceded by a
// marker `<!-- sample: samples/<Project>/<File>.cs#<region> -->` and must equal, line for line, the region
// `// #region <region>` ... `// #endregion` of that sample file (the samples are built and run against the packed
// NuGet feed by tools/package-check.sh in CI). A block without a marker, a marker without a block, a missing file or
// region, and any difference fail with the first differing line.
using NUnit.Framework;
using Slak.Tests.Cuda;

namespace Slak.Tests.Docs;

public sealed class GuideSamplesTests
{
    private static string Root() =>
        NvrtcTestSupport.RepositoryRoot() ?? throw new IgnoreException("repository root (Slak.Cuda.sln) not found above the test folder");

    [Test]
    public void EveryCodeBlockOfTheGuideIsARegionOfACompiledSample()
    {
        string root = Root();
        var guide = File.ReadAllLines(Path.Combine(root, "docs", "csharp.md"));
        int blocks = 0;
        for (int i = 0; i < guide.Length; i++)
        {
            if (!guide[i].StartsWith("```csharp", StringComparison.Ordinal)) continue;
            blocks++;
            int marker = i - 1;
            while (marker >= 0 && guide[marker].Length == 0) marker--;
            Assert.That(marker >= 0 && guide[marker].StartsWith("<!-- sample: ", StringComparison.Ordinal), Is.True,
                $"docs/csharp.md line {i + 1}: a C# block needs a '<!-- sample: path#region -->' marker above it");
            string spec = guide[marker]["<!-- sample: ".Length..].Replace("-->", "", StringComparison.Ordinal).Trim();
            var parts = spec.Split('#');
            Assert.That(parts, Has.Length.EqualTo(2), $"docs/csharp.md line {marker + 1}: marker '{spec}' must be path#region");
            int end = Array.FindIndex(guide, i + 1, l => l.StartsWith("```", StringComparison.Ordinal));
            Assert.That(end, Is.GreaterThan(i), $"docs/csharp.md line {i + 1}: unterminated code block");
            var block = guide[(i + 1)..end];
            var region = Region(Path.Combine(root, parts[0]), parts[1]);
            Compare(block, region, $"docs/csharp.md line {i + 2} vs {parts[0]}#{parts[1]}");
            i = end;
        }
        Assert.That(blocks, Is.GreaterThan(0), "docs/csharp.md has no C# blocks");
    }

    private static string[] Region(string file, string name)
    {
        Assert.That(File.Exists(file), Is.True, $"sample file {file} does not exist");
        var lines = File.ReadAllLines(file);
        int start = Array.FindIndex(lines, l => l.Trim() == $"// #region {name}");
        Assert.That(start, Is.GreaterThanOrEqualTo(0), $"{file} has no '// #region {name}'");
        int end = Array.FindIndex(lines, start + 1, l => l.Trim() == "// #endregion");
        Assert.That(end, Is.GreaterThan(start), $"{file}: region {name} has no '// #endregion'");
        return lines[(start + 1)..end];
    }

    private static void Compare(string[] block, string[] region, string what)
    {
        int n = Math.Max(block.Length, region.Length);
        for (int k = 0; k < n; k++)
        {
            string? a = k < block.Length ? block[k].TrimEnd() : null;
            string? b = k < region.Length ? region[k].TrimEnd() : null;
            Assert.That(a, Is.EqualTo(b), $"{what}: line {k + 1} of the block differs from the sample");
        }
    }
}
