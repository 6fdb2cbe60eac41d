// The ptxas report parser: on a recorded NVRTC 11.8 log (including a noinline device function, whose properties
// belong to no kernel), on malformed input, and on real compilations with and without a stack frame.
using NUnit.Framework;
using Slak.Cuda.Compilation;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class NvrtcPtxasReportTests
{
    private const string RecordedLog = """
        ptxas info    : 0 bytes gmem
        ptxas info    : Function properties for _Z6helperf
        ptxas         .     24 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
        ptxas info    : Compiling entry function 'spilly_kernel' for 'sm_80'
        ptxas info    : Function properties for spilly_kernel
        ptxas         .     40 bytes stack frame, 36 bytes spill stores, 32 bytes spill loads
        ptxas info    : Used 255 registers, 4096 bytes smem, 372 bytes cmem[0]
        ptxas info    : Compiling entry function 'add_kernel' for 'sm_80'
        ptxas info    : Function properties for add_kernel
        ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 10 registers, 364 bytes cmem[0]
        ptxas info    : Compiling entry function 'tiny_kernel' for 'sm_90'
        ptxas info    : Function properties for tiny_kernel
        ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 72 registers

        """;

    [Test]
    public void ParsesEveryEntryOfARecordedLog()
    {
        IReadOnlyList<KernelResources> r = PtxasReport.Parse(RecordedLog.Replace("\n", "\r\n", StringComparison.Ordinal));

        Assert.That(r, Is.EqualTo(new[]
        {
            new KernelResources("spilly_kernel", "sm_80", 255, 4096, 40, 36, 32, 372),
            new KernelResources("add_kernel", "sm_80", 10, 0, 0, 0, 0, 364),
            new KernelResources("tiny_kernel", "sm_90", 72, 0, 0, 0, 0, 0),
        }));
        Assert.That(r.Select(k => k.UsesLocalMemory), Is.EqualTo(new[] { true, false, false }));
    }

    [TestCase("")]
    [TestCase("ptxas info    : Used 12 registers")]
    [TestCase("ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads")]
    [TestCase("kernels/x.cu(3): warning: variable \"y\" was declared but never referenced")]
    public void IgnoresLinesOutsideAnEntry(string log) =>
        Assert.That(PtxasReport.Parse(log), Is.Empty, $"log: {log}");

    [Test]
    public void TruncatedEntryIsReportedWithZeros()
    {
        IReadOnlyList<KernelResources> r = PtxasReport.Parse("ptxas info    : Compiling entry function 'k' for 'sm_80'\n");
        Assert.That(r, Is.EqualTo(new[] { new KernelResources("k", "sm_80", 0, 0, 0, 0, 0, 0) }));
    }

    [TestCase(8, 0)]
    [TestCase(9, 0)]
    public void ReportsRealCompilations(int major, int minor)
    {
        NvrtcTestSupport.RequireNvrtc();
        var compiler = new NvrtcCompiler(NvrtcTestSupport.Sources(withStackKernel: true));
        var options = new CompileOptions(major, minor) { PtxasVerbose = true };
        string arch = $"sm_{major}{minor}";

        IReadOnlyList<KernelResources> scale = compiler.Compile("kernels/test_scale.cu", options).Resources;
        IReadOnlyList<KernelResources> stack = compiler.Compile("kernels/test_stack.cu", options).Resources;

        Assert.That(scale.Select(k => k.Kernel), Is.EquivalentTo(new[] { "scale_kernel", "fill_kernel" }));
        Assert.That(scale.All(k => k.Architecture == arch && k.Registers > 0 && !k.UsesLocalMemory), Is.True,
            string.Join("; ", scale));
        Assert.That(scale.Single(k => k.Kernel == "scale_kernel").SharedBytes, Is.EqualTo(128 * sizeof(float)));
        KernelResources local = stack.Single();
        Assert.That(local.Kernel, Is.EqualTo("local_array_kernel"));
        Assert.That(local.StackFrameBytes, Is.GreaterThanOrEqualTo(256 * sizeof(float)), local.ToString());
        Assert.That(local.UsesLocalMemory, Is.True);
    }
}
