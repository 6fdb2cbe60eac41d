// The production-shape sweep of issue 19: every kernel launch a training step and an inference pass make, for
// slak_tiny / slak_small / slak_base / convnext_tiny at 224, 256 and 384 px, batch 1, 32, 128 and 256, fused and
// unfused, planned by the launch plans of slak_plan.h and checked against the sm_80 and sm_90 limits. CPU only: plans
// are computed, nothing is launched.
//
// How "every launch" is enumerated: per layer, from the real model (SlakModel built shape-only from the preset, so
// widths, depths, kernel sizes and parameters are the ones training uses), following what CudaBackend does for each
// operator of the forward, both backwards (input and weight gradients), the loss, the optimizer (AdamW on every
// parameter, the gradient-norm sum of squares), prune/regrow (every weight of rank >= 2, a superset of what the
// sparse trainer prunes) and inference (BatchNorm folded, the fused summing mode). Linear layers are cuBLAS GEMMs
// (no kernel of ours) and only their bias / reduction kernels are planned. The C ABI's decomposed functions call the
// same plan functions (cuda/capi/slak_capi.cpp), listed here under "capi" with the shapes they receive.
using NUnit.Framework;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Models;
using Slak.NN;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class PlanSweepTests
{
    private static readonly string[] Models = ["slak_tiny", "slak_small", "slak_base", "convnext_tiny"];
    private static readonly int[] ImageSizes = [224, 256, 384];
    private static readonly int[] Batches = [1, 32, 128, 256];
    private static readonly int[] Architectures = [80, 90];

    private static readonly Dictionary<string, SlakModel> Built = new();

    private static SlakModel Model(string preset)
    {
        lock (Built)
        {
            if (!Built.TryGetValue(preset, out var m))
                Built[preset] = m = new SlakModel(ModelPresets.Get(preset).Config, ModuleInit.ShapeOnly);
            return m;
        }
    }

    [TestCaseSource(nameof(Models))]
    public void EveryLaunchOfTheModelFitsSm80AndSm90(string preset)
    {
        var model = Model(preset);
        long planned = 0;
        var fallbacks = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var failures = new List<string>();
        foreach (int sm in Architectures)
        {
            var limits = DeviceLimits.ForArchitecture(sm);
            foreach (int image in ImageSizes)
                foreach (int batch in Batches)
                    foreach (bool fused in new[] { true, false })
                        foreach (var (what, plan) in ModelLaunches.Enumerate(model, image, batch, fused, limits))
                        {
                            planned++;
                            var v = LaunchPlans.Violation(plan, limits);
                            if (v != PlanViolation.WithinLimits && failures.Count < 20)
                                failures.Add($"sm_{sm} {preset} {image}px batch {batch} fused={fused} {what}: {v} ({plan})");
                            if (plan.Fallback != 0)
                            {
                                string key = $"{what.Split(' ')[0]} -> {plan.FallbackReason}";
                                fallbacks[key] = fallbacks.GetValueOrDefault(key) + 1;
                            }
                        }
        }
        TestContext.Out.WriteLine($"{preset}: {planned} launches planned; fallbacks: " +
                                  (fallbacks.Count == 0 ? "none" : string.Join(", ", fallbacks.Select(f => $"{f.Key} x{f.Value}"))));
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
        Assert.That(planned, Is.GreaterThan(1000), "the sweep enumerated the model's launches");
    }

    [Test]
    public void TheSweepContainsTheShapesOfBothBugs()
    {
        var l = DeviceLimits.ForArchitecture(90);
        // (a) unfused SLaK-T at batch 128: each branch is the family's one-branch case, whose fused kernel puts the
        // N*C = 127,744 planes of stage 4 in grid.x (no 65,535 limit); the per-branch kernels' split is planned by
        // PlanDwConvRegressionTests.
        var unfused = ModelLaunches.Enumerate(Model("slak_tiny"), 224, 128, fused: false, l).ToList();
        Assert.That(unfused.Any(p => p.Plan.KernelChoice == PlanKernel.DwConvFused && p.Plan.GridX > 65535),
                    "stage 4 of unfused slak_tiny at batch 128: one-branch fused kernels over 127,744 planes");
        // (b) fused SLaK-T at 256 px: the fused weight gradient of stage 1 (K = 51, 64 x 64) runs with 64 x 32 tiles.
        var fused = ModelLaunches.Enumerate(Model("slak_tiny"), 256, 32, fused: true, l).ToList();
        Assert.That(fused.Any(p => p.Plan.KernelChoice == PlanKernel.DwConvFusedWgrad && p.Plan.TileH == 64 &&
                                   p.Plan.SmemDynamic + p.Plan.SmemStatic <= l.SmemPerBlockDefault),
                    "the stage-1 fused weight gradient of slak_tiny at 256 px");
    }
}

