// The per-(Kh, Kw) specialisation of dwconv_fused_kernel: the defines the launcher passes for a set of branches, and
// the specialised modules compiled by NVRTC (slak_nano's branches, a dense M x M + N x N pair, and the live-tap-list
// body kept as the benchmark variant) without local memory, with the kernel-cache key telling the
// specialisations apart. The emulator runs the generic kernel (it compiles nothing at run time); the same source with
// the sizes as constants is what the GPU runs.
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class DwConvFusedSpecializationTests
{
    private static DwConvFusedBranch[] Branches(params (int Kh, int Kw)[] ks) =>
        [.. ks.Select(k => new DwConvFusedBranch(DevicePtr.Null, DevicePtr.Null, k.Kh, k.Kw))];

    [Test]
    public void LauncherDefinesNameEveryBranchsKernelSize()
    {
        Assert.That(DwConvFusedKernels.Specialization(Branches((51, 5), (5, 51), (5, 5))),
            Is.EqualTo(new[] { "SLAK_DW_KH0=51", "SLAK_DW_KW0=5", "SLAK_DW_KH1=5", "SLAK_DW_KW1=51", "SLAK_DW_KH2=5", "SLAK_DW_KW2=5" }));
        Assert.That(DwConvFusedKernels.Specialization(Branches((7, 7), (3, 3))),
            Is.EqualTo(new[] { "SLAK_DW_KH0=7", "SLAK_DW_KW0=7", "SLAK_DW_KH1=3", "SLAK_DW_KW1=3" }));
        Assert.That(DwConvFusedKernels.Specialization(Branches((13, 5), (5, 13), (5, 5))),
            Is.Not.EqualTo(DwConvFusedKernels.Specialization(Branches((51, 5), (5, 51), (5, 5)))));
    }

    [Test]
    public void SpecialisedModulesCompileWithoutLocalMemoryAndHaveTheirOwnCacheKeys()
    {
        NvrtcTestSupport.RequireNvrtc();
        var sources = KernelSources.Embedded;
        var compiler = new NvrtcCompiler(sources);
        const string file = "kernels/dwconv_fused.cu";
        // SLaK-T's stage specialisations are compiled (and checked for spills) by KernelsCommandTests.
        IReadOnlyList<string>[] specs =
        [
            DwConvFusedKernels.Specialization(Branches((31, 31), (5, 5))),
            DwConvFusedKernels.Specialization(Branches((15, 3), (3, 15), (3, 3))),
            ["SLAK_DW_FUSED_TAPLIST=1"],
        ];
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var defines in specs)
        {
            var options = new CompileOptions(9, 0) { PtxasVerbose = true, Defines = defines };
            var module = compiler.Compile(file, options);
            var fused = module.Resources.Single(r => r.Kernel == "dwconv_fused_kernel");
            string what = string.Join(' ', defines);
            Assert.That(fused.UsesLocalMemory, Is.False,
                $"{what}: dwconv_fused_kernel spills or has a stack frame ({fused.SpillStoreBytes} B spill stores, " +
                $"{fused.StackFrameBytes} B stack, {fused.Registers} registers)");
            Assert.That(keys.Add(KernelCache.Key(sources, file, compiler.Arguments(options), compiler.Version, "sm_90")),
                Is.True, $"{what}: the cache key must differ from the other specialisations'");
        }
    }
}
