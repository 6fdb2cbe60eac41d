// The small-map depthwise kernel (cuda/kernels/dwconv_small.cu): its plan (slak_plan_dwconv_small, the one dispatch
// predicate: which shapes it takes, grid and shared memory within the sm_80 / sm_90 limits at SLaK-T's stages 3-4 and
// far beyond batch 128), its specialised modules compiled by NVRTC without local memory, and its three modes run on the
// emulator (specialised instances of the test library, CMakeLists.txt, and the generic body) against the CPU backend
// at densities 1 / 0.6 / 0.1 / 0, outputs poisoned, asserting that the small kernel is the one that ran. The emulator's
// sanitizers are those of SLAK_EMU_CHECKS (CI: `ci`).
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class DwConvSmallKernelTests
{
    private static LaunchPlan Plan(long n, long c, int h, int w, string branches, int sm)
    {
        var ks = BranchShapes.Parse(branches);
        return LaunchPlans.DwConvSmall(n, c, h, w, ks.Select(k => k.Kh).ToArray(), ks.Select(k => k.Kw).ToArray(),
                                       DeviceLimits.ForArchitecture(sm));
    }

    // SLaK-T's stages 3-4 at 224 px (and 8 x 8, stage 4 at 256 px) go to the small kernel from 16 images on, at batch
    // 128 and far beyond, within the limits of both architectures.
    [TestCase(128, 499, 14, 14, "47x5,5x47,5x5")]
    [TestCase(128, 998, 7, 7, "13x5,5x13,5x5")]
    [TestCase(16, 998, 7, 7, "13x5,5x13,5x5")]
    [TestCase(128, 998, 8, 8, "13x5,5x13,5x5")]
    [TestCase(8_000_000, 998, 7, 7, "13x5,5x13,5x5")]
    [TestCase(256, 1024, 14, 14, "7x7,3x3")]
    public void SmallMapsTakeTheSmallKernelWithinTheLimits(long n, long c, int h, int w, string branches)
    {
        foreach (int sm in new[] { 80, 90 })
        {
            var plan = Plan(n, c, h, w, branches, sm);
            string what = $"sm_{sm} N={n} C={c} {h}x{w} {branches}: {plan}";
            Assert.That(plan.KernelChoice, Is.EqualTo(PlanKernel.DwConvSmall), what);
            Assert.That(LaunchPlans.Violation(plan, DeviceLimits.ForArchitecture(sm)), Is.EqualTo(PlanViolation.WithinLimits), what);
            Assert.That((long)plan.GridX, Is.EqualTo(c), what);
            Assert.That((long)plan.GridY * plan.BlockX, Is.GreaterThanOrEqualTo(n), what);
            Assert.That((long)(plan.GridY - 1) * plan.BlockX, Is.LessThan(n), what);
            // At least half of the launched lanes produce outputs.
            Assert.That((double)n / ((long)plan.GridY * plan.BlockX), Is.GreaterThanOrEqualTo(0.5), what);
        }
    }

    // Too few images, a map over 196 pixels (16 x 16, stage 3 at 256 px), a band over the register budget (a dense 13 x
    // 13 on 14 x 14) and more than three branches keep the fused family's plan.
    [TestCase(15, 998, 7, 7, "13x5,5x13,5x5")]
    [TestCase(128, 499, 16, 16, "47x5,5x47,5x5")]
    [TestCase(128, 64, 14, 14, "13x13,5x5")]
    [TestCase(128, 64, 7, 7, "3x3,3x3,3x3,3x3")]
    public void OtherShapesKeepTheFusedFamilysPlan(long n, long c, int h, int w, string branches)
    {
        var ks = BranchShapes.Parse(branches);
        int[] kh = [.. ks.Select(k => k.Kh)], kw = [.. ks.Select(k => k.Kw)];
        var l = DeviceLimits.ForArchitecture(90);
        var plan = LaunchPlans.DwConvSmall(n, c, h, w, kh, kw, l);
        Assert.That(plan.KernelChoice, Is.Not.EqualTo(PlanKernel.DwConvSmall), plan.ToString());
        Assert.That(plan, Is.EqualTo(LaunchPlans.DwConvFused(n, c, h, w, kh, kw, l)));
    }

    [Test]
    public void SpecialisedModulesCompileWithoutLocalMemoryAlsoWithBf16Storage()
    {
        NvrtcTestSupport.RequireNvrtc();
        var compiler = new NvrtcCompiler(KernelSources.Embedded);
        // sm_80 here; SLaK-T's sm_90 modules (14 x 14 and 7 x 7) are compiled and checked by KernelsCommandTests.
        // The bf16 storage instantiation (SLAK_DW_BF16, as dwconv_fused.cu's) compiles too.
        (int Major, int H, string Branches, bool Bf16)[] specs =
            [(8, 14, "47x5,5x47,5x5", false), (8, 7, "13x5,5x13,5x5", false), (8, 7, "13x5,5x13,5x5", true),
             (8, 14, "47x5,5x47,5x5", true)];
        var failures = new List<string>();
        foreach (var (major, h, branches, bf16) in specs)
        {
            // The bf16 modules with exactly the definitions the CUDA backend's bf16 launches use.
            var br = BranchShapes.Parse(branches).Select(k => new DwConvFusedBranch(default, default, k.Item1, k.Item2)).ToArray();
            IReadOnlyList<string> defines = bf16 ? DwConvSmallKernels.Bf16Specialization(h, h, br)
                                                 : DwConvSmallKernels.Specialization(h, h, BranchShapes.Parse(branches));
            var module = compiler.Compile(DwConvSmallKernels.File, new CompileOptions(major, 0) { PtxasVerbose = true, Defines = defines });
            var r = module.Resources.Single(r => r.Kernel == DwConvSmallKernels.Kernel);
            TestContext.Progress.WriteLine($"sm_{major}0 {h}x{h} {branches}: {r.Registers} registers, {r.SpillStoreBytes} B spill stores");
            if (r.UsesLocalMemory)
                failures.Add($"sm_{major}0 {string.Join(' ', defines)}: spills or has a stack frame ({r.SpillStoreBytes} B " +
                             $"spill stores, {r.StackFrameBytes} B stack, {r.Registers} registers)");
        }
        Assert.That(failures, Is.Empty);
    }

    // Specialised instances of the emulator test library (CMakeLists.txt) and shapes that run the generic body.
    [TestCase(33, 2, 7, 7, "13x5,5x13,5x5", true)]
    [TestCase(33, 1, 14, 14, "47x5,5x47,5x5", true)]
    [TestCase(35, 2, 13, 11, "7x3,3x7,3x3", true)]
    [TestCase(40, 2, 5, 9, "7x7,3x3", true)]
    [TestCase(33, 2, 14, 14, "7x7,3x3", false)]
    [TestCase(17, 1, 8, 8, "13x5,5x13,5x5", false)]
    [KernelParity("dwconv_small_kernel")]
    public void TheSmallKernelMatchesTheCpuBackendAtEveryDensity(int n, int c, int h, int w, string branchList, bool specialised)
    {
        var emu = TestDevices.Open("cuda-emu");
        var rng = TestRandom.ForCurrentTest();
        var ks = BranchShapes.Parse(branchList);
        Assert.That(Plan(n, c, h, w, branchList, 90).KernelChoice, Is.EqualTo(PlanKernel.DwConvSmall), "the plan takes the shape");
        string instance = EmulatedDevice.InstanceName(DwConvSmallKernels.Kernel, DwConvSmallKernels.Specialization(h, w, ks));
        Assert.That(EmulatedDevice.RegisteredKernels.Contains(instance), Is.EqualTo(specialised), $"the test library's instance {instance}");
        foreach (double density in new[] { 1.0, 0.6, 0.1, 0.0 })
        {
            var x = rng.NormalArray(n * c * h * w);
            var wts = ks.Select(k => rng.NormalArray(c * k.Kh * k.Kw, 1 / Math.Sqrt(k.Kh * k.Kw))).ToArray();
            var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, density)).ToArray();
            var dys = ks.Select(_ => rng.NormalArray(n * c * h * w)).ToArray();
            DwConvPasses.Result Run(Device d) => DwConvPasses.Run(d, n, c, h, w, ks, x, wts, masks, dys);
            long kernelBefore = EmulatedDevice.LaunchCounts.GetValueOrDefault(DwConvSmallKernels.Kernel);
            long instanceBefore = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instance);
            var got = Run(emu);
            Assert.That(EmulatedDevice.LaunchCounts.GetValueOrDefault(DwConvSmallKernels.Kernel) - kernelBefore, Is.EqualTo(3),
                        $"{branchList} density {density}: the forward, the inference sum and the input gradient run {DwConvSmallKernels.Kernel}");
            Assert.That(EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instance) - instanceBefore, Is.EqualTo(specialised ? 3 : 0),
                        $"{branchList} density {density}: launches of the specialised instance {instance}");
            var want = Run(Device.Cpu);
            string what = $"x ({n},{c},{h},{w}) branches {branchList} density {density}, small-map kernel on cuda-emu vs cpu";
            static double[] D(float[] v) => [.. v.Select(f => (double)f)];
            for (int b = 0; b < ks.Length; b++) Expect.AllClose(got.Ys[b], D(want.Ys[b]), 1e-5, 1e-5, rng.Ctx($"forward branch {b}, {what}"));
            Expect.AllClose(got.Sum, D(want.Sum), 1e-5, 1e-5, rng.Ctx($"inference sum, {what}"));
            Expect.AllClose(got.Dx, D(want.Dx), 1e-5, 1e-5, rng.Ctx($"input gradient, {what}"));
        }
    }
}
