// The modeled time of the fused depthwise kernels at SLaK-T's stage shapes (batch 128, 224 px, density 0.6), from
// their launch plans (LaunchPlans, the same plan functions the launchers use) and the FFMA share of their hot loops:
//   - useful FMAs: every in-bounds (output, live tap) product, the FMA floor's numerator;
//   - issued FFMA warp instructions: per active warp of every planned block, what the kernel's loop structure
//     executes (forward / input gradient: see FusedForward for the sliding-window body, FusedForwardTapList for the
//     live-tap-list body it replaced; weight gradient: FusedWeightGrad for the outer-product body,
//     FusedWeightGradTaps for the live-tap body it replaced);
//   - lane efficiency = useful / (32 x issued); an issue-bound kernel reaches at most (FFMA share of the hot loop) x
//     (lane efficiency) of the FP32 FMA floor (every non-FFMA instruction and every idle lane costs an FFMA's slot);
//   - HBM floor: bytes read and written once (inputs, outputs, weights, masks, weight-gradient partials) at 4.8 TB/s;
//     the modeled time is the larger of the two, and the figure reported is the FMA floor time over the modeled time;
//   - beside them, computed but not part of the time: the worst shared-memory bank conflict of the hot loop's loads
//     (from the plan's strides) and the occupancy on sm_90 (from registers, block and shared bytes).
// Ignored (stated in the report): latencies and stalls, the effect of occupancy (warps idle at barriers, blocks per
// SM, tail effects of the last wave), caches (L2 reuse of halos), instructions outside the hot loop (tap-list
// compaction, tile loads, the weight gradient's per-task setup and warp reduction), and the per-tap branch that skips
// rows in the padding.
using System.Globalization;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.Bench.KernelModel;

internal static class DwConvModel
{
    /// <summary>H200 (sm_90): 132 SMs, 128 FP32 lanes each, 1.98 GHz boost: ~67 TFLOP/s FP32 non-tensor.</summary>
    public const double Sms = 132, LanesPerSm = 128, ClockHz = 1.98e9, HbmBytesPerSecond = 4.8e12;

    public static double FmaPerSecond => Sms * LanesPerSm * ClockHz;

    /// <summary>One SLaK-T stage at batch 128, 224 px: channels, map size, branch kernels.</summary>
    public sealed record Stage(string Name, int C, int H, (int Kh, int Kw)[] Branches);

    public static readonly Stage[] SlakTiny =
    [
        new("s1", 124, 56, [(51, 5), (5, 51), (5, 5)]),
        new("s2", 249, 28, [(49, 5), (5, 49), (5, 5)]),
        new("s3", 499, 14, [(47, 5), (5, 47), (5, 5)]),
        new("s4", 998, 7, [(13, 5), (5, 13), (5, 5)]),
    ];

    public sealed record Estimate(string Pass, string Stage, double UsefulFma, double IssuedWarpFfma, double LaneEfficiency,
                                  double FfmaShare, double FmaFloorMs, double HbmFloorMs, double ModeledMs, string Plan)
    {
        /// <summary>Worst n-way shared-memory bank conflict of the hot loop's loads (1: conflict-free), computed from
        /// the strides; 0 when not computed.</summary>
        public int BankWays { get; init; }

        /// <summary>Resident warps per SM / 64 on sm_90 from registers, block and shared bytes of the plan.</summary>
        public double Occupancy { get; init; } = double.NaN;

        public double PercentOfFmaFloor => 100 * FmaFloorMs / ModeledMs;
    }

    private static int RowsInBounds(int h, int i, int ph, int size) { int r = h + i - ph; return r >= 0 && r < size ? 1 : 0; }

    /// <summary>Sum over output rows of the number of kernel rows that land inside the image.</summary>
    internal static long ValidPairs(int size, int k)
    {
        long s = 0;
        for (int o = 0; o < size; o++)
            for (int i = 0; i < k; i++) s += RowsInBounds(o, i, k / 2, size);
        return s;
    }

    /// <summary>Non-FFMA issue slots of one clipped step of the sliding-window body per short-axis tap, beside its
    /// input and weight loads: the short-axis loop's counter, compare and branch and the tile address (an estimate
    /// from the loop's shape, not counted in the machine code).</summary>
    public const int ClippedStepOverhead = 4;

    /// <summary>Non-FFMA issue slots of dispatching one clipped step (the switch on the clipped count and the step's
    /// bounds; an estimate, as <see cref="ClippedStepOverhead"/>).</summary>
    public const int ClippedStepDispatch = 6;

