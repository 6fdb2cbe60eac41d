// The modeled time of the live-tap strip kernel (cuda/kernels/dwconv_strip.cu, DwConvStripKernels) at a SLaK-T stage,
// by DwConvModel's rules (useful FMAs over in-bounds products with live taps, issue slots at the FP32 FMA rate, the HBM
// floor). One launch per branch (forward: each branch writes its output; input gradient and inference sum: branch 0
// writes, the others add). From the sm_90 machine code of each branch's module (its map and kernel as defines):
//   - the strip loops (one per strip of a line: the innermost loops with FFMAs), each run once per short-axis tap,
//     split by SassKernel.SkipMix into the slots every iteration issues (the live-tap tests, their branches, the
//     input and weight loads) and those a masked tap's branch jumps over (its products): a warp issues
//     Always + density x Skippable slots per iteration (the live bits are the same for every lane of the block, so a
//     masked tap is skipped by the whole warp);
//   - issued FFMAs: AlwaysFfma + density x SkippableFfma per iteration (the products are exactly the in-image ones:
//     lane efficiency is lost only to threads past the block's lines and to short-axis taps on zero padding lines).
// Beside the strip loops, estimates (not counted in the machine code; read off the sm_90 listing of the 56 x 56
// module once): staging (StageSlotsPerVector per 4 inputs a lane stages, ZeroSlotsPerVector per 4 zeroed floats),
// the stores (StoreSlots per output, AccumulateStoreSlots when adding) and FixedSlots per warp (weights, live bits,
// prologue). Ignored as in DwConvModel: latencies and stalls (a live tap's products depend on one broadcast weight
// load), occupancy (registers: 135-139 at 56 x 56 and 28 x 28, 2 blocks of 7 warps per SM), the instruction cache
// (a 56 x 56 module's strip loop is ~2,400 instructions, 38 KB), shared-memory bandwidth (one 128-bit load per 4 taps
// per lane), L2.
// The weight gradient (dwconv_strip_wgrad_kernel, same module, WeightGrad below) is read the same way: its short-axis
// loop (the innermost loop with FFMAs) is split at its first barrier into the taps (SkipMix: every tap's test, branch
// and loads always; a live tap's products and its store to the reduction row skippable) and the block's reduction
// (SkipMix again: the barriers and the branch every warp issues always; the row sums only the warps of threads
// t < kl run). Estimated beside them: staging as in the forward, the dy lines' global loads (DyLoadSlots per value a
// thread loads), the reduction rows' zeroing and FixedSlots per warp; column_sum_finalize_kernel's slots are ignored
// (its bytes are counted).
using System.Globalization;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.Bench.KernelModel;

internal static class DwConvStripModel
{
    /// <summary>Issue slots per 128-bit vector of inputs a lane stages (load, index arithmetic, four transposed shared
    /// stores, loop): an estimate from the sm_90 listing (103 instructions per 4 vectors).</summary>
    public const int StageSlotsPerVector = 26;

    /// <summary>Issue slots per 4 floats of shared memory zeroed (one 128-bit store and its loop): an estimate.</summary>
    public const int ZeroSlotsPerVector = 3;

    /// <summary>Issue slots per output written, and per output added to (load, add, store): estimates.</summary>
    public const int StoreSlots = 3, AccumulateStoreSlots = 5;

    /// <summary>Issue slots per warp for the weights, the live bits (one ballot per 32 taps) and the prologue: an
    /// estimate.</summary>
    public const int FixedSlots = 400;

    /// <summary>Issue slots per dy value a weight-gradient thread loads into its registers (the global load and its
    /// address): an estimate.</summary>
    public const int DyLoadSlots = 2;

    /// <summary>The strip loops of one module per iteration (one short-axis tap), summed over its strips.</summary>
    public sealed record Loops(double Always, double AlwaysFfma, double Skippable, double SkippableFfma, int Registers);

    private static readonly DeviceLimits Limits = DeviceLimits.ForArchitecture(90);

    /// <summary>Whether the strip kernel's plan takes every branch of the stage at batch <paramref name="n"/> (the
    /// launchers' DwConvStripKernels.Takes on a GPU).</summary>
    public static bool Chosen(DwConvModel.Stage st, int n) =>
        st.Branches.All(b => DwConvStripKernels.Plan(n, st.C, st.H, st.H, b.Kh, b.Kw, Limits).KernelChoice == PlanKernel.DwConvStrip);

    /// <summary>The module label of a branch (kernel-model's rows).</summary>
    public static string Module(DwConvModel.Stage st, (int Kh, int Kw) b) =>
        string.Create(CultureInfo.InvariantCulture, $"dwconv_strip[{st.H}x{st.H}:{b.Kh}x{b.Kw}]");

    /// <summary>The module's definitions, as the launcher passes them.</summary>
    public static IReadOnlyList<string> Defines(DwConvModel.Stage st, (int Kh, int Kw) b) =>
        DwConvStripKernels.Specialization(st.H, st.H, b.Kh, b.Kw);

