// The GPU check must have a row for every `extern "C" __global__` kernel of cuda/kernels (named by the kernel), and no
// kernel row may name a kernel that does not exist. The kernel list comes from the .cu files on disk (the same
// parser NVRTC's kernel lookup uses); the emulator's self-test kernels (selftest_*) are test-only and excluded.
// Every kernel also needs a parity test: a test marked [KernelParity("<kernel>")] (which fails on cuda-emu when
// the kernel does not launch) in a fixture that runs on the emulator (a device argument, or an emulator fixture).
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.GpuCheck;
using System.Reflection;
using Slak.Tests.Cuda;
using Slak.Tests.Support;

namespace Slak.Tests.GpuCheck;

[TestFixture]
public class GpuCheckCoverageTests
{
    private static IReadOnlyList<string> SourceKernels()
    {
        string root = NvrtcTestSupport.RepositoryRoot() ?? throw new InconclusiveException("repository root not found");
        var sources = KernelSources.FromDirectory(Path.Combine(root, "cuda"));
        return sources.KernelToFile.Keys.Where(k => !k.StartsWith("selftest_", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToList();
    }

    [Test]
    public void EveryKernelOfCudaKernelsHasARow()
    {
        var kernels = SourceKernels();
        Assert.That(kernels, Has.Count.GreaterThan(40), "the kernel parser found too few kernels");
        var rows = CaseCatalog.KernelNames;
        var missing = kernels.Except(rows).ToList();
        Assert.That(missing, Is.Empty, $"kernels without a GPU-check row: {string.Join(", ", missing)}");
    }

    [Test]
    public void EveryKernelRowNamesAnExistingKernel()
    {
        var kernels = SourceKernels().ToHashSet();
        var stale = CaseCatalog.KernelNames.Where(n => !kernels.Contains(n)).ToList();
        Assert.That(stale, Is.Empty, $"rows named after kernels that do not exist: {string.Join(", ", stale)}");
    }

    [Test]
    public void EveryKernelOfCudaKernelsHasAParityTest()
    {
        var marked = typeof(GpuCheckCoverageTests).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            .Select(m => (Method: m, Attr: m.GetCustomAttribute<KernelParityAttribute>()))
            .Where(p => p.Attr is not null).ToList();
        var notTests = marked.Where(p => !p.Method.GetCustomAttributes().Any(a => a is TestAttribute or TestCaseAttribute or TestCaseSourceAttribute))
            .Select(p => $"{p.Method.DeclaringType!.Name}.{p.Method.Name}").ToList();
        Assert.That(notTests, Is.Empty, "[KernelParity] on methods that are not tests");
        var covered = marked.SelectMany(p => p.Attr!.Kernels).ToHashSet(StringComparer.Ordinal);
        var kernels = SourceKernels();
        Assert.That(kernels.Where(k => !covered.Contains(k)), Is.Empty, "kernels without a parity test ([KernelParity])");
        Assert.That(covered.Where(k => !kernels.Contains(k)), Is.Empty, "[KernelParity] names kernels that do not exist");
    }

    [Test]
    public void ListOptionPrintsEveryCaseWithItsGroup()
    {
        using var output = new StringWriter();
        int exit = CheckApp.Run(["--list", "--scale", "tiny"], output);
        Assert.That(exit, Is.Zero);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var names = lines.Select(l => l.Split('\t')[1]).ToHashSet();
        Assert.That(SourceKernels().Where(k => !names.Contains(k)), Is.Empty);
        Assert.That(names.Count(n => n.StartsWith("e2e ", StringComparison.Ordinal)), Is.EqualTo(3), "two training rows and one inference row");
    }

    [Test]
    public void FullScaleIsSlakTinyAtBatch128On224Pixels()
    {
        var s = Sizes.For(full: true);
        Assert.That((s.B, s.Image), Is.EqualTo((128, 224)));
        Assert.That(s.C, Is.EqualTo(new[] { 124, 249, 499, 998 }));
        Assert.That(s.H, Is.EqualTo(new[] { 56, 28, 14, 7 }));
        Assert.That(s.M, Is.EqualTo(new[] { 51, 49, 47, 13 }));
        var e2e = CaseCatalog.All(CheckOptions.Parse(["--scale", "full"])).Where(c => c.EndToEnd).Select(c => c.Name).ToList();
        Assert.That(e2e, Is.EqualTo(new[]
        {
            "e2e slak_tiny train b64", "e2e slak_tiny train b128", "e2e slak_tiny infer b128",
            "e2e slak_tiny train b128 tf32", "e2e slak_tiny infer b128 tf32", "e2e slak_tiny train b128 bf16", "e2e slak_tiny infer b128 bf16",
        }));
    }

    [Test]
    public void CaseGroupsAreContiguous()
    {
        // One child process per group: a group split in two would run twice.
        var groups = CaseCatalog.All(CheckOptions.Parse([])).Select(c => c.Group).ToList();
        var seen = new HashSet<string>();
        for (int i = 0; i < groups.Count; i++)
        {
            if (i > 0 && groups[i] == groups[i - 1]) continue;
            Assert.That(seen.Add(groups[i]), Is.True, $"group {groups[i]} appears in two places");
        }
    }
}