    /// <summary>What one warp strip of the sliding-window body (outputs a0..a0 + kFusedRows - 1 along a long axis of
    /// <paramref name="extent"/> outputs, <paramref name="kl"/> long-axis taps) issues per short-axis tap, mirroring
    /// dw_branch_sliding: steps of kFusedChunk taps over the long-axis taps that reach the image for some output of the
    /// strip; a full step issues kFusedChunk x kFusedRows FFMAs; with <paramref name="edgeSteps"/> (the default kernel;
    /// SLAK_DW_EDGE_STEPS=0 is the loop without them) a step whose first d or last e of its kFusedChunk + kFusedRows -
    /// 1 inputs lie outside the image issues only the products of the inputs inside (input m feeds the products u + k =
    /// m), and costs its input and weight loads plus <see cref="ClippedStepOverhead"/> besides (ClippedSlots; a step
    /// clipped at both ends, on maps shorter than the window, runs whole in that loop). Returns, per short-axis tap,
    /// the FFMAs, the full steps, the clipped steps, and the clipped steps' FFMAs and non-FFMA slots.</summary>
    public static (double Ffma, int FullSteps, int ClippedSteps, double ClippedFfma, double ClippedSlots) StripWork(
        int extent, int kl, int a0, bool edgeSteps = true)
    {
        int rows = (int)LaunchPlans.Constant("kFusedRows"), chunk = (int)LaunchPlans.Constant("kFusedChunk");
        int window = chunk + rows - 1, pl = kl / 2, a1 = Math.Min(extent, a0 + rows) - 1;
        int lo = Math.Max(0, pl - a1), hi = Math.Min(kl - 1, extent - 1 + pl - a0);
        int full = 0, clipped = 0;
        double clippedFfma = 0, clippedSlots = 0;
        for (int c = lo / chunk; c <= hi / chunk; c++)
        {
            int d = pl - a0 - c * chunk, e = c * chunk - (extent - window + pl - a0);
            if (!edgeSteps || (d <= 0 && e <= 0)) { full++; continue; }
            clipped++;
            int mlo = d > 0 && e <= 0 ? d : 0, mhi = e > 0 && d <= 0 ? window - 1 - e : window - 1;
            for (int u = 0; u < chunk; u++)
                for (int k = 0; k < rows; k++)
                    if (u + k >= mlo && u + k <= mhi) clippedFfma++;
            clippedSlots += mhi - mlo + 1 + 2 + ClippedStepOverhead;       // inputs, two float4 weight loads, loop
        }
        return ((double)full * chunk * rows + clippedFfma, full, clipped, clippedFfma, clippedSlots);
    }

    /// <summary>Forward (or input gradient: the same kernel with flipped taps, the same counts) of one stage, for the
    /// default sliding-window body of dwconv_fused_kernel: per branch, a warp owns kFusedRows outputs along the
    /// branch's long axis for each of 32 lanes across it and runs, for every short-axis tap, the kFusedChunk-tap steps
    /// of the long-axis taps that reach the image for some output of its strip (masked taps included: they are zero
    /// weights), kFusedChunk x kFusedRows FFMAs per full step and only the in-image products of the steps clipped by
    /// the image's edges (<see cref="StripWork"/>; <paramref name="edgeSteps"/> false: the loop before them, every step
    /// full, <c>--variant noedge</c>); warps whose strip lies outside the image skip the work. The clipped steps' own
    /// non-FFMA slots (loads, loop, dispatch) are added to the issue time beside the hot loop's FFMA share.</summary>
    public static Estimate FusedForward(string pass, Stage st, int n, double density, double ffmaShare, bool edgeSteps = true)
    {
        var limits = DeviceLimits.ForArchitecture(90);
        int[] kh = [.. st.Branches.Select(b => b.Kh)], kw = [.. st.Branches.Select(b => b.Kw)];
        var plan = LaunchPlans.DwConvFused(n, st.C, st.H, st.H, kh, kw, limits);
        int tileW = (int)LaunchPlans.Constant("kFusedTileW"), tileH = (int)LaunchPlans.Constant("kFusedTileH");
        int rows = (int)LaunchPlans.Constant("kFusedRows");
        int warps = (int)(plan.BlockX * plan.BlockY) / 32;
        if (tileW != 32 || tileH != 32 || warps * rows != 32)
            throw new InvalidOperationException($"the model assumes 32 x 32 tiles of 4 warps x {rows} outputs; plan {plan}");
        double useful = 0, issued = 0, extraSlots = 0;
        foreach (var (bkh, bkw) in st.Branches)
        {
            useful += density * ValidPairs(st.H, bkh) * ValidPairs(st.H, bkw);
            bool tall = bkh >= bkw;
            int kl = Math.Max(bkh, bkw), ks = Math.Min(bkh, bkw);
            int extent = st.H; // square maps: the long axis has H (tall) or W (wide) = H outputs
            for (int ty = 0; ty < st.H; ty += tileH)
                for (int tx = 0; tx < st.H; tx += tileW)
                    for (int w = 0; w < warps; w++)
                    {
                        int a0 = (tall ? ty : tx) + w * rows;
                        if (a0 >= extent) continue;
                        var work = StripWork(extent, kl, a0, edgeSteps);
                        issued += ks * work.Ffma;
                        extraSlots += ks * work.ClippedSlots + ClippedStepDispatch * work.ClippedSteps;
                    }
        }
        double planes = (double)n * st.C;
        useful *= planes;
        issued *= planes;
        extraSlots *= planes;
        double bytes = planes * st.H * st.H * 4.0 * (1 + st.Branches.Length)
                       + st.C * st.Branches.Sum(b => b.Kh * b.Kw) * 8.0;
        return Make(pass, st.Name, useful, issued, ffmaShare, bytes, plan.ToString(), extraSlots);
    }

