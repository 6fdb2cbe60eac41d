// The strip weight gradient (dwconv_strip_wgrad_kernel in cuda/kernels/dwconv_strip.cu, DwConvStripKernels.WgradPlan /
// LaunchWeightGrad): its plan at SLaK-T's stages 1-2 within the sm_80 / sm_90 limits, its SLaK-T modules compiled by
// NVRTC without local memory, and DwConvFusedKernels.BackwardFilter on the emulator's specialised instances (the strip
// instances of CMakeLists.txt hold this kernel too) with every sanitizer on and the outputs poisoned, against a
// float64 reference at densities 1 / 0.6 / 0.1 / 0 (pruned taps exactly 0) and unmasked, asserting that each branch's
// instance ran, that dwconv_fused_wgrad_kernel did not, and that two runs agree bit for bit; with
// DwConvStripKernels.WgradOff the same call runs dwconv_fused_wgrad_kernel.
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

[TestFixture]
[NonParallelizable] // DwConvStripKernels.WgradOff is process-wide
public sealed class DwConvStripWgradTests
{
    // SLaK-T's stages 1-2 (224 px) and stage 1 at 256 px, batch 128: every branch is planned within both architectures'
    // limits with the forward's grid (one partial per block row of images, channel and tap).
    [TestCase(128, 124, 56, "51x5,5x51,5x5")]
    [TestCase(128, 249, 28, "49x5,5x49,5x5")]
    [TestCase(256, 124, 64, "51x5,5x51,5x5")]
    public void SlakStagesOneAndTwoArePlannedWithinTheLimits(long n, long c, int hw, string branches)
    {
        foreach (int sm in new[] { 80, 90 })
        {
            var limits = DeviceLimits.ForArchitecture(sm);
            foreach (var (kh, kw) in BranchShapes.Parse(branches))
            {
                var fwd = DwConvStripKernels.Plan(n, c, hw, hw, kh, kw, limits);
                var plan = DwConvStripKernels.WgradPlan(n, c, hw, hw, kh, kw, limits);
                string what = $"sm_{sm} N={n} C={c} {hw}x{hw} {kh}x{kw}: {plan}";
                Assert.That(plan.KernelChoice, Is.EqualTo(PlanKernel.DwConvStrip), what);
                Assert.That(LaunchPlans.Violation(plan, limits), Is.EqualTo(PlanViolation.WithinLimits), what);
                Assert.That((plan.GridX, plan.GridY, plan.BlockX), Is.EqualTo((fwd.GridX, fwd.GridY, fwd.BlockX)), what);
                Assert.That(plan.Chunks, Is.EqualTo((int)plan.GridY), what);
                Assert.That(plan.WorkspaceBytes, Is.EqualTo((long)plan.GridY * c * kh * kw * sizeof(float)), what);
            }
        }
    }

    [Test]
    public void ShapesTheForwardDoesNotTakeAndTheSwitchAreNotPlanned()
    {
        var limits = DeviceLimits.ForArchitecture(90);
        Assert.That(DwConvStripKernels.WgradPlan(128, 64, 14, 14, 47, 5, limits).KernelChoice, Is.EqualTo(PlanKernel.None), "14 x 14");
        Assert.That(DwConvStripKernels.WgradPlan(128, 64, 56, 56, 65, 5, limits).KernelChoice, Is.EqualTo(PlanKernel.None), "65 taps");
        // 400,000 images at 28 x 28: 50,000 block rows of partials, 4.9 GB, over the workspace bound.
        Assert.That(DwConvStripKernels.WgradPlan(400_000, 249, 28, 28, 49, 5, limits).KernelChoice, Is.EqualTo(PlanKernel.None), "workspace");
        using (StripKernelsOff.WeightGradient())
            Assert.That(DwConvStripKernels.WgradPlan(128, 249, 28, 28, 49, 5, limits).KernelChoice, Is.EqualTo(PlanKernel.None), "switch");
    }

    [Test]
    public void SlakModulesCompileWithoutLocalMemory() =>
        DwConvStripSupport.AssertSlakModulesCompileWithoutLocalMemory(DwConvStripKernels.WgradKernel);