    /// <summary>The strip loops of a module's listing (every innermost loop with an FFMA).</summary>
    public static Loops Read(SassKernel k, int registers)
    {
        double a = 0, af = 0, s = 0, sf = 0;
        foreach (var loop in k.InnermostLoops.Where(l => k.Mix(l).Ffma > 0))
        {
            var m = k.SkipMix(loop);
            (a, af, s, sf) = (a + m.Always, af + m.AlwaysFfma, s + m.Skippable, sf + m.SkippableFfma);
        }
        return new Loops(a, af, s, sf, registers);
    }

    /// <summary>Forward (<paramref name="accumulate"/> false: every branch writes its own output) or input gradient /
    /// inference sum (true: branches after the first add) of one stage at <paramref name="density"/>.</summary>
    public static DwConvModel.Estimate Forward(string pass, DwConvModel.Stage st, int n, double density, bool accumulate,
                                               Func<(int Kh, int Kw), Loops> code)
    {
        double useful = 0, issuedFfma = 0, hotSlots = 0, extra = 0, bytes = 0;
        string plan = "";
        double occupancy = double.PositiveInfinity;
        int bankWays = 1;
        int h = st.H, w = st.H;
        for (int bi = 0; bi < st.Branches.Length; bi++)
        {
            var (kh, kw) = st.Branches[bi];
            var p = DwConvStripKernels.Plan(n, st.C, h, w, kh, kw, Limits);
            if (p.KernelChoice != PlanKernel.DwConvStrip) throw new InvalidOperationException($"the strip kernel does not take {st.Name} {kh}x{kw}");
            if (bi == 0) plan = p.ToString() + ", one launch per branch";
            bool tall = kh >= kw;
            int lines = tall ? w : h, len = tall ? h : w, ks = tall ? kw : kh;
            int images = DwConvStripKernels.Images(len, lines), per = DwConvStripKernels.ImagesPerThread(len);
            int threads = DwConvStripKernels.ThreadGroups(lines) * lines, warps = (threads + 31) / 32;
            double blockWarps = (double)st.C * ((n + images - 1) / images) * warps;
            var c = code((kh, kw));
            occupancy = Math.Min(occupancy, DwConvModel.Occupancy(c.Registers, threads, p.SmemDynamic));
            useful += density * DwConvModel.ValidPairs(h, kh) * DwConvModel.ValidPairs(w, kw) * (double)n * st.C;
            issuedFfma += blockWarps * ks * (c.AlwaysFfma + density * c.SkippableFfma);
            hotSlots += blockWarps * ks * (c.Always + density * c.Skippable);
            int stride = DwConvStripKernels.LineStride(len), plane = DwConvStripKernels.PlaneFloats(lines, ks, len);
            double stage = Math.Ceiling(images * h * w / 4.0 / threads) * StageSlotsPerVector
                           + Math.Ceiling(images * plane / 4.0 / threads) * ZeroSlotsPerVector;
            // The strip loop's 128-bit input loads: lane t reads line t % lines of image t / lines.
            for (int wp = 0; wp < warps; wp++)
                bankWays = Math.Max(bankWays, DwConvModel.Conflict(l =>
                {
                    int t = Math.Min(threads - 1, 32 * wp + l);
                    return (long)(t / lines) * plane + (long)(t % lines) * stride;   // image t / lines (and + groups)
                }, 4));
            bool adds = accumulate && bi > 0;
            extra += blockWarps * (stage + per * len * (adds ? AccumulateStoreSlots : StoreSlots) + FixedSlots);
            bytes += (double)n * st.C * h * w * 4.0 * (adds ? 3 : 2) + st.C * kh * kw * 8.0;
        }
        var e = DwConvModel.Make(pass, st.Name, useful, issuedFfma, issuedFfma / hotSlots, bytes, plan, extra);
        return e with { Occupancy = occupancy, BankWays = bankWays };
    }

    /// <summary>The weight-gradient kernel's short-axis loop per iteration: the taps (Always: every tap's live test,
    /// branch and loads; Skippable: a live tap's products, the sum of its two chains and its store) and the block's
    /// reduction after the first barrier (ReduceAlways: what every warp issues; ReduceBody: the row sum the warps of
    /// threads t &lt; kl run).</summary>
    public sealed record WgradLoop(double Always, double AlwaysFfma, double Skippable, double SkippableFfma,
                                   double ReduceAlways, double ReduceBody, int Registers);