    /// <summary>Forward (or input gradient) of one stage on dwconv_small_kernel (small maps), or null when its plan
    /// (slak_plan_dwconv_small, the dispatch predicate) does not choose it: a block is one channel and blockDim images,
    /// a warp whose lanes hold at least one image issues, per branch, exactly the in-bounds products of a plane (the
    /// long-axis pairs and the edge bands' short-axis taps are resolved at compile time, the interior bands have every
    /// tap in the map; masked taps are zero weights); lanes past the last image idle.</summary>
    public static Estimate? SmallForward(string pass, Stage st, int n, double density, double ffmaShare)
    {
        var limits = DeviceLimits.ForArchitecture(90);
        int[] kh = [.. st.Branches.Select(b => b.Kh)], kw = [.. st.Branches.Select(b => b.Kw)];
        var plan = LaunchPlans.DwConvSmall(n, st.C, st.H, st.H, kh, kw, limits);
        if (plan.KernelChoice != PlanKernel.DwConvSmall) return null;
        double perPlane = st.Branches.Sum(b => (double)ValidPairs(st.H, b.Kh) * ValidPairs(st.H, b.Kw));
        int threads = (int)plan.BlockX;
        double warps = 0;
        for (long g = 0; g < plan.GridY; g++)
        {
            long images = Math.Min(threads, n - g * threads);
            warps += (images + 31) / 32;
        }
        double useful = density * perPlane * n * st.C;
        double issued = perPlane * warps * st.C;
        double bytes = (double)n * st.C * st.H * st.H * 4.0 * (1 + st.Branches.Length)
                       + st.C * st.Branches.Sum(b => b.Kh * b.Kw) * 8.0 * plan.GridY;
        return Make(pass, st.Name, useful, issued, ffmaShare, bytes, plan.ToString());
    }

    /// <summary>As <see cref="FusedForward"/> for the live-tap-list body (SLAK_DW_FUSED_TAPLIST, the kernel before
    /// the rewrite): a thread owns kFusedRows rows of one column and runs every live tap whose column and rows reach
    /// the image for some lane of its warp, kFusedRows FFMAs per tap.</summary>
    public static Estimate FusedForwardTapList(string pass, Stage st, int n, double density, double ffmaShare)
    {
        var limits = DeviceLimits.ForArchitecture(90);
        int[] kh = [.. st.Branches.Select(b => b.Kh)], kw = [.. st.Branches.Select(b => b.Kw)];
        var plan = LaunchPlans.DwConvFused(n, st.C, st.H, st.H, kh, kw, limits);
        // The block is (tile width, threads along y); each thread owns tileH / threadsY consecutive rows.
        int tileW = (int)LaunchPlans.Constant("kFusedTileW"), tileH = (int)LaunchPlans.Constant("kFusedTileH");
        int threadsY = (int)plan.BlockY, rows = tileH / threadsY;
        if ((int)plan.BlockX != tileW || tileW != 32)
            throw new InvalidOperationException($"the model assumes one warp per 32-column row of threads; plan {plan}");
        double useful = 0, issued = 0;
        foreach (var (bkh, bkw) in st.Branches)
        {
            useful += density * ValidPairs(st.H, bkh) * ValidPairs(st.H, bkw);
            int ph = bkh / 2, pw = bkw / 2;
            for (int ty = 0; ty < st.H; ty += tileH)
                for (int tx = 0; tx < st.H; tx += tileW)
                    for (int wy = 0; wy < threadsY; wy++)
                    {
                        int r0 = ty + wy * rows;
                        if (r0 >= st.H) continue;                         // the whole warp is outside: it exits
                        int r1 = Math.Min(st.H, r0 + rows) - 1, c0 = tx, c1 = Math.Min(st.H, tx + tileW) - 1;
                        // Taps whose rows reach the image for some row of the strip and whose column reaches it for
                        // some lane of the warp; each costs kFusedRows FFMAs per thread.
                        int liveRows = 0, liveCols = 0;
                        for (int i = 0; i < bkh; i++) if (r1 + i - ph >= 0 && r0 + i - ph < st.H) liveRows++;
                        for (int j = 0; j < bkw; j++) if (c1 + j - pw >= 0 && c0 + j - pw < st.H) liveCols++;
                        issued += density * liveRows * liveCols * rows;
                    }
        }
        double planes = (double)n * st.C;
        useful *= planes;
        issued *= planes;
        double bytes = planes * st.H * st.H * 4.0 * (1 + st.Branches.Length)
                       + st.C * st.Branches.Sum(b => b.Kh * b.Kw) * 8.0;
        return Make(pass, st.Name, useful, issued, ffmaShare, bytes, plan.ToString());
    }

