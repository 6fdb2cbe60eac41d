// Compiles EVERY embedded kernel file with the NVRTC found here (Debian's 11.8 in CI) for sm_80 and sm_90 with
// the ptxas report on, and fails when a kernel spills registers or needs a stack frame (local memory), unless it
// is allow-listed below with a reason. With SLAK_WRITE_KERNEL_REPORT=1 it also writes the per-kernel resource
// table to bench/results/kernel-resources.md. New cuda/kernels/*.cu files are picked up automatically.
using NUnit.Framework;
using System.Globalization;
using System.Text;
using Slak.Cuda.Compilation;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class NvrtcCompileAllKernelsTests
{
    /// <summary>Kernels allowed to use local memory, with the reason. Keep it short and justified.</summary>
    private static readonly Dictionary<string, string> LocalMemoryAllowed = new(StringComparer.Ordinal)
    {
        // The module compiled without its SLAK_DWS_* / SLAK_DW_K* defines (this test's generic compile): the launcher
        // always compiles the specialisation, whose no-local-memory check is KernelsCommandTests' and
        // DwConvSmallKernelTests'; the generic per-output loop runs on the emulator only.
        ["dwconv_small_kernel"] = "generic (unspecialised) body, never launched on a GPU; specialisations are checked spill-free elsewhere",
    };

    private static readonly (int Major, int Minor)[] Architectures = [(8, 0), (9, 0)];

    [Test]
    public void EveryKernelCompilesForSm80AndSm90WithoutLocalMemory()
    {
        NvrtcTestSupport.RequireNvrtc();
        KernelSources sources = KernelSources.Embedded;
        var compiler = new NvrtcCompiler(sources);
        var rows = new List<KernelResources>();
        var failures = new List<string>();

        foreach (string file in sources.KernelFiles)
        {
            foreach ((int major, int minor) in Architectures)
            {
                var options = new CompileOptions(major, minor) { PtxasVerbose = true };
                CompiledModule module;
                try
                {
                    module = compiler.Compile(file, options);
                }
                catch (NvrtcCompileException e)
                {
                    failures.Add($"{file} sm_{major}{minor}: does not compile:\n{e.Log}");
                    continue;
                }

                IReadOnlyList<KernelResources> report = module.Resources;
                rows.AddRange(report);
                IEnumerable<string> missing = sources.KernelsInFile(file).Except(report.Select(r => r.Kernel));
                failures.AddRange(missing.Select(k => $"{file} sm_{major}{minor}: kernel '{k}' absent from the ptxas report"));
                failures.AddRange(report
                    .Where(r => r.UsesLocalMemory && !LocalMemoryAllowed.ContainsKey(r.Kernel))
                    .Select(r => $"{file} {r.Architecture}: '{r.Kernel}' uses local memory: stack frame " +
                                 $"{r.StackFrameBytes} B, spill stores {r.SpillStoreBytes} B, spill loads " +
                                 $"{r.SpillLoadBytes} B, {r.Registers} registers (fix it or allow-list it with a reason)"));
            }
        }

        TestContext.Out.WriteLine($"NVRTC {compiler.Version.Major}.{compiler.Version.Minor} ({compiler.LibraryPath}): " +
                                  $"{sources.KernelFiles.Count} kernel files, {sources.KernelToFile.Count} kernels, " +
                                  $"{rows.Count} (kernel, arch) reports");
        TestContext.Out.Write(FormatTable(rows));
        if (Environment.GetEnvironmentVariable("SLAK_WRITE_KERNEL_REPORT") == "1")
        {
            WriteReport(compiler, rows);
        }

        Assert.That(failures, Is.Empty, string.Join("\n", failures));
        Assert.That(rows.Select(r => r.Kernel).Distinct().Order(StringComparer.Ordinal),
            Is.EqualTo(sources.KernelToFile.Keys.Order(StringComparer.Ordinal)), "every kernel reported");
        Assert.That(rows, Has.Count.EqualTo(sources.KernelToFile.Count * Architectures.Length));
    }

    [Test]
    public void AllowListNamesOnlyExistingKernelsWithReasons()
    {
        foreach ((string kernel, string reason) in LocalMemoryAllowed)
        {
            Assert.That(KernelSources.Embedded.KernelToFile.ContainsKey(kernel), Is.True, $"allow-listed '{kernel}' does not exist");
            Assert.That(reason, Has.Length.GreaterThan(10), $"allow-listed '{kernel}' needs a real reason");
        }

        Assert.That(LocalMemoryAllowed.Keys, Is.Unique);
    }

    private static string FormatTable(IReadOnlyList<KernelResources> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| kernel | arch | registers | static shared bytes | stack frame bytes | spill stores | spill loads |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|");
        foreach (KernelResources r in rows.OrderBy(r => r.Kernel, StringComparer.Ordinal).ThenBy(r => r.Architecture, StringComparer.Ordinal))
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Kernel} | {r.Architecture} | {r.Registers} | {r.SharedBytes} | {r.StackFrameBytes} | " +
                $"{r.SpillStoreBytes} | {r.SpillLoadBytes} |");
        }

        return sb.ToString();
    }

    private static void WriteReport(NvrtcCompiler compiler, IReadOnlyList<KernelResources> rows)
    {
        string root = NvrtcTestSupport.RepositoryRoot()
            ?? throw new InvalidOperationException("SLAK_WRITE_KERNEL_REPORT=1 but the repository root was not found");
        string folder = Path.Combine(root, "bench", "results");
        Directory.CreateDirectory(folder);
        var sb = new StringBuilder();
        sb.AppendLine("# Kernel resources (ptxas report)");
        sb.AppendLine();
        sb.AppendLine("Written by `NvrtcCompileAllKernelsTests` with `SLAK_WRITE_KERNEL_REPORT=1`: every kernel of");
        sb.AppendLine("`cuda/kernels/` compiled to CUBIN by NVRTC with `-Xptxas -v`. Static shared memory only (dynamic");
        sb.AppendLine("shared memory is chosen at launch). Any stack frame or spill fails the test unless allow-listed.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"- Date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"- NVRTC: {compiler.Version.Major}.{compiler.Version.Minor} (`{compiler.LibraryPath}`)");
        sb.AppendLine(CultureInfo.InvariantCulture, $"- Machine: {CpuModel()}, {Environment.ProcessorCount} cores (compile only, no GPU)");
        sb.AppendLine();
        sb.Append(FormatTable(rows));
        string path = Path.Combine(folder, "kernel-resources.md");
        File.WriteAllText(path, sb.ToString());
        TestContext.Out.WriteLine($"wrote {path}");
    }

    private static string CpuModel()
    {
        try
        {
            string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? "unknown CPU" : line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }
}