/// <summary>The launch plans of one training step and one inference pass of a model (see the file header).</summary>
internal static class ModelLaunches
{
    public static IEnumerable<(string What, LaunchPlan Plan)> Enumerate(SlakModel model, int image, int n, bool fused,
                                                                        DeviceLimits l)
    {
        int block = LaunchPlans.Block, rowBlock = LaunchPlans.RowBlock;
        var result = new List<(string, LaunchPlan)>();
        void Add(string what, LaunchPlan p) => result.Add((what, p));
        void GridStride(string what, long count) => Add(what, LaunchPlans.GridStride(count, l));
        void ColumnSum(string what, long rows, long c)
        {
            Add(what, LaunchPlans.ColumnSum(rows, c, l));
            Add(what + " finalize", LaunchPlans.Elements(c, block, l));
        }
        void Sum(string what, long count)
        {
            Add(what + " partial", LaunchPlans.Rows(LaunchPlans.SumBlocks, block, l));
            Add(what + " final", LaunchPlans.Rows(1, block, l));
        }
        void LayerNormLastDim(string what, long rows, int c)
        {
            if (c > NormKernels.LayerNormMaxWarpColumns)
            {
                Add(what + " fwd", LaunchPlans.Rows(rows, rowBlock, l));
                Add(what + " bwd_data", LaunchPlans.Rows(rows, rowBlock, l));
                ColumnSum(what + " bwd_param", rows, c);
                return;
            }
            Add(what + " rows fwd", NormKernels.RowsForwardLaunch(rows, c, l).Plan);
            Add(what + " rows bwd", NormKernels.RowsBackwardLaunch(rows, c, l).Plan);
            Add(what + " param_finalize", NormKernels.FinalizePlan(c, l));
        }

        int s = image;
        for (int i = 0; i < 4; i++)
        {
            var down = (ModuleList)model.DownsampleLayers[i];
            for (int j = 0; j < down.Count; j++)
            {
                switch (down[j])
                {
                    case Conv2d conv:
                        int o = conv.OutputSize(s);
                        GridStride("conv2d_fwd", (long)n * conv.OutChannels * o * o);
                        GridStride("conv2d_bwd_data", (long)n * conv.InChannels * s * s);
                        GridStride("conv2d_bwd_filter", (long)conv.OutChannels * conv.InChannels * conv.KernelSize * conv.KernelSize);
                        Add("conv2d_bwd_bias", LaunchPlans.Rows(conv.OutChannels, block, l));
                        var cp = new Conv2dParams(n, conv.InChannels, s, s, conv.OutChannels, conv.KernelSize, conv.KernelSize,
                                                  conv.Stride, conv.Stride, conv.Padding, conv.Padding, o, o);
                        if (Conv2dPatchifyKernels.Applies(cp))
                            foreach (var pass in Enum.GetValues<Conv2dPatchifyKernels.Pass>())
                                Add($"patchify {pass}", Conv2dPatchifyKernels.Plan(l, cp, pass, bias: true));
                        s = o;
                        break;
                    case LayerNorm ln:
                        GridStride("layernorm_cf_fwd", (long)n * s * s);
                        GridStride("layernorm_cf_bwd_data", (long)n * s * s);
                        Add("layernorm_cf_bwd_param_partial", NormKernels.ChannelsFirstParamLaunch(n, s * s, l).Plan);
                        Add("layernorm_param_finalize", NormKernels.FinalizePlan(ln.Channels, l));
                        break;
                }
            }
            var stage = (ModuleList)model.Stages[i];
            for (int j = 0; j < stage.Count; j++)
            {
                var blk = (SlakBlock)stage[j];
                int c = blk.Dim;
                long rows = (long)n * s * s, total = rows * c;
                var branches = blk.LargeKernel.Branches.ToArray();
                int[] kh = branches.Select(b => b.Conv.KernelHeight).ToArray();
                int[] kw = branches.Select(b => b.Conv.KernelWidth).ToArray();
                string tag = $"stage {i + 1} {s}x{s} C={c} K={string.Join("+", kh.Zip(kw, (a, b) => $"{a}x{b}"))}";
                void PerBranch(string what, int from, int to)
                {
                    for (int b = from; b < to; b++)
                    {
                        var fwd = LaunchPlans.DwConvForward(n, c, s, s, kh[b], kw[b], l);
                        Add($"dwconv_fwd {what} {tag}", fwd);
                        Add($"dwconv_bwd_data {what} {tag}", fwd); // the flipped filter: same plan
                        Add($"dwconv_wgrad {what} {tag}", LaunchPlans.DwConvWeightGrad(n, c, s, s, kh[b], kw[b], l));
                        Add($"dwconv_wgrad_finalize {what} {tag}", LaunchPlans.Elements((long)c * kh[b] * kw[b], block, l));
                        if (b > from) GridStride($"add {what} {tag}", total); // per-branch sums
                    }
                }
                // The depthwise family on branches [from, to): the fused kernels, or the per-branch ones where a plan
                // falls back.
                void Family(string what, int from, int to)
                {
                    int[] fh = kh[from..to], fw = kw[from..to];
                    var f = LaunchPlans.DwConvFused(n, c, s, s, fh, fw, l);
                    Add($"dwconv_fused fwd/bwd_data/inference {what} {tag}", f);
                    Add($"dwconv_small fwd/bwd_data/inference {what} {tag}", LaunchPlans.DwConvSmall(n, c, s, s, fh, fw, l));
                    var wg = LaunchPlans.DwConvFusedWeightGrad(n, c, s, s, fh, fw, l);
                    Add($"dwconv_fused_wgrad {what} {tag}", wg);
                    if (f.KernelChoice == PlanKernel.PerBranch || wg.KernelChoice == PlanKernel.PerBranch)
                        PerBranch($"fallback {what}", from, to);
                    if (wg.KernelChoice == PlanKernel.DwConvFusedWgrad)
                        for (int b = from; b < to; b++)
                            Add($"dwconv_fused_wgrad_finalize {what} {tag}", LaunchPlans.Elements((long)c * kh[b] * kw[b], block, l));
                }
                if (fused) Family("fused", 0, kh.Length);
                else
                    for (int b = 0; b < kh.Length; b++) Family($"unfused branch {b}", b, b + 1); // one-branch calls
                // The C ABI's decomposed functions on this shape (the sum of the branches with one dy).
                var capi = LaunchPlans.DwConvFused(n, c, s, s, kh, kw, l);
                Add($"capi decomposed fwd/bwd_data {tag}", capi);
                Add($"capi decomposed bwd_filter {tag}", LaunchPlans.DwConvFusedWeightGrad(n, c, s, s, kh, kw, l));
                if (capi.KernelChoice == PlanKernel.PerBranch) PerBranch("capi", 0, kh.Length);
                foreach (var br in branches)
                {
                    if (br.Bn is null) continue;
                    Add($"batchnorm partial sums {tag}", LaunchPlans.Rows((long)c * NormKernels.BatchNormChunks(n, s * s), block, l));
                    GridStride($"batchnorm finalize {tag}", c);
                    Add($"batchnorm affine/dx {tag}", LaunchPlans.Rows(NormKernels.BatchNormElementBlocks(total), block, l));
                }
                for (int b = 1; b < branches.Length; b++) GridStride($"add branches {tag}", total);
                GridStride($"permute to channels-last {tag}", total);
                LayerNormLastDim($"layernorm {tag}", rows, c);
                GridStride($"add_bias pwconv1 {tag}", rows * 4 * c);
                ColumnSum($"dbias pwconv1 {tag}", rows, 4L * c);
                GridStride($"gelu fwd/bwd {tag}", rows * 4 * c);
                GridStride($"add_bias pwconv2 {tag}", total);
                ColumnSum($"dbias pwconv2 {tag}", rows, c);
                if (blk.Gamma is not null)
                {
                    GridStride($"mul_last_dim gamma {tag}", total);
                    ColumnSum($"dgamma {tag}", rows, c);
                }
                GridStride($"permute to channels-first {tag}", total);
                GridStride($"mul_rows drop_path {tag}", total);
                GridStride($"add residual {tag}", total);
            }
        }

        int c4 = model.Widths[3], classes = model.Config.NumClasses;
        Add("global_avg_pool", LaunchPlans.Rows((long)n * c4, rowBlock, l));
        GridStride("global_avg_pool_bwd", (long)n * c4 * s * s);
        LayerNormLastDim("layernorm head", n, c4);
        GridStride("add_bias head", (long)n * classes);
        ColumnSum("dbias head", n, classes);
        Add("softmax_xent_fwd", LaunchPlans.Rows(n, rowBlock, l));
        Sum("loss mean", n);
        GridStride("fill_from_scalar loss", 1);
        Add("softmax_xent_bwd", LaunchPlans.Rows(n, rowBlock, l));

        var sparse = (Block: (int)LaunchPlans.Constant("kSparseBlock"), Max: (int)LaunchPlans.Constant("kSparseMaxBlocks"));
        int scan = (int)LaunchPlans.Constant("kSparseScanThreads");
        foreach (var (name, p) in model.NamedParameters())
        {
            GridStride($"adamw {name}", p.Numel);
            Sum($"grad-norm sum of squares {name}", p.Numel);
            if (p.Rank < 2) continue;
            Add($"sparse element kernels {name}", LaunchPlans.GridStride(p.Numel, l, sparse.Block, sparse.Max));
            Add($"sparse select init {name}", LaunchPlans.Rows(1, sparse.Block, l));
            Add($"sparse select scan {name}", LaunchPlans.Rows(1, scan, l));
        }
        return result;
    }
}