    /// <summary>Weight gradient of one stage, the register-tiled outer-product body of dwconv_fused_wgrad_kernel
    /// (the default): per orientation phase, tile and plane group, a warp task (branch, short-axis tap, strip of 8
    /// long-axis taps) issues 64 FFMAs per 8-output step over the outputs where some tap of its strip reaches the
    /// image (its start rounded down to 4), the steps clipped by the image's or the tile's edges only their in-image
    /// products (<see cref="WgradTaskWork"/>; <paramref name="edgeSteps"/> false: the loop before them, <c>--variant
    /// noedge</c>); strips whose taps are all masked are skipped; with <paramref name="trim"/> (the default kernel,
    /// SLAK_DW_WGRAD_TRIM; <c>--variant fullstrips</c> is the kernel before it, and the noedge variant has no trim
    /// either) a strip computes only its taps up to its last live one inside the kernel, starting 4 taps later when its
    /// first 4 are dead (<see cref="StripCodes"/>, expected over the live patterns at the density). The geometry
    /// mirrors slak_dw_wgrad_phase (slak_params.h) for the plan's tile.</summary>
    public static Estimate FusedWeightGrad(Stage st, int n, double density, double ffmaShare, bool edgeSteps = true,
                                           bool trim = true)
    {
        trim &= edgeSteps;
        var limits = DeviceLimits.ForArchitecture(90);
        int[] kh = [.. st.Branches.Select(b => b.Kh)], kw = [.. st.Branches.Select(b => b.Kw)];
        var plan = LaunchPlans.DwConvFusedWeightGrad(n, st.C, st.H, st.H, kh, kw, limits);
        double useful = 0, issuedPerChannel = 0, slotsPerChannel = 0, outrightPerChannel = 0;
        foreach (var (bkh, bkw) in st.Branches) useful += density * ValidPairs(st.H, bkh) * ValidPairs(st.H, bkw);
        foreach (bool tall in new[] { true, false })
        {
            var g = WgradPhase.Of(st, tall, plan);
            if (g.Branches.Length == 0) continue;
            // Plane groups over all chunks (a group of fewer images costs as much as a full one).
            long groups = 0;
            for (int ch = 0; ch < plan.Chunks; ch++)
            {
                int images = Math.Min(n, (ch + 1) * plan.PerChunk) - ch * plan.PerChunk;
                if (images > 0) groups += (images + g.Planes - 1) / g.Planes;
            }
            double perGroup = 0, perGroupSlots = 0, perGroupOutright = 0;
            for (int l0 = 0; l0 < g.ExtLong; l0 += g.TileLong)
                for (int s0 = 0; s0 < g.ExtShort; s0 += g.TileShort)
                    foreach (var (bkh, bkw) in g.Branches)
                    {
                        int kl = tall ? bkh : bkw, ks = tall ? bkw : bkh, pl = kl / 2;
                        int delta = (g.Hl - pl) & 3, strips = (kl + delta + 7) / 8;
                        int tlen = Math.Min(g.TileLong, g.ExtLong - l0);
                        for (int s = 0; s < strips; s++)
                        {
                            int i0s = s * 8 - delta;
                            int klo = Math.Max(0, i0s) - i0s, khi = Math.Min(kl - 1, i0s + 7) - i0s;
                            foreach (var (p, shift, first, count) in StripCodes(klo, khi, density, trim))
                            {
                                // As dw_wg_task: the outputs where a kept tap reaches the image.
                                int i0 = i0s + shift, imin = Math.Max(0, i0 + first), imax = Math.Min(kl - 1, i0 + count - 1);
                                int aHi = Math.Min(tlen, g.ExtLong + pl - imin - l0), aLo = Math.Max(0, pl - imax - l0) & ~3;
                                if (aLo >= aHi) continue;
                                var work = WgradTaskWork(g.ExtLong, l0, tlen, pl, i0, aLo, aHi, edgeSteps, count);
                                perGroup += ks * p * work.Ffma;
                                perGroupSlots += ks * p * (work.ClippedSlots + ClippedStepDispatch * work.ClippedSteps + work.ShortSlots);
                                perGroupOutright += ks * p * work.ShortFfma;
                            }
                        }
                    }
            issuedPerChannel += groups * perGroup;
            slotsPerChannel += groups * perGroupSlots;
            outrightPerChannel += groups * perGroupOutright;
        }
        double issued = issuedPerChannel * st.C, extraSlots = slotsPerChannel * st.C, outright = outrightPerChannel * st.C;
        useful *= (double)n * st.C;
        int phases = st.Branches.Any(b => b.Kh >= b.Kw) && st.Branches.Any(b => b.Kh < b.Kw) ? 2 : 1;
        double bytes = (double)n * st.C * st.H * st.H * 4.0 * (phases + st.Branches.Length)
                       + 2.0 * plan.WorkspaceBytes + st.C * st.Branches.Sum(b => b.Kh * b.Kw) * 8.0;
        return Make("wgrad", st.Name, useful, issued, ffmaShare, bytes, plan.ToString(), extraSlots, outright);
    }

