// What the strip kernels' tests (DwConvStripKernelTests: the forward family; DwConvStripWgradTests: the weight
// gradient, in the same modules) share: SLaK-T's stage-1/2 modules compiled by NVRTC without local memory, and the
// emulator test library's specialised instances of a strip kernel for a test's branches.
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

internal static class DwConvStripSupport
{
    /// <summary>SLaK-T's stage 1 and 2 maps at 224 px and stage 1 at 256 px, with their branches.</summary>
    private static readonly (int Hw, string Branches)[] SlakModules =
        [(56, "51x5,5x51,5x5"), (28, "49x5,5x49,5x5"), (64, "51x5,5x51,5x5")];

    /// <summary>Compiles the strip module of every SLaK-T stage 1-2 branch for sm_80 and sm_90 and asserts that
    /// <paramref name="kernel"/> (an entry of the module) uses no local memory; prints its registers.</summary>
    public static void AssertSlakModulesCompileWithoutLocalMemory(string kernel)
    {
        NvrtcTestSupport.RequireNvrtc();
        var compiler = new NvrtcCompiler(KernelSources.Embedded);
        var failures = new List<string>();
        foreach (int major in new[] { 8, 9 })
            foreach (var (hw, branches) in SlakModules)
                foreach (var (kh, kw) in BranchShapes.Parse(branches))
                {
                    var defines = DwConvStripKernels.Specialization(hw, hw, kh, kw);
                    var module = compiler.Compile(DwConvStripKernels.File, new CompileOptions(major, 0) { PtxasVerbose = true, Defines = defines });
                    var r = module.Resources.Single(r => r.Kernel == kernel);
                    TestContext.Progress.WriteLine($"sm_{major}0 {hw}x{hw} {kh}x{kw}: {r.Registers} registers");
                    if (r.UsesLocalMemory)
                        failures.Add($"sm_{major}0 {string.Join(' ', defines)}: spills or has a stack frame ({r.SpillStoreBytes} B " +
                                     $"spill stores, {r.StackFrameBytes} B stack, {r.Registers} registers)");
                }
        Assert.That(failures, Is.Empty);
    }

    /// <summary>The emulator's instance names of <paramref name="kernel"/> for each branch of an
    /// <paramref name="h"/> x <paramref name="w"/> map, asserting that the test library holds each one.</summary>
    public static string[] RegisteredInstances(string kernel, int h, int w, (int Kh, int Kw)[] ks)
    {
        var instances = ks.Select(k => EmulatedDevice.InstanceName(kernel, DwConvStripKernels.Specialization(h, w, k.Kh, k.Kw)))
                          .ToArray();
        foreach (string instance in instances)
            Assert.That(EmulatedDevice.RegisteredKernels.Contains(instance), Is.True, $"the test library's instance {instance}");
        return instances;
    }
}
