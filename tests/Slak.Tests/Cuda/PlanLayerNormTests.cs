// The launch plans of the LayerNorm kernels at the largest production shape: SLaK-B (the largest preset) and SLaK-T
// (whose 124-wide rows take the 128 class) on 384 px inputs at batch 256. Every LayerNorm a training step runs (the
// stem and downsampling channels-first LayerNorms over (N, C, H*W), each block's last-dim LayerNorm over (N*H*W, C),
// the head's over (N, C4)) is planned with the functions NormKernels launches with, and each launch is checked
// against the sm_80 and sm_90 limits as PlanSweepTests checks the other kernels (LaunchPlans.Violation: grid, block,
// shared memory against the default or opt-in limit, registers), with grid.y / grid.z <= 65,535 and the shared
// memory (ptxas's static bytes plus the plan's dynamic bytes) <= the opt-in limit asserted on their own. CPU only:
// plans are computed, nothing is launched.
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Models;
using Slak.NN;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class PlanLayerNormTests
{
    private const int Image = 384, Batch = 256;
    private static readonly int[] Architectures = [80, 90];
    private static readonly string[] Presets = ["slak_base", "slak_tiny"];

    /// <summary>The kernels added with the warp-per-row LayerNorm; each must be among the planned launches.</summary>
    private static readonly string[] NewKernels =
    [
        "layernorm_rows128_fwd_kernel", "layernorm_rows128_bwd_kernel", "layernorm_rows256_fwd_kernel",
        "layernorm_rows256_bwd_kernel", "layernorm_rows512_fwd_kernel", "layernorm_rows512_bwd_kernel",
        "layernorm_rows1024_fwd_kernel", "layernorm_rows1024_bwd_kernel", "layernorm_param_finalize_kernel",
        "layernorm_cf_bwd_param_partial_kernel",
    ];

    [Test]
    public void EveryLayerNormLaunchOfSlakBaseAndTinyAt384PxBatch256FitsSm80AndSm90()
    {
        var failures = new List<string>();
        var seen = new SortedSet<string>(StringComparer.Ordinal);
        int planned = 0;
        foreach (int sm in Architectures)
        {
            var l = DeviceLimits.ForArchitecture(sm);
            foreach (string preset in Presets)
                foreach (var (kernel, what, plan, _) in Launches(preset, l))
                {
                    planned++;
                    seen.Add(kernel);
                    string where = $"sm_{sm} {preset} {Image}px batch {Batch} {what}: {kernel}";
                    var v = LaunchPlans.Violation(plan, l);
                    if (v != PlanViolation.WithinLimits) failures.Add($"{where}: {v} ({plan})");
                    if (plan.GridY > 65535 || plan.GridZ > 65535)
                        failures.Add($"{where}: grid ({plan.GridX}, {plan.GridY}, {plan.GridZ}) beyond 65,535 in y or z");
                    if ((long)plan.SmemDynamic + plan.SmemStatic > l.SmemPerBlockOptin)
                        failures.Add($"{where}: {plan.SmemDynamic} + {plan.SmemStatic} B of shared memory beyond the " +
                                     $"opt-in {l.SmemPerBlockOptin} B");
                    if (plan.KernelChoice == PlanKernel.None)
                        failures.Add($"{where}: planned as no launch at a non-empty shape ({plan})");
                }
        }
        TestContext.Out.WriteLine($"{planned} LayerNorm launches planned; kernels: {string.Join(", ", seen)}");
        Assert.That(failures, Is.Empty, string.Join("\n", failures.Take(20)));
        Assert.That(NewKernels.Where(k => !seen.Contains(k)), Is.Empty, "new LayerNorm kernels the enumeration missed");
    }

    [Test]
    public void TheNewKernelsAreOneDimensionalAndCoverEveryItem()
    {
        // The row-class, finalize and channels-first partial kernels index their rows / chunks / columns with
        // blockIdx.x only, 8 warps per block: a plan with grid.y or grid.z above 1 or too few blocks would skip work.
        foreach (int sm in Architectures)
        {
            var l = DeviceLimits.ForArchitecture(sm);
            foreach (string preset in Presets)
                foreach (var (kernel, what, plan, warps) in Launches(preset, l).Where(x => NewKernels.Contains(x.Kernel)))
                {
                    string where = $"sm_{sm} {preset} {what}: {kernel} ({plan})";
                    Assert.That((plan.GridY, plan.GridZ, plan.BlockX, plan.BlockY, plan.BlockZ, plan.SmemDynamic),
                                Is.EqualTo((1u, 1u, 256u, 1u, 1u, 0)), where + ": one-dimensional, 256 threads, no dynamic shared memory");
                    Assert.That((long)plan.GridX * NormKernels.LayerNormWarpsPerBlock, Is.GreaterThanOrEqualTo(warps),
                                where + $": blocks for {warps} warps");
                    Assert.That(plan.GridX, Is.LessThanOrEqualTo((uint)l.MaxGridX), where);
                }
        }
    }

    [TestCase(8, 0)]
    [TestCase(9, 0)]
    public void TheLayerNormKernelsStaticSharedMemoryFitsTheirPlans(int major, int minor)
    {
        NvrtcTestSupport.RequireNvrtc();
        var compiler = new NvrtcCompiler(KernelSources.Embedded);
        var l = DeviceLimits.ForArchitecture(major * 10 + minor);
        // norm.cu, and reduce.cu for the wide rows' column_sum_finalize_kernel: the files of the planned kernels.
        var shared = Presets.SelectMany(p => Launches(p, l)).Select(x => KernelSources.Embedded.KernelToFile[x.Kernel])
            .Distinct(StringComparer.Ordinal)
            .SelectMany(f => compiler.Compile(f, new CompileOptions(major, minor) { PtxasVerbose = true }).Resources)
            .ToDictionary(r => r.Kernel, r => r.SharedBytes);
        foreach (string preset in Presets)
            foreach (var (kernel, what, plan, _) in Launches(preset, l))
            {
                Assert.That(shared, Contains.Key(kernel), $"ptxas reports {kernel}");
                long total = (long)shared[kernel] + plan.SmemDynamic;
                long limit = plan.OptIn != 0 ? l.SmemPerBlockOptin : l.SmemPerBlockDefault;
                Assert.That(total, Is.LessThanOrEqualTo(limit),
                            $"sm_{major}{minor} {preset} {what}: {kernel} has {shared[kernel]} B static + {plan.SmemDynamic} B " +
                            $"dynamic shared memory, limit {limit} B");
            }
    }

    /// <summary>Every LayerNorm launch of one training step (forward and backward) of <paramref name="preset"/> at
    /// <see cref="Image"/> px and batch <see cref="Batch"/>, by kernel, as NormKernels plans them; Warps: how many
    /// warps the launch needs (rows, chunks or columns of the one-warp-per-item kernels; 0 for the others).</summary>
    private static List<(string Kernel, string What, LaunchPlan Plan, long Warps)> Launches(string preset, DeviceLimits l)
    {
        var model = new SlakModel(ModelPresets.Get(preset).Config, ModuleInit.ShapeOnly);
        var result = new List<(string, string, LaunchPlan, long)>();
        const int n = Batch;

        void LastDim(string what, long rows, int c)
        {
            if (c <= NormKernels.LayerNormMaxWarpColumns)
            {
                var (fwd, fwdPlan) = NormKernels.RowsForwardLaunch(rows, c, l);
                var (bwd, bwdPlan, perChunk, chunks) = NormKernels.RowsBackwardLaunch(rows, c, l);
                Assert.That((long)chunks * perChunk, Is.GreaterThanOrEqualTo(rows), $"{what}: the chunks cover every row");
                result.Add((fwd, what, fwdPlan, rows));
                result.Add((bwd, what, bwdPlan, chunks));
                result.Add(("layernorm_param_finalize_kernel", what, NormKernels.FinalizePlan(c, l), c));
            }
            else
            {
                // Wider rows (SLaK-B's 1331 at stage 4 and the head): one block per row, column-sum partials.
                result.Add(("layernorm_fwd_kernel", what, LaunchPlans.Rows(rows, LaunchPlans.RowBlock, l), 0));
                result.Add(("layernorm_bwd_data_kernel", what, LaunchPlans.Rows(rows, LaunchPlans.RowBlock, l), 0));
                result.Add(("layernorm_bwd_param_partial_kernel", what, LaunchPlans.ColumnSum(rows, c, l), 0));
                result.Add(("column_sum_finalize_kernel", what, LaunchPlans.Elements(c, LaunchPlans.Block, l), 0));
            }
        }

        void ChannelsFirst(string what, int c, int hw)
        {
            long pixels = (long)n * hw;
            var (partial, pixelChunks, chunks) = NormKernels.ChannelsFirstParamLaunch(n, hw, l);
            Assert.That((long)pixelChunks * NormKernels.LayerNormChannelsFirstChunk, Is.GreaterThanOrEqualTo(hw),
                        $"{what}: the pixel chunks cover every pixel");
            result.Add(("layernorm_cf_fwd_kernel", what, LaunchPlans.GridStride(pixels, l), 0));
            result.Add(("layernorm_cf_bwd_data_kernel", what, LaunchPlans.GridStride(pixels, l), 0));
            // One block per chunk: as many warps as the blocks' 8 warps each.
            result.Add(("layernorm_cf_bwd_param_partial_kernel", what, partial, (long)chunks * NormKernels.LayerNormWarpsPerBlock));
            result.Add(("layernorm_param_finalize_kernel", what, NormKernels.FinalizePlan(c, l), c));
        }

        int s = Image;
        for (int i = 0; i < 4; i++)
        {
            var down = (ModuleList)model.DownsampleLayers[i];
            for (int j = 0; j < down.Count; j++)
            {
                if (down[j] is Conv2d conv) s = conv.OutputSize(s);
                else if (down[j] is LayerNorm ln) ChannelsFirst($"downsample {i} LayerNorm {s}x{s} C={ln.Channels}", ln.Channels, s * s);
            }
            var stage = (ModuleList)model.Stages[i];
            for (int j = 0; j < stage.Count; j++)
            {
                int c = ((SlakBlock)stage[j]).Dim;
                LastDim($"stage {i + 1} block {j} LayerNorm {s}x{s} C={c}", (long)n * s * s, c);
            }
        }
        LastDim($"head LayerNorm C={model.Widths[3]}", n, model.Widths[3]);
        return result;
    }
}