    /// <summary>The tasks a weight-gradient strip becomes, mirroring dw_wg_task_code: for each pattern of its first and
    /// last live taps (<paramref name="klo"/>..<paramref name="khi"/>: the strip's taps inside the kernel, each live
    /// with probability <paramref name="density"/>), its probability, the strip's shift (4 when its first 4 taps are
    /// dead), the first kept tap and the count of taps its full steps compute (both after the shift). Without
    /// <paramref name="trim"/>: one task of all 8 taps when any tap is live.</summary>
    public static IEnumerable<(double P, int Shift, int First, int Count)> StripCodes(int klo, int khi, double density,
                                                                                     bool trim = true)
    {
        if (!trim)
        {
            yield return (1 - Math.Pow(1 - density, khi - klo + 1), 0, 0, 8);
            yield break;
        }
        for (int f = klo; f <= khi; f++)
            for (int l = f; l <= khi; l++)
            {
                double p = Math.Pow(1 - density, f - klo) * density * (l > f ? density : 1) * Math.Pow(1 - density, khi - l);
                int shift = f >= 4 ? 4 : 0;
                yield return (p, shift, f - shift, l - shift + 1);
            }
    }

    /// <summary>Non-FFMA issue slots of one step of the short-strip loop (dw_wg_short_steps&lt;KN&gt;, one step per
    /// iteration): two 128-bit dy loads, the 128-bit x loads of inputs 0..KN + 6, and an estimated 4 loop instructions
    /// (pointer updates, compare, branch; an estimate, not counted in the machine code).</summary>
    public static int ShortStepSlots(int count) => 2 + (count + 10) / 4 + 4;

    /// <summary>Products of a weight-gradient step clipped to inputs n = m + k &lt;= nhi (mirrors
    /// dw_wg_products_upto).</summary>
    private static int ProductsUpTo(int nhi) => nhi <= 7 ? (nhi + 1) * (nhi + 2) / 2 : 64 - (14 - nhi) * (15 - nhi) / 2;

