// docs/environment.md lists every SLAK_* environment variable that code reads: the C# sources (a string literal
// "SLAK_..." passed to or named for GetEnvironmentVariable), the Python package and tests (os.environ) and the
// shell scripts (${SLAK_...}). A variable read but not documented, or documented but read nowhere, fails here.
using System.Text.RegularExpressions;
using NUnit.Framework;
using Slak.Tests.Cuda;

namespace Slak.Tests.Docs;

public sealed partial class EnvironmentVariableTests
{
    // C#: GetEnvironmentVariable("SLAK_X"), a constant named ...Variable = "SLAK_X", an environment dictionary
    // entry ["SLAK_X"]; Python: os.environ.get("SLAK_X"), os.environ["SLAK_X"] (or a conditional "else" choice).
    [GeneratedRegex(@"(?:GetEnvironmentVariable\(|Variable\s*=\s*|\[|environ\.get\(|\belse\s)""(SLAK_[A-Z0-9_]+)""")]
    private static partial Regex QuotedName();

    [GeneratedRegex(@"\$\{?(SLAK_[A-Z0-9_]+)")]
    private static partial Regex ShellName();

    [GeneratedRegex(@"^\| (?<names>`SLAK_[^|]+) \|", RegexOptions.Multiline)]
    private static partial Regex DocRow();

    [GeneratedRegex(@"`(SLAK_[A-Z0-9_]+)`")]
    private static partial Regex DocName();

    private static IEnumerable<string> Sources(string root) =>
        new[] { "src", "tests/Slak.Tests", "bench/Slak.Bench", "bench/Slak.GpuCheck", "bench/gpu", "python", "tools", ".ci" }
            .Select(d => Path.Combine(root, d)).Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal)
                        && !f.Contains("__pycache__", StringComparison.Ordinal)
                        && (f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".py", StringComparison.Ordinal)
                            || f.EndsWith(".sh", StringComparison.Ordinal) || Path.GetFileName(f) is "run" or "setup"))
            .Append(Path.Combine(root, "slak"));

    [Test]
    public void EveryEnvironmentVariableReadIsDocumented()
    {
        string root = NvrtcTestSupport.RepositoryRoot() ?? throw new IgnoreException("repository root not found");
        var read = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var file in Sources(root).Where(File.Exists))
        {
            if (file.EndsWith(nameof(EnvironmentVariableTests) + ".cs", StringComparison.Ordinal)) continue;
            string text = File.ReadAllText(file);
            var names = file.EndsWith(".cs", StringComparison.Ordinal) || file.EndsWith(".py", StringComparison.Ordinal)
                ? QuotedName().Matches(text).Select(m => m.Groups[1].Value)
                : ShellName().Matches(text).Select(m => m.Groups[1].Value);
            read.UnionWith(names);
        }
        var doc = File.ReadAllText(Path.Combine(root, "docs", "environment.md"));
        var documented = new SortedSet<string>(DocRow().Matches(doc)
            .SelectMany(m => DocName().Matches(m.Groups["names"].Value).Select(n => n.Groups[1].Value)), StringComparer.Ordinal);
        Assert.That(read.Except(documented), Is.Empty, "read but not in docs/environment.md");
        Assert.That(documented.Except(read), Is.Empty, "in docs/environment.md but read nowhere");
    }
}
