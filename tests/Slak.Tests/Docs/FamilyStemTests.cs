// One name per operator family (docs/layout.md): every kernel file cuda/kernels/<stem>[_variant].cu belongs to the
// family <stem>, and the family's launcher, CPU implementation, tests and benchmark carry the same stem:
// src/Slak.Cuda/Kernels/<Stem>Kernels.cs, src/Slak/Backends/Cpu/CpuBackend.<Stem>[.<part>].cs, a test file
// <Stem>*Tests.cs (or a test folder <Stem>/) and a benchmark file <Stem>*.cs (or a benchmark folder <Stem>/) with a
// [Benchmark] method. Launcher and CPU backend files that name no family fail too, so a file cannot drift away
// from the scheme. The stems and their C# spelling are listed once, in docs/layout.md, which this test reads.
using System.Text.RegularExpressions;
using NUnit.Framework;
using Slak.Tests.Cuda;

namespace Slak.Tests.Docs;

public sealed partial class FamilyStemTests
{
    private static string Root() =>
        NvrtcTestSupport.RepositoryRoot() ?? throw new IgnoreException("repository root not found");

    [GeneratedRegex(@"^\| `(?<stem>[a-z0-9]+)` \| `(?<pascal>[A-Za-z0-9]+)` \|", RegexOptions.Multiline)]
    private static partial Regex StemRow();

    /// <summary>The stems of docs/layout.md's table: kernel-file stem to C# spelling.</summary>
    private static Dictionary<string, string> DocumentedStems()
    {
        var text = File.ReadAllText(Path.Combine(Root(), "docs", "layout.md"));
        return StemRow().Matches(text).ToDictionary(m => m.Groups["stem"].Value, m => m.Groups["pascal"].Value);
    }

    private static SortedSet<string> KernelFamilies() =>
        new(Directory.GetFiles(Path.Combine(Root(), "cuda", "kernels"), "*.cu")
            .Select(f => Path.GetFileNameWithoutExtension(f).Split('_')[0]), StringComparer.Ordinal);

    private static IEnumerable<string> Files(string dir, string pattern) =>
        Directory.GetFiles(Path.Combine(Root(), dir), pattern, SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    private static bool HasFileOrFolder(string dir, string pascal, string fileSuffix, Func<string, bool> accept) =>
        Files(dir, "*.cs").Any(f =>
            (Path.GetFileName(f).StartsWith(pascal, StringComparison.Ordinal) && Path.GetFileName(f).EndsWith(fileSuffix, StringComparison.Ordinal)
             || Path.GetFileName(Path.GetDirectoryName(f)!) == pascal) && accept(f));

    [Test]
    public void EveryKernelFamilyIsDocumentedWithItsSpelling()
    {
        var stems = DocumentedStems();
        Assert.That(KernelFamilies(), Is.EquivalentTo(stems.Keys),
            "the families of cuda/kernels/*.cu and the stem table of docs/layout.md disagree");
        foreach (var (stem, pascal) in stems)
            Assert.That(pascal.ToLowerInvariant(), Is.EqualTo(stem), $"{pascal} is not a spelling of the stem {stem}");
    }

    [Test]
    public void EveryFamilyHasALauncherACpuImplementationATestAndABenchmark()
    {
        var problems = new List<string>();
        foreach (var (stem, p) in DocumentedStems())
        {
            if (!File.Exists(Path.Combine(Root(), "src", "Slak.Cuda", "Kernels", $"{p}Kernels.cs")))
                problems.Add($"{stem}: no launcher src/Slak.Cuda/Kernels/{p}Kernels.cs");
            if (!File.Exists(Path.Combine(Root(), "src", "Slak", "Backends", "Cpu", $"CpuBackend.{p}.cs")))
                problems.Add($"{stem}: no CPU implementation src/Slak/Backends/Cpu/CpuBackend.{p}.cs");
            if (!HasFileOrFolder("tests/Slak.Tests", p, "Tests.cs", _ => true))
                problems.Add($"{stem}: no test file tests/Slak.Tests/**/{p}*Tests.cs and no folder {p}/");
            if (!HasFileOrFolder("bench/Slak.Bench", p, ".cs", f => File.ReadAllText(f).Contains("[Benchmark", StringComparison.Ordinal)))
                problems.Add($"{stem}: no benchmark bench/Slak.Bench/**/{p}*.cs with a [Benchmark] method");
        }
        Assert.That(problems, Is.Empty, string.Join("\n", problems));
    }

    [Test]
    public void EveryKernelFileHasALauncherOfItsName()
    {
        // dwconv_fused.cu -> DwConvFusedKernels.cs: the family's spelling, then each variant word capitalised.
        var stems = DocumentedStems();
        var missing = new List<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(Root(), "cuda", "kernels"), "*.cu"))
        {
            var parts = Path.GetFileNameWithoutExtension(f).Split('_');
            if (!stems.TryGetValue(parts[0], out var pascal)) continue;  // reported by the documentation test
            string launcher = pascal + string.Concat(parts.Skip(1).Select(w => char.ToUpperInvariant(w[0]) + w[1..])) + "Kernels.cs";
            if (!File.Exists(Path.Combine(Root(), "src", "Slak.Cuda", "Kernels", launcher)))
                missing.Add($"{Path.GetFileName(f)}: no launcher src/Slak.Cuda/Kernels/{launcher}");
        }
        Assert.That(missing, Is.Empty, string.Join("\n", missing));
    }

    [Test]
    public void LauncherAndCpuBackendFilesNameAFamily()
    {
        var spellings = DocumentedStems().Values.ToHashSet(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var f in Files("src/Slak.Cuda/Kernels", "*Kernels.cs"))
        {
            string name = Path.GetFileNameWithoutExtension(f)[..^"Kernels".Length];
            if (!spellings.Any(sp => name.StartsWith(sp, StringComparison.Ordinal)))
                problems.Add($"launcher {Path.GetFileName(f)} names no family");
        }
        foreach (var f in Files("src/Slak/Backends/Cpu", "CpuBackend.*.cs"))
        {
            string family = Path.GetFileName(f).Split('.')[1];
            if (!spellings.Contains(family)) problems.Add($"CPU implementation {Path.GetFileName(f)} names no family");
        }
        Assert.That(problems, Is.Empty, string.Join("\n", problems));
    }
}
