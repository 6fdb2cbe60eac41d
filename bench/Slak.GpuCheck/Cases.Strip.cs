// Rows of dwconv_strip.cu, the live-tap strip kernel (DwConvStripKernels) that the float32 depthwise launchers run
// at SLaK-T's stages 1-2 instead of dwconv_fused_kernel: the training forward (three branch outputs), the inference
// sum and the summed input gradient at stages 1 and 2 (batch 128, M x 5 + 5 x M + 5 x 5, masks of density 0.6), and
// the weight gradient of dwconv_strip_wgrad_kernel (same module) at the same shapes,
// through the same backend operations and CPU references as the fused rows (RunFusedAt). PyTorch's depthwise conv2d
// at these stages runs beside them in bench/gpu/run.sh (bench/torch/dwconv_peer.py; dense, it has no masks).
// The kernel takes maps of 17 to 64 per side, so the smoke scale (14 x 14 and 7 x 7 maps) runs the rows at the shapes
// of the strip instances of the emulator's test library (CMakeLists.txt's SLAK_EMU_TEST_INSTANCES: 17 x 19 with 13x5,
// 5x13, 5x5 and 20 x 24 with 31x3, 3x31, 3x3), and every row first requires that the strip kernel's plan takes each
// branch. On a GPU the row also requires that the launchers take the strip kernel. The emulator compiles nothing and
// its production library (the one the check and bench/gpu/ci-check.sh load) holds no strip instance, so there the
// launchers run dwconv_fused_kernel and the row accepts that launch (FallbackKernel); under the test library
// (GpuCheckRunTests) the strip kernel itself runs. Every output element is written by one block (the branches after
// the first add into it), so the generic poison comparison applies under --blocks sample.
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private static IEnumerable<GpuCase> Strip()
    {
        const string g = "dwconv_strip";
        foreach (var op in new[] { FusedOp.Forward, FusedOp.ForwardSum, FusedOp.BackwardData })
            for (int stage = 0; stage < 2; stage++)
            {
                int st = stage;
                var c = FusedCase(g, op, $"stage {stage + 1}", ctx => RunStrip(ctx, op, st));
                yield return c with
                {
                    Name = DwConvStripKernels.Kernel, Op = c.Op + " (live-tap strip kernel)",
                    FallbackKernel = "dwconv_fused_kernel",
                };
            }
        // The weight gradient (dwconv_strip_wgrad_kernel, same module and plan shapes): per-block partials along
        // grid.y, summed by column_sum_finalize_kernel, as the fused weight gradient's rows.
        for (int stage = 0; stage < 2; stage++)
        {
            int st = stage;
            var c = FusedCase(g, FusedOp.BackwardFilter, $"stage {stage + 1}", ctx => RunStrip(ctx, FusedOp.BackwardFilter, st));
            yield return c with
            {
                Name = DwConvStripKernels.WgradKernel, Op = c.Op + " (live-tap strip weight gradient)",
                FallbackKernel = "dwconv_fused_wgrad_kernel",
            };
        }
    }

    private static void RunStrip(CheckContext ctx, FusedOp op, int stage)
    {
        const double density = 0.6;
        var s = Sizes.For(ctx.Full);
        (int H, int W, (int, int)[] Sizes) shape = ctx.Full
            ? (s.H[stage], s.H[stage], [(s.M[stage], s.Small), (s.Small, s.M[stage]), (s.Small, s.Small)])
            : stage == 0
                ? (17, 19, [(13, 5), (5, 13), (5, 5)])
                : (20, 24, [(31, 3), (3, 31), (3, 3)]);
        var (h, w, sizes) = shape;
        int b = s.B, c = s.C[stage];
        RequireStrip(ctx, op, b, c, h, w, sizes);
        RunFusedAt(ctx, op, b, c, h, w, sizes, density);
    }

    /// <summary>Fails the row unless the strip kernel's plan takes every branch at this shape and, on a GPU, the
    /// launchers would run it (so a strip row never times another kernel under the strip kernel's name).</summary>
    private static void RequireStrip(CheckContext ctx, FusedOp op, int b, int c, int h, int w, (int, int)[] sizes)
    {
        var dev = ctx.Gpu.Gpu;
        var limits = DeviceLimits.For(dev);
        foreach (var (kh, kw) in sizes)
        {
            var plan = DwConvStripKernels.Plan(b, c, h, w, kh, kw, limits);
            if (plan.KernelChoice != PlanKernel.DwConvStrip)
                throw new InvalidOperationException($"dwconv_strip_kernel's plan does not take N={b}, C={c}, {h}x{w}, {kh}x{kw}: {plan}");
        }

        bool wgrad = op == FusedOp.BackwardFilter;
        if (wgrad)
            foreach (var (kh, kw) in sizes)
                if (DwConvStripKernels.WgradPlan(b, c, h, w, kh, kw, limits).KernelChoice != PlanKernel.DwConvStrip)
                    throw new InvalidOperationException($"dwconv_strip_wgrad_kernel's plan does not take N={b}, C={c}, {h}x{w}, {kh}x{kw}");

        var branches = sizes.Select(t => new DwConvFusedBranch(default, default, t.Item1, t.Item2)).ToArray();
        if (dev is not EmulatedDevice && !(wgrad ? DwConvStripKernels.TakesWgrad(dev, branches, b, c, h, w)
                                                 : DwConvStripKernels.Takes(dev, branches, b, c, h, w)))
            throw new InvalidOperationException($"the launchers would not run the strip kernel at N={b}, C={c}, {h}x{w} on {dev.Name}");
    }
}
