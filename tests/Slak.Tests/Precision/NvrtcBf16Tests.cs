// The bf16 kernels through NVRTC 11.8 (no cuda_bf16.h: our slak_bf16 type, cvt.rn.bf16.f32 in inline PTX): the bf16
// instantiation of the fused depthwise kernels (dwconv_fused.cu with SLAK_DW_BF16=1: forward/input gradient and weight
// gradient read and write bf16, accumulate in fp32), generic and specialised for slak_nano's branches, and the
// conversion kernels of precision.cu, for sm_80 and sm_90: they compile, and ptxas reports no spills and no stack
// frame for any kernel. The bf16 module is a module of its own (its define is part of the kernel-cache key). The bf16
// instance of the fused weight gradient (x bf16, dy float32) is checked by name in both modules, its registers printed
// beside the float32 instance's.
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Cuda;

namespace Slak.Tests.Precision;

public sealed class NvrtcBf16Tests
{
    private static IReadOnlyList<string> NanoBranches() => DwConvFusedKernels.Specialization(
        [new DwConvFusedBranch(DevicePtr.Null, DevicePtr.Null, 15, 3), new DwConvFusedBranch(DevicePtr.Null, DevicePtr.Null, 3, 15),
         new DwConvFusedBranch(DevicePtr.Null, DevicePtr.Null, 3, 3)]);

    [TestCase(8, 0)]
    [TestCase(9, 0)]
    public void Bf16KernelsCompileWithoutLocalMemory(int major, int minor)
    {
        NvrtcTestSupport.RequireNvrtc();
        var sources = KernelSources.Embedded;
        var compiler = new NvrtcCompiler(sources);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (file, defines) in new (string, IReadOnlyList<string>)[]
                 {
                     ("kernels/dwconv_fused.cu", ["SLAK_DW_BF16=1"]),
                     ("kernels/dwconv_fused.cu", [.. NanoBranches(), "SLAK_DW_BF16=1"]),
                     ("kernels/dwconv_fused.cu", NanoBranches()),
                     ("kernels/precision.cu", []),
                 })
        {
            var options = new CompileOptions(major, minor) { PtxasVerbose = true, Defines = defines };
            var module = compiler.Compile(file, options);
            string what = $"{file} {string.Join(' ', defines)} sm_{major}{minor}";
            Assert.That(module.Resources, Is.Not.Empty, $"{what}: ptxas reported no kernels");
            foreach (var k in module.Resources)
                Assert.That(k.UsesLocalMemory, Is.False,
                    $"{what}: {k.Kernel} spills or has a stack frame ({k.SpillStoreBytes} B spill stores, {k.StackFrameBytes} B stack, {k.Registers} registers)");
            if (file == "kernels/dwconv_fused.cu")
            {
                var wgrad = module.Resources.SingleOrDefault(k => k.Kernel == DwConvFusedKernels.WgradKernel);
                Assert.That(wgrad, Is.Not.Null, $"{what}: {DwConvFusedKernels.WgradKernel} compiled");
                TestContext.Out.WriteLine($"{what}: {wgrad!.Kernel} {wgrad.Registers} registers, " +
                                          $"{wgrad.SpillStoreBytes} B spill stores, {wgrad.StackFrameBytes} B stack");
            }
            Assert.That(keys.Add(KernelCache.Key(sources, file, compiler.Arguments(options), compiler.Version, $"sm_{major}{minor}")),
                Is.True, $"{what}: the kernel-cache key must differ from the other modules'");
        }
    }
}
