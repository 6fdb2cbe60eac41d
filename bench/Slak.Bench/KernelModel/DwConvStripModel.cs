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

    /// <summary>Issue slots per 4 floats of shared memory zeroed (one 128-bit store and its loop): an
    /// estimate.</summary>
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
        var sum = new Totals();
        int h = st.H, w = st.H;
        for (int bi = 0; bi < st.Branches.Length; bi++)
        {
            var (kh, kw) = st.Branches[bi];
            var p = DwConvStripKernels.Plan(n, st.C, h, w, kh, kw, Limits);
            if (p.KernelChoice != PlanKernel.DwConvStrip) throw new InvalidOperationException($"the strip kernel does not take {st.Name} {kh}x{kw}");
            if (bi == 0) sum.Plan = p.ToString() + ", one launch per branch";
            var g = Strip.Of(h, w, kh, kw);
            int threads = DwConvStripKernels.ThreadGroups(g.Lines) * g.Lines, warps = (threads + 31) / 32;
            double blockWarps = (double)st.C * ((n + g.Images - 1) / g.Images) * warps;
            var c = code((kh, kw));
            sum.AddBranch(st, n, density, kh, kw, c.Registers, threads, p.SmemDynamic);
            sum.IssuedFfma += blockWarps * g.Ks * (c.AlwaysFfma + density * c.SkippableFfma);
            sum.HotSlots += blockWarps * g.Ks * (c.Always + density * c.Skippable);
            double stage = g.StageSlots(h, w, threads);
            sum.BankWays = Math.Max(sum.BankWays, g.InputBankWays(threads, warps));
            bool adds = accumulate && bi > 0;
            sum.Extra += blockWarps * (stage + g.Per * g.Len * (adds ? AccumulateStoreSlots : StoreSlots) + FixedSlots);
            sum.Bytes += (double)n * st.C * h * w * 4.0 * (adds ? 3 : 2) + st.C * kh * kw * 8.0;
        }
        return sum.Estimate(pass, st);
    }

    /// <summary>The weight-gradient kernel's short-axis loop per iteration: the taps (Always: every tap's live test,
    /// branch and loads; Skippable: a live tap's products, the sum of its two chains and its store) and the block's
    /// reduction after the first barrier (ReduceAlways: what every warp issues; ReduceBody: the row sum the warps of
    /// threads t &lt; kl run).</summary>
    public sealed record WgradLoop(double Always, double AlwaysFfma, double Skippable, double SkippableFfma,
                                   double ReduceAlways, double ReduceBody, int Registers);

    /// <summary>The short-axis loop of a dwconv_strip_wgrad_kernel listing (its only innermost loop with FFMAs), split
    /// at its first barrier.</summary>
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
        var sum = new Totals();
        int h = st.H, w = st.H;
        for (int bi = 0; bi < st.Branches.Length; bi++)
        {
            var (kh, kw) = st.Branches[bi];
            var p = DwConvStripKernels.WgradPlan(n, st.C, h, w, kh, kw, Limits);
            if (p.KernelChoice != PlanKernel.DwConvStrip) throw new InvalidOperationException($"the strip weight gradient does not take {st.Name} {kh}x{kw}");
            if (bi == 0) sum.Plan = "DwConvStripWgrad" + p.ToString()[p.KernelChoice.ToString().Length..] + ", one launch per branch";
            var g = Strip.Of(h, w, kh, kw);
            int threads = (int)p.BlockX, warps = (threads + 31) / 32, reduceWarps = (g.Kl + 31) / 32;
            double blocks = (double)st.C * p.GridY;
            var c = code((kh, kw));
            sum.AddBranch(st, n, density, kh, kw, c.Registers, threads, p.SmemDynamic);
            sum.IssuedFfma += blocks * warps * g.Ks * (c.AlwaysFfma + density * c.SkippableFfma);
            sum.HotSlots += blocks * warps * g.Ks * (c.Always + density * c.Skippable);
            sum.Extra += blocks * g.Ks * (warps * c.ReduceAlways + reduceWarps * c.ReduceBody);
            // Staging as in the forward, plus zeroing the block's reduction rows.
            double stage = g.StageSlots(h, w, threads)
                           + Math.Ceiling((double)g.Kl * DwConvStripKernels.LineStride(threads) / threads) * ZeroSlotsPerVector;
            sum.BankWays = Math.Max(sum.BankWays, g.InputBankWays(threads, warps));
            sum.Extra += blocks * warps * (stage + g.Per * g.Len * DyLoadSlots + FixedSlots);
            sum.Bytes += (double)n * st.C * h * w * 4.0 * 2 + 2.0 * p.WorkspaceBytes + st.C * kh * kw * 8.0;
        }
        return sum.Estimate("wgrad", st);
    }

    /// <summary>The shape of one branch's strips, as both kernels lay them out: a tall kernel (kh &gt;= kw) runs its
    /// strips down the columns (lines = the map's width, len = its height, ks = kw short-axis taps, kl = kh long-axis
    /// taps), a wide one along the rows; Images images per block, Per per thread; Stride floats between the staged
    /// lines of an image, Plane floats per staged image.</summary>
    private readonly record struct Strip(int Lines, int Len, int Ks, int Kl, int Images, int Per, int Stride, int Plane)
    {
        public static Strip Of(int h, int w, int kh, int kw)
        {
            bool tall = kh >= kw;
            int lines = tall ? w : h, len = tall ? h : w, ks = tall ? kw : kh, kl = tall ? kh : kw;
            return new Strip(lines, len, ks, kl, DwConvStripKernels.Images(len, lines), DwConvStripKernels.ImagesPerThread(len),
                             DwConvStripKernels.LineStride(len), DwConvStripKernels.PlaneFloats(lines, ks, len));
        }

        /// <summary>Issue slots per lane to stage the block's images and zero their planes.</summary>
        public double StageSlots(int h, int w, int threads) =>
            Math.Ceiling(Images * h * w / 4.0 / threads) * StageSlotsPerVector
            + Math.Ceiling(Images * Plane / 4.0 / threads) * ZeroSlotsPerVector;

        /// <summary>The worst bank conflict of the strip loop's 128-bit input loads over the block's warps: lane t
        /// reads line t % lines of image t / lines (and + groups).</summary>
        public int InputBankWays(int threads, int warps)
        {
            int ways = 1, lines = Lines, plane = Plane, stride = Stride;
            for (int wp = 0; wp < warps; wp++)
            {
                int first = 32 * wp;
                ways = Math.Max(ways, DwConvModel.Conflict(l =>
                {
                    int t = Math.Min(threads - 1, first + l);
                    return (long)(t / lines) * plane + (long)(t % lines) * stride;
                }, 4));
            }
            return ways;
        }
    }

    /// <summary>What <see cref="Forward"/> and <see cref="WeightGrad"/> add up over a stage's branches.</summary>
    private sealed class Totals
    {
        public double Useful, IssuedFfma, HotSlots, Extra, Bytes;
        public string Plan = "";
        public double Occupancy = double.PositiveInfinity;
        public int BankWays = 1;

        /// <summary>One branch's useful FMAs (in-bounds products with live taps) and its launch's occupancy.</summary>
        public void AddBranch(DwConvModel.Stage st, int n, double density, int kh, int kw, int registers, int threads, int smem)
        {
            Occupancy = Math.Min(Occupancy, DwConvModel.Occupancy(registers, threads, smem));
            Useful += density * DwConvModel.ValidPairs(st.H, kh) * DwConvModel.ValidPairs(st.H, kw) * (double)n * st.C;
        }

        public DwConvModel.Estimate Estimate(string pass, DwConvModel.Stage st)
        {
            var e = DwConvModel.Make(pass, st.Name, Useful, IssuedFfma, IssuedFfma / HotSlots, Bytes, Plan, Extra);
            return e with { Occupancy = Occupancy, BankWays = BankWays };
        }
    }
}
