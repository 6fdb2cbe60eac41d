// Regression tests of the two launch bugs of issue 19, at their real shapes:
//   (a) the per-branch depthwise forward (dwconv_fwd_tiled_kernel) put N*C planes in grid.z: 128 x 998 = 127,744 at
//       SLaK-T stage 4, batch 128, over the 65,535 limit; its plan now splits the launch into groups of whole images;
//   (b) the fused weight gradient filled exactly 48 KB of dynamic shared memory at K = 51, W >= 64 (256 px and up)
//       plus 16 B of static shared memory, over the default per-block limit; its plan now budgets the static bytes.
// Plan checks against the sm_80 / sm_86 / sm_89 / sm_90 tables, and runs on the emulator (cuda-emu) compared with the
// CPU backend.
using NUnit.Framework;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class PlanDwConvRegressionTests
{
    private static readonly int[] Architectures = [80, 86, 89, 90];

    // SLaK-T stage 4 at 224 px: width 768 x 1.3 = 998 channels on 7 x 7 maps, kernel 13 (13x5, 5x13, 5x5).
    [TestCase(13, 5)]
    [TestCase(5, 13)]
    [TestCase(5, 5)]
    public void PerBranchForwardAtSlakTStage4Batch128SplitsGridZ(int kh, int kw)
    {
        const int n = 128, c = 998, h = 7, w = 7;
        Assert.That((long)n * c, Is.GreaterThan(65535), "the shape of the bug: N*C planes exceed grid.z");
        foreach (int sm in Architectures)
        {
            var l = DeviceLimits.ForArchitecture(sm);
            var plan = LaunchPlans.DwConvForward(n, c, h, w, kh, kw, l);
            string what = $"sm_{sm} dwconv_fwd N={n} C={c} {h}x{w} kernel {kh}x{kw}: {plan}";
            Assert.That(plan.KernelChoice, Is.EqualTo(PlanKernel.DwConvFwdTiled), what);
            Assert.That(plan.GridZ, Is.LessThanOrEqualTo(65535u), what);
            Assert.That(plan.ItemsPerLaunch * c, Is.EqualTo(plan.GridZ), what);
            Assert.That(plan.Launches, Is.EqualTo((n + plan.ItemsPerLaunch - 1) / plan.ItemsPerLaunch), what);
            Assert.That(plan.Launches, Is.EqualTo(2), what + " (65 + 63 images)");
            Assert.That(LaunchPlans.Violation(plan, l), Is.EqualTo(PlanViolation.WithinLimits), what);
        }
    }

    [Test]
    public void PerBranchForwardWithMorePlanesPerImageThanGridZFallsBackToTheDirectKernel()
    {
        var l = DeviceLimits.ForArchitecture(90);
        var plan = LaunchPlans.DwConvForward(2, 70_000, 4, 4, 3, 3, l);
        Assert.That(plan.KernelChoice, Is.EqualTo(PlanKernel.DwConvFwdDirect), plan.ToString());
        Assert.That(plan.FallbackReason, Is.EqualTo(PlanFallback.Grid), plan.ToString());
        Assert.That(LaunchPlans.Violation(plan, l), Is.EqualTo(PlanViolation.WithinLimits), plan.ToString());
    }

    // The emulator enforces grid.z <= 65535 like a GPU; before the split this failed with "grid (1,1,70000) is
    // invalid". A tiny spatial size keeps it fast; the values are compared with the CPU backend. The single
    // convolution is the depthwise family's one-branch case, whose plan takes the fused kernel (planes in grid.x, no
    // split needed): the per-branch kernels, where the split lives, are forced for the emulator's run.
    [Test]
    [NonParallelizable] // switches DwConvFusedKernels.PerBranchOnly
    public void DepthwiseConv2dWith70000PlanesMatchesTheCpuBackendOnTheEmulator()
    {
        var emu = TestDevices.Open("cuda-emu");
        var rng = TestRandom.ForCurrentTest();
        const int n = 700, c = 100, h = 2, w = 3, k = 3;
        var x = rng.NormalArray(n * c * h * w);
        var wt = rng.NormalArray(c * k * k, 1.0 / k);
        var mask = rng.MaskArray(c * k * k, 0.6);
        Tensor OnCpu(float[] d, params int[] s) => Tensor.FromArray(d, s, Device.Cpu);
        Tensor OnEmu(float[] d, params int[] s) => Tensor.FromArray(d, s, emu);

        var yCpu = F.DepthwiseConv2d(OnCpu(x, n, c, h, w), OnCpu(wt, c, 1, k, k), OnCpu(mask, c, 1, k, k)).ToArray();
        float[] yEmu;
        DwConvFusedKernels.PerBranchOnly = true;
        try
        {
            yEmu = F.DepthwiseConv2d(OnEmu(x, n, c, h, w), OnEmu(wt, c, 1, k, k), OnEmu(mask, c, 1, k, k)).ToArray();
        }
        finally
        {
            DwConvFusedKernels.PerBranchOnly = false;
        }
        Expect.AllClose(yEmu, yCpu.Select(v => (double)v).ToArray(), 1e-5, 1e-5,
                        rng.Ctx($"F.DepthwiseConv2d N*C = {n * c} planes, per-branch kernels, cuda-emu vs cpu"));

        // The input gradient runs the same kernel with the flipped filter, through the same plan (and split); it is
        // not run again here to keep the test short (about 13 s of emulation for 70,000 blocks of 256 threads).
    }

    // SLaK's K = 51 large kernel (51x5 + 5x51 + 5x5) on stage-1 maps of 256 px (64) and 384 px (96), and on the
    // 224 px map (56, where the tile was already smaller).
    [TestCase(32, 124, 64)]
    [TestCase(128, 124, 64)]
    [TestCase(256, 124, 64)]
    [TestCase(128, 124, 96)]
    [TestCase(128, 166, 64)]
    [TestCase(128, 124, 56)]
    public void FusedWeightGradAtK51StaysWithinTheDefaultSharedMemory(int n, int c, int hw)
    {
        int[] kh = [51, 5, 5], kw = [5, 51, 5];
        foreach (int sm in Architectures)
        {
            var l = DeviceLimits.ForArchitecture(sm);
            var plan = LaunchPlans.DwConvFusedWeightGrad(n, c, hw, hw, kh, kw, l);
            string what = $"sm_{sm} fused wgrad N={n} C={c} {hw}x{hw} K=51: {plan}";
            Assert.That(plan.KernelChoice, Is.EqualTo(PlanKernel.DwConvFusedWgrad), what);
            Assert.That(plan.SmemStatic, Is.EqualTo(16), what + " (the live-tap variant's int s_count[3], 16-byte granule)");
            Assert.That(plan.SmemDynamic + plan.SmemStatic, Is.LessThanOrEqualTo(l.SmemPerBlockDefault), what);
            Assert.That(plan.OptIn, Is.Zero, what);
            Assert.That(LaunchPlans.Violation(plan, l), Is.EqualTo(PlanViolation.WithinLimits), what);
            // The outer-product tiles: 64 outputs along each branch's long axis by 32 across (one warp's lanes).
            Assert.That((plan.TileH, plan.TileW), Is.EqualTo((64, 32)), what);
        }
    }

    [Test]
    public void APlanOverTheDefaultSharedMemoryMustOptIn()
    {
        // The check itself: a launch over 48 KB without the opt-in flag is a violation, with it only up to the
        // architecture's opt-in maximum.
        var l = DeviceLimits.ForArchitecture(86);
        var plan = LaunchPlans.DwConvFusedWeightGrad(1, 1, 8, 8, [3], [3], l);
        plan.SmemDynamic = l.SmemPerBlockDefault;
        Assert.That(LaunchPlans.Violation(plan, l), Is.EqualTo(PlanViolation.SharedMemory), "48 KB + 16 B static, no opt-in");
        plan.OptIn = 1;
        Assert.That(LaunchPlans.Violation(plan, l), Is.EqualTo(PlanViolation.WithinLimits), "opted in, within 99 KB");
        plan.SmemDynamic = 100 * 1024;
        Assert.That(LaunchPlans.Violation(plan, l), Is.EqualTo(PlanViolation.SharedMemory), "over sm_86's 99 KB");
        Assert.That(LaunchPlans.Violation(plan, DeviceLimits.ForArchitecture(90)), Is.EqualTo(PlanViolation.WithinLimits),
                    "within sm_90's 227 KB");
    }

    // The fused weight gradient at the real K = 51 and a 64 x 64 map (two 32-wide tiles across each branch, one
    // 64-long tile along it), masked, on the emulator against the CPU backend.
    [Test]
    public void FusedWeightGradAtK51On64x64MatchesTheCpuBackendOnTheEmulator()
    {
        var emu = TestDevices.Open("cuda-emu");
        var rng = TestRandom.ForCurrentTest();
        const int n = 1, c = 2, hw = 64;
        int[] kh = [51, 5, 5], kw = [5, 51, 5];
        var x = rng.NormalArray(n * c * hw * hw);
        var dys = kh.Select(_ => rng.NormalArray(n * c * hw * hw)).ToArray();
        var masks = kh.Select((_, b) => rng.MaskArray(c * kh[b] * kw[b], 0.6)).ToArray();
        float[][] Run(Device d)
        {
            var xt = Tensor.FromArray(x, [n, c, hw, hw], d);
            var dyt = dys.Select(v => (Tensor?)Tensor.FromArray(v, [n, c, hw, hw], d)).ToArray();
            var mt = masks.Select((m, b) => (Tensor?)Tensor.FromArray(m, [c, 1, kh[b], kw[b]], d)).ToArray();
            var dws = kh.Select((_, b) => (Tensor?)Tensor.Full([c, 1, kh[b], kw[b]], float.NaN, d)).ToArray();
            xt.Backend.DecomposedDwConvBackwardFilter(xt, dyt, mt, dws);
            return dws.Select(t => t!.ToArray()).ToArray();
        }
        var cpu = Run(Device.Cpu);
        var gpu = Run(emu);
        for (int b = 0; b < kh.Length; b++)
            Expect.AllClose(gpu[b], cpu[b].Select(v => (double)v).ToArray(), 1e-3, 1e-4,
                            rng.Ctx($"fused weight gradient branch {kh[b]}x{kw[b]} on {hw}x{hw}, cuda-emu vs cpu"));
    }
}
