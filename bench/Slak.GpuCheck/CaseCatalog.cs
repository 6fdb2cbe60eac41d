// Every case of the check, in table order, grouped (one child process per group under --isolate process). The
// kernel rows cover every `extern "C" __global__` kernel of cuda/kernels except the emulator's self-test kernels
// (selftest_*, test-only); GpuCheckCoverageTests fails when a kernel has no row.
namespace Slak.GpuCheck;

/// <summary>The case list.</summary>
internal static class CaseCatalog
{
    /// <summary>Every case for <paramref name="options"/> (scale decides the end-to-end rows' names), before
    /// filters.</summary>
    public static IReadOnlyList<GpuCase> All(CheckOptions options) =>
    [
        .. Cases.Kernels(),
        .. EndToEnd.Cases(options.Full),
    ];

    /// <summary>The cases selected by --only, --group and --no-e2e, in table order; with --kernel, that kernel's rows
    /// at the user's shape instead.</summary>
    public static IReadOnlyList<GpuCase> Select(CheckOptions options)
    {
        if (options.Kernel is not null) return Cases.UserCases(options);
        var all = All(options);
        foreach (string name in options.Only.Where(n => all.All(c => c.Name != n)))
        {
            throw new ArgumentException($"--only: no case named '{name}' (see --list)");
        }

        foreach (string group in options.Groups.Where(gr => all.All(c => c.Group != gr)))
        {
            throw new ArgumentException($"--group: no group named '{group}' (groups: {string.Join(", ", all.Select(c => c.Group).Distinct())})");
        }

        return all.Where(c => (options.Only.Count == 0 || options.Only.Contains(c.Name))
                              && (options.Groups.Count == 0 || options.Groups.Contains(c.Group))
                              && (options.EndToEnd || !c.EndToEnd)).ToList();
    }

    /// <summary>The distinct kernel names that have a row (the coverage test compares them with the sources).</summary>
    public static IReadOnlyList<string> KernelNames =>
        Cases.Kernels().Select(c => c.Name).Where(n => n.EndsWith("_kernel", StringComparison.Ordinal)).Distinct().Order(StringComparer.Ordinal).ToList();
}

internal static partial class Cases
{
    /// <summary>The kernel rows, by family.</summary>
    public static IEnumerable<GpuCase> Kernels() =>
        Elementwise().Concat(Activations()).Concat(Reductions()).Concat(Norms()).Concat(LossAndOptimizer())
            .Concat(Conv2d()).Concat(Patchify()).Concat(DwConv()).Concat(Fused()).Concat(Strip()).Concat(Live()).Concat(Sparse()).Concat(Gemm()).Concat(Precision());
}