    /// <summary>What one weight-gradient task (a strip of 8 long-axis taps starting at tap <paramref name="i0"/>, tile
    /// at <paramref name="l0"/> of <paramref name="tlen"/> outputs, outputs a_lo..a_hi - 1 in steps of 8) issues per
    /// lane, mirroring dw_wg_task: a full step issues 64 FFMAs; with <paramref name="edgeSteps"/> a step whose first
    /// inputs lie before the image issues only the products of the inputs inside, and one whose last inputs lie past
    /// the image or whose last outputs lie past the tile issues the fewer of the two cuts' products (dw_wg_edge_step;
    /// both ends clipped: 64); a clipped step costs its six 128-bit loads and <see cref="ClippedStepOverhead"/>
    /// besides. A strip that computes <paramref name="count"/> &lt; 8 taps (trimmed) runs its full steps in the
    /// short-strip loop: 8 x count FFMAs and <see cref="ShortStepSlots"/> each, counted outright (ShortFfma,
    /// ShortSlots; they are not hot-loop FFMAs); its clipped steps still compute 8 taps. Returns the FFMAs (all of
    /// them), the clipped steps and their non-FFMA slots, and the short steps' FFMAs and non-FFMA slots.</summary>
    public static (double Ffma, int ClippedSteps, double ClippedSlots, double ShortFfma, double ShortSlots) WgradTaskWork(
        int extLong, int l0, int tlen, int pl, int i0, int aLo, int aHi, bool edgeSteps = true, int count = 8)
    {
        double ffma = 0, slots = 0, shortFfma = 0, shortSlots = 0;
        int clipped = 0;
        for (int a = aLo; a < aHi; a += 8)
        {
            int lead = pl - l0 - i0 - a, nhi = extLong - 1 - l0 - i0 + pl - a, mhi = tlen - 1 - a;
            bool tail = nhi < 14 || mhi < 7;
            if (edgeSteps && count < 8 && lead <= 0 && !tail)
            {
                ffma += 8 * count;
                shortFfma += 8 * count;
                shortSlots += ShortStepSlots(count);
                continue;
            }
            if (!edgeSteps || (lead <= 0 && !tail)) { ffma += 64; continue; }
            clipped++;
            slots += 6 + ClippedStepOverhead;
            if (lead > 0 && !tail)
            {
                for (int m = 0; m < 8; m++)
                    for (int k = 0; k < 8; k++)
                        if (m + k >= lead) ffma++;
            }
            else if (lead <= 0) ffma += Math.Min(nhi < 14 ? ProductsUpTo(nhi) : 64, mhi < 7 ? 8 * (mhi + 1) : 64);
            else ffma += 64;
        }
        return (ffma, clipped, slots, shortFfma, shortSlots);
    }

    /// <summary>One orientation phase of the weight gradient (mirrors slak_dw_wgrad_phase in slak_params.h).</summary>
    internal sealed record WgradPhase(bool Tall, (int Kh, int Kw)[] Branches, int ExtLong, int ExtShort, int TileLong,
                                      int TileShort, int Planes, int Hl, int Hs, int LinesPlane, int Sx, int Sd)
    {
        public static int Stride(int v) => (v + 3) / 8 * 8 + 4;

        public static WgradPhase Of(Stage st, bool tall, LaunchPlan plan)
        {
            var br = st.Branches.Where(b => (b.Kh >= b.Kw) == tall).ToArray();
            int hl = br.Length == 0 ? 0 : br.Max(b => (tall ? b.Kh : b.Kw) / 2);
            int hs = br.Length == 0 ? 0 : br.Max(b => (tall ? b.Kw : b.Kh) / 2);
            int tileLong = Math.Min(st.H, plan.TileH), tileShort = Math.Min(st.H, plan.TileW);
            int planes = 2 * tileShort <= plan.TileW ? Math.Clamp(plan.TileW / tileShort, 1, plan.PerChunk) : 1;
            return new WgradPhase(tall, br, st.H, st.H, tileLong, tileShort, planes, hl, hs,
                                  tileShort + (2 * hs + 7) / 8 * 8, Stride(tileLong + 2 * hl + 15), Stride(tileLong + 7));
        }
    }

    /// <summary>The plan the live-tap weight gradient (SLAK_DW_WGRAD_TAPS, the body before the rewrite) was launched
    /// with: dy tiles of min(W, 64) columns and as many rows as fit the default shared memory with the x tile (union
    /// halo), one dy tile, per branch kh x kw accumulators and a live-tap list (slak_plan.h before this rewrite).
    /// Returns (tile rows, tile columns, dynamic shared bytes).</summary>
    public static (int TileH, int TileW, long Smem) TapsPlan(Stage st)
    {
        int hh = st.Branches.Max(b => b.Kh / 2), hw = st.Branches.Max(b => b.Kw / 2);
        long total = st.Branches.Sum(b => (long)b.Kh * b.Kw);
        int tileW = Math.Min(st.H, 64), xw = tileW + 2 * hw;
        long budget = (48 * 1024 - 16) / 4 - 2 * total - 2L * hh * xw;
        int tileH = (int)Math.Min(st.H, budget / (xw + tileW));
        return (tileH, tileW, ((tileH + 2L * hh) * xw + (long)tileH * tileW + 2 * total) * 4);
    }