    /// <summary>The short-axis loop of a dwconv_strip_wgrad_kernel listing (its only innermost loop with FFMAs), split at
    /// its first barrier.</summary>
    public static WgradLoop ReadWgrad(SassKernel k, int registers)
    {
        var loop = k.InnermostLoops.Where(l => k.Mix(l).Ffma > 0).OrderByDescending(l => k.Mix(l).Ffma).First();
        int bar = k.Instructions.First(i => i.Address > loop.Start && i.Address <= loop.End && i.Base == "BAR").Address;
        int last = k.Instructions.Last(i => i.Address < bar).Address;
        var taps = k.SkipMix(new SassLoop(loop.Start, last));
        var red = k.SkipMix(new SassLoop(bar, loop.End));
        if (red.AlwaysFfma + red.SkippableFfma > 0)
            throw new InvalidOperationException($"{k.Name}: FFMAs after the short-axis loop's first barrier");
        return new WgradLoop(taps.Always, taps.AlwaysFfma, taps.Skippable, taps.SkippableFfma, red.Always, red.Skippable, registers);
    }

    /// <summary>Whether the strip weight gradient's plan takes every branch of the stage at batch <paramref name="n"/>
    /// (the launchers' DwConvStripKernels.TakesWgrad on a GPU).</summary>
    public static bool WgradChosen(DwConvModel.Stage st, int n) =>
        st.Branches.All(b => DwConvStripKernels.WgradPlan(n, st.C, st.H, st.H, b.Kh, b.Kw, Limits).KernelChoice == PlanKernel.DwConvStrip);

    /// <summary>Weight gradient of one stage on dwconv_strip_wgrad_kernel at <paramref name="density"/>: per branch
    /// launch and block, per short-axis tap, every warp issues the taps' Always + density x Skippable and the
    /// reduction's ReduceAlways, the warps of threads t &lt; kl its ReduceBody (counted whole: a warp runs it when any
    /// of its lanes' taps is live); the estimates beside them as in <see cref="Forward"/>.</summary>
    public static DwConvModel.Estimate WeightGrad(DwConvModel.Stage st, int n, double density, Func<(int Kh, int Kw), WgradLoop> code)
    {
        double useful = 0, issuedFfma = 0, hotSlots = 0, extra = 0, bytes = 0;
        string plan = "";
        double occupancy = double.PositiveInfinity;
        int bankWays = 1;
        int h = st.H, w = st.H;
        for (int bi = 0; bi < st.Branches.Length; bi++)
        {
            var (kh, kw) = st.Branches[bi];
            var p = DwConvStripKernels.WgradPlan(n, st.C, h, w, kh, kw, Limits);
            if (p.KernelChoice != PlanKernel.DwConvStrip) throw new InvalidOperationException($"the strip weight gradient does not take {st.Name} {kh}x{kw}");
            if (bi == 0) plan = "DwConvStripWgrad" + p.ToString()[p.KernelChoice.ToString().Length..] + ", one launch per branch";
            bool tall = kh >= kw;
            int lines = tall ? w : h, len = tall ? h : w, ks = tall ? kw : kh, kl = tall ? kh : kw;
            int images = DwConvStripKernels.Images(len, lines), per = DwConvStripKernels.ImagesPerThread(len);
            int threads = (int)p.BlockX, warps = (threads + 31) / 32, reduceWarps = (kl + 31) / 32;
            double blocks = (double)st.C * p.GridY;
            var c = code((kh, kw));
            occupancy = Math.Min(occupancy, DwConvModel.Occupancy(c.Registers, threads, p.SmemDynamic));
            useful += density * DwConvModel.ValidPairs(h, kh) * DwConvModel.ValidPairs(w, kw) * (double)n * st.C;
            issuedFfma += blocks * warps * ks * (c.AlwaysFfma + density * c.SkippableFfma);
            hotSlots += blocks * warps * ks * (c.Always + density * c.Skippable);
            extra += blocks * ks * (warps * c.ReduceAlways + reduceWarps * c.ReduceBody);
            int stride = DwConvStripKernels.LineStride(len), plane = DwConvStripKernels.PlaneFloats(lines, ks, len);
            double stage = Math.Ceiling(images * h * w / 4.0 / threads) * StageSlotsPerVector
                           + Math.Ceiling(images * plane / 4.0 / threads) * ZeroSlotsPerVector
                           + Math.Ceiling((double)kl * DwConvStripKernels.LineStride(threads) / threads) * ZeroSlotsPerVector;
            // The taps' 128-bit input loads: lane t reads line t % lines of image t / lines, as the forward's.
            for (int wp = 0; wp < warps; wp++)
                bankWays = Math.Max(bankWays, DwConvModel.Conflict(l =>
                {
                    int t = Math.Min(threads - 1, 32 * wp + l);
                    return (long)(t / lines) * plane + (long)(t % lines) * stride;
                }, 4));
            extra += blocks * warps * (stage + per * len * DyLoadSlots + FixedSlots);
            bytes += (double)n * st.C * h * w * 4.0 * 2 + 2.0 * p.WorkspaceBytes + st.C * kh * kw * 8.0;
        }
        var e = DwConvModel.Make("wgrad", st.Name, useful, issuedFfma, issuedFfma / hotSlots, bytes, plan, extra);
        return e with { Occupancy = occupancy, BankWays = bankWays };
    }
}
