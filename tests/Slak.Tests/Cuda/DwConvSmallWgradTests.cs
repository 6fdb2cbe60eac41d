// The small-map weight gradient (cuda/kernels/dwconv_small_wgrad.cu, DwConvSmallWgradKernels): the dispatch predicate,
// the specialised modules (float32 and bf16 x) compiled by NVRTC for sm_80 and sm_90 without local memory, and the
// emulator's specialised instances (CMakeLists.txt) reached through DwConvFusedKernels.BackwardFilter on an emulated
// device with every sanitizer on, against a float64 reference at densities 1 / 0.6 / 0.1 / 0 (pruned taps exactly 0),
// asserting that the instance ran and that two runs agree bit for bit.
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class DwConvSmallWgradTests
{
    [Test]
    public void PredicateTakesSmallMapsWithEnoughImagesOnly()
    {
        (int, int)[] s3 = [(47, 5), (5, 47), (5, 5)];
        Assert.That(DwConvSmallWgradKernels.Applies(128, 14, 14, s3), Is.True, "SLaK-T stage 3");
        Assert.That(DwConvSmallWgradKernels.Applies(128, 7, 7, [(13, 5), (5, 13), (5, 5)]), Is.True, "SLaK-T stage 4");
        Assert.That(DwConvSmallWgradKernels.Applies(128, 28, 28, s3), Is.False, "stage 2 map");
        Assert.That(DwConvSmallWgradKernels.Applies(31, 14, 14, s3), Is.False, "too few images");
        Assert.That(DwConvSmallWgradKernels.Applies(128, 14, 14, [(3, 3), (3, 3), (3, 3), (3, 3)]), Is.False, "four branches");
        Assert.That(DwConvSmallWgradKernels.Applies(128, 14, 14, [(51, 51), (5, 5)]), Is.True, "dense 51x51 + 5x5: 2,626 taps");
        Assert.That(DwConvSmallWgradKernels.Applies(128, 14, 14, [(61, 61)]), Is.False, "3,721 taps: over the static shared memory");
        Assert.That(DwConvSmallWgradKernels.Specialization(7, 7, [(13, 5), (5, 13), (5, 5)]),
            Is.EqualTo(new[] { "SLAK_DWS_H=7", "SLAK_DWS_W=7", "SLAK_DWS_NB=3", "SLAK_DWS_KH0=13", "SLAK_DWS_KW0=5",
                               "SLAK_DWS_KH1=5", "SLAK_DWS_KW1=13", "SLAK_DWS_KH2=5", "SLAK_DWS_KW2=5" }));
    }

    [Test]
    public void SpecialisedModulesCompileWithoutLocalMemory()
    {
        NvrtcTestSupport.RequireNvrtc();
        var compiler = new NvrtcCompiler(KernelSources.Embedded);
        (int H, (int, int)[] Branches)[] specs =
        [
            (14, [(47, 5), (5, 47), (5, 5)]), // SLaK-T stage 3
            (7, [(13, 5), (5, 13), (5, 5)]),  // SLaK-T stage 4
            (7, [(7, 7), (3, 3)]),
        ];
        foreach (int major in new[] { 8, 9 })
            foreach (var (hw, br) in specs)
                foreach (bool bf16 in new[] { false, true }) // the float32 instance and the bf16-x one (SLAK_DW_BF16=1)
                {
                    var defines = bf16 ? DwConvSmallWgradKernels.Bf16Specialization(hw, hw, br)
                                       : DwConvSmallWgradKernels.Specialization(hw, hw, br);
                    var module = compiler.Compile("kernels/dwconv_small_wgrad.cu",
                                                  new CompileOptions(major, 0) { PtxasVerbose = true, Defines = defines });
                    var r = module.Resources.Single(r => r.Kernel == DwConvSmallWgradKernels.KernelName);
                    TestContext.Out.WriteLine($"sm_{major}0 {string.Join(' ', defines)}: {r.Registers} registers");
                    Assert.That(r.UsesLocalMemory, Is.False,
                        $"sm_{major}0 {string.Join(' ', defines)}: spills or has a stack frame ({r.SpillStoreBytes} B " +
                        $"spill stores, {r.StackFrameBytes} B stack, {r.Registers} registers)");
                }
    }

    // Shapes of the emulator test library's instances; batches not multiples of 32, several chunks at 14x14 (64
    // images a chunk) and 7x7 (128).
    [TestCase(37, 2, 14, "47x5,5x47,5x5")]
    [TestCase(70, 1, 14, "47x5,5x47,5x5")]
    [TestCase(133, 2, 7, "13x5,5x13,5x5")]
    [TestCase(45, 3, 7, "7x7,3x3")]
    [KernelParity(DwConvSmallWgradKernels.KernelName)]
    public void MatchesFloat64ReferenceAtEveryDensityUnderTheSanitizers(int n, int c, int hw, string branchList)
    {
        var spec = DwConvSmallWgradKernels.Specialization(hw, hw, BranchShapes.Parse(branchList));
        string instance = EmulatedDevice.InstanceName(DwConvSmallWgradKernels.KernelName, spec);
        Assert.That(EmulatedDevice.HasInstance(DwConvSmallWgradKernels.KernelName, spec), Is.True, instance);
        var rng = TestRandom.ForCurrentTest();
        using var dev = EmulatedDevice.Open();
        dev.Checks = EmulatorChecks.All;
        DwConvWgradSweep.MatchesFloat64Reference(dev, rng, n, c, hw, hw, branchList, [instance]);
    }
}
