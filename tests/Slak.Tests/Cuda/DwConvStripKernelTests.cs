// The live-tap strip kernel (cuda/kernels/dwconv_strip.cu, DwConvStripKernels): its plan at SLaK-T's stages 1-2 within
// the sm_80 / sm_90 limits, its SLaK-T modules compiled by NVRTC without local memory, and the three passes of the
// depthwise family (each branch's forward, the inference sum, the input gradient) run through it on the emulator's
// specialised instances (CMakeLists.txt) against the CPU backend at densities 1 / 0.6 / 0.1 / 0, outputs poisoned
// (DwConvPasses), asserting that the strip kernel's instances ran; with DwConvStripKernels.Off the same call runs
// dwconv_fused_kernel. The emulator's sanitizers are those of SLAK_EMU_CHECKS (CI: `ci`).
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

[TestFixture]
[NonParallelizable] // DwConvStripKernels.Off is process-wide
public sealed class DwConvStripKernelTests
{
    // SLaK-T's stages 1-2 (224 px) and stage 1 at 256 px, batch 128 and far beyond (up to the grid's 65,535 image
    // groups; larger batches keep dwconv_fused_kernel): every branch is planned, 4 and 8 thread groups of a line each
    // per block fill whole warps at 56 and 28 (the 28-output lines take two images a thread), within both
    // architectures' limits.
    [TestCase(128, 124, 56, "51x5,5x51,5x5", 224)]
    [TestCase(128, 249, 28, "49x5,5x49,5x5", 224)]
    [TestCase(256, 124, 64, "51x5,5x51,5x5", 256)]
    [TestCase(400_000, 249, 28, "49x5,5x49,5x5", 224)]
    public void SlakStagesOneAndTwoArePlannedWithinTheLimits(long n, long c, int hw, string branches, int threads)
    {
        foreach (int sm in new[] { 80, 90 })
        {
            var limits = DeviceLimits.ForArchitecture(sm);
            foreach (var (kh, kw) in BranchShapes.Parse(branches))
            {
                var plan = DwConvStripKernels.Plan(n, c, hw, hw, kh, kw, limits);
                string what = $"sm_{sm} N={n} C={c} {hw}x{hw} {kh}x{kw}: {plan}";
                Assert.That(plan.KernelChoice, Is.EqualTo(PlanKernel.DwConvStrip), what);
                Assert.That(LaunchPlans.Violation(plan, limits), Is.EqualTo(PlanViolation.WithinLimits), what);
                Assert.That((int)plan.BlockX, Is.EqualTo(threads), what);
                Assert.That((long)plan.GridY * DwConvStripKernels.Images(hw, hw), Is.GreaterThanOrEqualTo(n), what);
                Assert.That((long)(plan.GridY - 1) * DwConvStripKernels.Images(hw, hw), Is.LessThan(n), what);
            }
        }
    }

    // Maps the kernel does not take (small maps, sides over 64) and long axes over 64 taps.
    [TestCase(14, 14, 47, 5)]
    [TestCase(112, 112, 31, 5)]
    [TestCase(56, 56, 65, 5)]
    public void OtherShapesAreNotPlanned(int h, int w, int kh, int kw) =>
        Assert.That(DwConvStripKernels.Plan(128, 64, h, w, kh, kw, DeviceLimits.ForArchitecture(90)).KernelChoice,
                    Is.EqualTo(PlanKernel.None));

    [Test]
    public void SlakModulesCompileWithoutLocalMemory() =>
        DwConvStripSupport.AssertSlakModulesCompileWithoutLocalMemory(DwConvStripKernels.Kernel);