    /// <summary>Weight gradient of one stage, the live-tap body (SLAK_DW_WGRAD_TAPS, <c>--variant taps</c>) under the
    /// plan it was launched with (<see cref="TapsPlan"/>): a thread owns one live tap and runs th x tw FFMAs per tile,
    /// so a warp with some live taps issues th x tw per tile.</summary>
    public static Estimate FusedWeightGradTaps(Stage st, int n, double density, double ffmaShare)
    {
        var limits = DeviceLimits.ForArchitecture(90);
        int[] kh = [.. st.Branches.Select(b => b.Kh)], kw = [.. st.Branches.Select(b => b.Kw)];
        var plan = LaunchPlans.DwConvFusedWeightGrad(n, st.C, st.H, st.H, kh, kw, limits);
        var (tileH, tileW, smem) = TapsPlan(st);
        double useful = 0, issued = 0;
        foreach (var (bkh, bkw) in st.Branches)
        {
            useful += density * ValidPairs(st.H, bkh) * ValidPairs(st.H, bkw);
            int live = (int)Math.Round(density * bkh * bkw);
            int warps = (live + 31) / 32;
            for (int ty = 0; ty < st.H; ty += tileH)
                for (int tx = 0; tx < st.H; tx += tileW)
                {
                    int th = Math.Min(tileH, st.H - ty), tw = Math.Min(tileW, st.H - tx);
                    issued += (double)warps * th * tw;               // a warp with any live tap runs th x tw FFMAs
                }
        }
        double planes = (double)n * st.C;
        useful *= planes;
        issued *= planes;
        double bytes = planes * st.H * st.H * 4.0 * (1 + st.Branches.Length)
                       + (double)plan.WorkspaceBytes + st.C * st.Branches.Sum(b => b.Kh * b.Kw) * 8.0;
        string planText = string.Create(CultureInfo.InvariantCulture,
            $"DwConvFusedWgrad grid ({plan.GridX}, {plan.GridY}, 1) block (256, 1, 1) smem {smem}+16 B, {plan.Chunks} chunks of {plan.PerChunk}, tile {tileH}x{tileW} (the live-tap plan)");
        return Make("wgrad", st.Name, useful, issued, ffmaShare, bytes, planText);
    }

    // ---- shared-memory bank conflicts of the hot loops' access patterns (computed from the strides) ----

    /// <summary>The worst n-way bank conflict of one warp-wide shared load: <paramref name="wordAddress"/> gives each
    /// lane's first 32-bit word; <paramref name="words"/> per lane (1, 2 or 4: 32-, 64-, 128-bit loads, served in 1, 2
    /// or 4 phases of 32 / words lanes). Lanes reading the same address are one access (broadcast).</summary>
    public static int Conflict(Func<int, long> wordAddress, int words = 1, int lanes = 32)
    {
        int perPhase = 32 / words, worst = 1;
        for (int p0 = 0; p0 < lanes; p0 += perPhase)
        {
            var byBank = new Dictionary<long, HashSet<long>>();
            for (int l = p0; l < Math.Min(lanes, p0 + perPhase); l++)
            {
                long a = wordAddress(l);
                for (int k = 0; k < words; k++)
                {
                    long bank = (a + k) % 32;
                    if (!byBank.TryGetValue(bank, out var set)) byBank[bank] = set = [];
                    set.Add(a + k);
                }
            }
            worst = Math.Max(worst, byBank.Values.Max(s => s.Count));
        }
        return worst;
    }