    // The emulator test library's strip instances: an odd 17 x 19 map (scalar staging; 9 images, the last block row
    // partly empty), 31-tap branches longer than a 20 x 24 map (taps that reach no output), and 34-output tall lines
    // (one image a thread; the 3x9 branch's 18-output rows take two).
    [TestCase(9, 2, 17, 19, "13x5,5x13,5x5")]
    [TestCase(11, 2, 20, 24, "31x3,3x31,3x3")]
    [TestCase(5, 2, 34, 18, "9x3,3x9")]
    // The breaker shapes of DwConvDecomposedOpTests the strip plan takes (their instances: CMakeLists.txt).
    [TestCase(3, 2, 33, 35, "9x5,5x9,5x5")]
    [TestCase(2, 1, 40, 37, "31x5,5x31,5x5")]
    [TestCase(2, 1, 40, 24, "11x5,5x11,5x5")]
    [KernelParity(DwConvStripKernels.WgradKernel)]
    public void MatchesFloat64ReferenceAtEveryDensityUnderTheSanitizers(int n, int c, int h, int w, string branchList)
    {
        var instances = DwConvStripSupport.RegisteredInstances(DwConvStripKernels.WgradKernel, h, w, BranchShapes.Parse(branchList));
        var rng = TestRandom.ForCurrentTest();
        using var dev = EmulatedDevice.Open();
        dev.Checks = EmulatorChecks.All;
        DwConvWgradSweep.MatchesFloat64Reference(dev, rng, n, c, h, w, branchList, instances, notRun: "dwconv_fused_wgrad_kernel",
            check: br => Assert.That(DwConvStripKernels.TakesWgrad(dev, br, n, c, h, w), Is.True,
                                     rng.Ctx("the launcher takes the strip weight gradient")));
    }

    [Test]
    public void TheSwitchRunsTheFusedWeightGradientInstead()
    {
        var rng = TestRandom.ForCurrentTest();
        using var dev = EmulatedDevice.Open();
        int n = 3, c = 1, h = 17, w = 19;
        var ks = BranchShapes.Parse("13x5,5x13,5x5");
        var x = rng.NormalArray(n * c * h * w);
        var dys = ks.Select(_ => rng.NormalArray(n * c * h * w)).ToArray();
        var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, 0.6)).ToArray();
        var xd = EmulatorTestSupport.Upload<float>(dev, x);
        var dyd = dys.Select(d => EmulatorTestSupport.Upload<float>(dev, d)).ToArray();
        var md = masks.Select(m => EmulatorTestSupport.Upload<float>(dev, m)).ToArray();
        var br = ks.Select((k, b) => new DwConvFusedBranch(DevicePtr.Null, md[b], k.Kh, k.Kw)).ToArray();
        var dws = ks.Select(k => EmulatorTestSupport.Poisoned(dev, c * k.Kh * k.Kw)).ToArray();
        long stripBefore = EmulatedDevice.LaunchCounts.GetValueOrDefault(DwConvStripKernels.WgradKernel);
        long fusedBefore = EmulatedDevice.LaunchCounts.GetValueOrDefault("dwconv_fused_wgrad_kernel");
        using (StripKernelsOff.WeightGradient())
            DwConvFusedKernels.BackwardFilter(dev, dws, xd, dyd, br, n, c, h, w);
        Assert.That(EmulatedDevice.LaunchCounts.GetValueOrDefault(DwConvStripKernels.WgradKernel) - stripBefore, Is.Zero);
        Assert.That(EmulatedDevice.LaunchCounts.GetValueOrDefault("dwconv_fused_wgrad_kernel") - fusedBefore, Is.EqualTo(1));
        for (int b = 0; b < ks.Length; b++)
        {
            var expected = Reference.DepthwiseWeightGrad(x, dys[b], n, c, h, w, ks[b].Kh, ks[b].Kw);
            for (int i = 0; i < expected.Length; i++) if (masks[b][i] == 0f) expected[i] = 0;
            var got = EmulatorTestSupport.Download<float>(dev, dws[b], c * ks[b].Kh * ks[b].Kw);
            EmulatorTestSupport.AssertClose(got, expected, 1e-4, 1e-5, rng.Ctx($"branch {b}, fused weight gradient with the switch on"));
        }
        foreach (var p in dws.Concat(md).Concat(dyd).Append(xd)) dev.Free(p);
    }
}