    // The emulator test library's instances: an odd 17 x 19 map (rows not a multiple of 4 floats: scalar staging; the
    // second image of every thread absent), 31-tap branches longer than a 20 x 24 map (taps that reach no output row or
    // column; 8 thread groups, 11 images: some threads take two), and 34-output tall lines (one image a thread).
    [TestCase(9, 2, 17, 19, "13x5,5x13,5x5")]
    [TestCase(11, 2, 20, 24, "31x3,3x31,3x3")]
    [TestCase(5, 2, 34, 18, "9x3,3x9")]
    [KernelParity("dwconv_strip_kernel")]
    public void TheStripKernelMatchesTheCpuBackendAtEveryDensity(int n, int c, int h, int w, string branchList)
    {
        var emu = TestDevices.Open("cuda-emu");
        var rng = TestRandom.ForCurrentTest();
        var ks = BranchShapes.Parse(branchList);
        var instances = DwConvStripSupport.RegisteredInstances(DwConvStripKernels.Kernel, h, w, ks);
        foreach (double density in new[] { 1.0, 0.6, 0.1, 0.0 })
        {
            var x = rng.NormalArray(n * c * h * w);
            var wts = ks.Select(k => rng.NormalArray(c * k.Kh * k.Kw, 1 / Math.Sqrt(k.Kh * k.Kw))).ToArray();
            var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, density)).ToArray();
            var dys = ks.Select(_ => rng.NormalArray(n * c * h * w)).ToArray();
            DwConvPasses.Result Run(Device d) => DwConvPasses.Run(d, n, c, h, w, ks, x, wts, masks, dys);
            var before = instances.Select(i => EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(i)).ToArray();
            long fusedBefore = EmulatedDevice.LaunchCounts.GetValueOrDefault("dwconv_fused_kernel");
            var got = Run(emu);
            for (int b = 0; b < ks.Length; b++)
                Assert.That(EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instances[b]) - before[b], Is.EqualTo(3),
                            $"{branchList} density {density}: the forward, the inference sum and the input gradient run {instances[b]}");
            Assert.That(EmulatedDevice.LaunchCounts.GetValueOrDefault("dwconv_fused_kernel") - fusedBefore, Is.Zero,
                        $"{branchList} density {density}: dwconv_fused_kernel does not run");
            var want = Run(Device.Cpu);
            string what = $"x ({n},{c},{h},{w}) branches {branchList} density {density}, strip kernel on cuda-emu vs cpu";
            static double[] D(float[] v) => [.. v.Select(f => (double)f)];
            for (int b = 0; b < ks.Length; b++) Expect.AllClose(got.Ys[b], D(want.Ys[b]), 1e-5, 1e-5, rng.Ctx($"forward branch {b}, {what}"));
            Expect.AllClose(got.Sum, D(want.Sum), 1e-5, 1e-5, rng.Ctx($"inference sum, {what}"));
            Expect.AllClose(got.Dx, D(want.Dx), 1e-5, 1e-5, rng.Ctx($"input gradient, {what}"));
        }
    }

    [Test]
    public void TheSwitchRunsTheFusedKernelInstead()
    {
        var emu = TestDevices.Open("cuda-emu");
        var rng = TestRandom.ForCurrentTest();
        int n = 3, c = 1, h = 17, w = 19;
        var ks = BranchShapes.Parse("13x5,5x13,5x5");
        var x = rng.NormalArray(n * c * h * w);
        var wts = ks.Select(k => rng.NormalArray(c * k.Kh * k.Kw)).ToArray();
        var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, 0.6)).ToArray();
        var dys = ks.Select(_ => rng.NormalArray(n * c * h * w)).ToArray();
        long stripBefore = EmulatedDevice.LaunchCounts.GetValueOrDefault(DwConvStripKernels.Kernel);
        long fusedBefore = EmulatedDevice.LaunchCounts.GetValueOrDefault("dwconv_fused_kernel");
        DwConvPasses.Result got;
        using (StripKernelsOff.Forward())
            got = DwConvPasses.Run(emu, n, c, h, w, ks, x, wts, masks, dys);
        Assert.That(EmulatedDevice.LaunchCounts.GetValueOrDefault(DwConvStripKernels.Kernel) - stripBefore, Is.Zero);
        Assert.That(EmulatedDevice.LaunchCounts.GetValueOrDefault("dwconv_fused_kernel") - fusedBefore, Is.EqualTo(3));
        var want = DwConvPasses.Run(Device.Cpu, n, c, h, w, ks, x, wts, masks, dys);
        static double[] D(float[] v) => [.. v.Select(f => (double)f)];
        Expect.AllClose(got.Dx, D(want.Dx), 1e-5, 1e-5, rng.Ctx("input gradient, fused kernel with the switch off"));
    }
}