    /// <summary>Bank conflicts of the outer-product weight gradient's 128-bit loads (x and dy lines, every phase and
    /// short-axis tap) at a stage: the worst over its loads.</summary>
    public static int WgradConflicts(Stage st, int n)
    {
        var limits = DeviceLimits.ForArchitecture(90);
        int[] kh = [.. st.Branches.Select(b => b.Kh)], kw = [.. st.Branches.Select(b => b.Kw)];
        var plan = LaunchPlans.DwConvFusedWeightGrad(n, st.C, st.H, st.H, kh, kw, limits);
        int worst = 1;
        foreach (bool tall in new[] { true, false })
        {
            var g = WgradPhase.Of(st, tall, plan);
            foreach (var (bkh, bkw) in g.Branches)
            {
                int ks = tall ? bkw : bkh, ps = ks / 2;
                for (int j = 0; j < ks; j++)
                {
                    int jj = j;
                    // As dw_wg_task: a lane past the tile's planes reads the line of the active lane 8k below it.
                    int Source(int lane)
                    {
                        int used = g.Planes * g.TileShort, src = lane;
                        if (lane >= used) { src -= (lane - used + 8) / 8 * 8; if (src < 0) src = lane % used; }
                        return src;
                    }
                    long XLine(int lane) { int src = Source(lane), pg = src / g.TileShort, q = src % g.TileShort; return pg * g.LinesPlane + q + jj - ps + g.Hs; }
                    long DLine(int lane) { int src = Source(lane), pg = src / g.TileShort, q = src % g.TileShort; return pg * g.TileShort + q; }
                    worst = Math.Max(worst, Conflict(l => XLine(l) * g.Sx, 4));
                    worst = Math.Max(worst, Conflict(l => DLine(l) * g.Sd, 4));
                }
            }
        }
        return worst;
    }

    /// <summary>Bank conflicts of the live-tap weight gradient's x loads at a stage (lanes on consecutive taps of the
    /// dense tap list, row-major, each reading x at its tap's offset in the union-halo tile of row stride tile_w +
    /// 2 halo_w; the dy load is a broadcast): the worst over its branches' warps.</summary>
    public static int WgradTapsConflicts(Stage st)
    {
        var (_, tileW, _) = TapsPlan(st);
        int xw = tileW + 2 * st.Branches.Max(b => b.Kw / 2);
        int worst = 1;
        foreach (var (bkh, bkw) in st.Branches)
            for (int w0 = 0; w0 < bkh * bkw; w0 += 32)
                worst = Math.Max(worst, Conflict(l => { int t = Math.Min(w0 + l, bkh * bkw - 1); return (long)(t / bkw) * xw + t % bkw; }, 1));
        return worst;
    }

    /// <summary>Bank conflicts of the sliding-window forward's tile loads (tall branches: lanes on consecutive columns;
    /// wide: on consecutive rows of the odd row stride; the weights are broadcast) at a stage.</summary>
    public static int ForwardConflicts(Stage st)
    {
        int hw = st.Branches.Max(b => b.Kw / 2);
        int sw = (32 + 2 * hw + 7) | 1;
        return Math.Max(Conflict(l => l, 1), Conflict(l => (long)l * sw, 1));
    }

    // ---- occupancy on sm_90 ----

    /// <summary>Resident warps per SM over the 64 an SM holds (sm_90: 2,048 threads, 32 blocks, 64 K registers in
    /// 256-register warp allocations, 228 KB of shared memory of which 1 KB per block is reserved).</summary>
    public static double Occupancy(int registers, int threadsPerBlock, long sharedBytesPerBlock)
    {
        if (registers <= 0 || threadsPerBlock <= 0) return double.NaN;
        int warps = (threadsPerBlock + 31) / 32;
        int regsPerWarp = (registers * 32 + 255) / 256 * 256;
        int byRegs = 65536 / (regsPerWarp * warps);
        int byThreads = 2048 / (warps * 32);
        long bySmem = sharedBytesPerBlock <= 0 ? 32 : 228L * 1024 / (sharedBytesPerBlock + 1024);
        long blocks = Math.Min(Math.Min(32, byRegs), Math.Min(byThreads, bySmem));
        return blocks * warps / 64.0;
    }

    /// <summary>An estimate from its counts: the issue-bound time is (issued FFMA warp instructions / FFMA share +
    /// <paramref name="extraSlots"/>, warp instructions issued outside the hot loop that the model counts) warp issue
    /// slots at the FP32 FMA rate; <paramref name="outrightFfma"/> of the issued FFMAs lie outside the hot loop and
    /// take one slot each (their other instructions are in <paramref name="extraSlots"/>).</summary>
    internal static Estimate Make(string pass, string stage, double useful, double issuedWarpFfma, double share, double bytes, string plan,
                                  double extraSlots = 0, double outrightFfma = 0)
    {
        double lane = useful / (32 * issuedWarpFfma);
        double floorMs = 1e3 * useful / FmaPerSecond;
        double hbmMs = 1e3 * bytes / HbmBytesPerSecond;
        double issueMs = 1e3 * 32 * ((issuedWarpFfma - outrightFfma) / Math.Max(1e-9, share) + outrightFfma + extraSlots) / FmaPerSecond;
        return new Estimate(pass, stage, useful, issuedWarpFfma, lane, share, floorMs, hbmMs, Math.Max(issueMs, hbmMs), plan);
    }
}
