// The modeled time of the fused depthwise kernels at SLaK-T's stage shapes (batch 128, 224 px, density 0.6), from
// their launch plans (LaunchPlans, the same plan functions the launchers use) and the FFMA share of their hot loops:
//   - useful FMAs: every in-bounds (output, live tap) product, the FMA floor's numerator;
//   - issued FFMA warp instructions: per active warp of every planned block, what the kernel's loop structure
//     executes (forward / input gradient: see FusedForward for the sliding-window body, FusedForwardTapList for the
//     live-tap-list body it replaced; weight gradient: a thread owns one live tap and runs th x tw FFMAs per tile, so
//     a warp with some live taps issues th x tw per tile);
//   - lane efficiency = useful / (32 x issued); an issue-bound kernel reaches at most (FFMA share of the hot loop) x
//     (lane efficiency) of the FP32 FMA floor (every non-FFMA instruction and every idle lane costs an FFMA's slot);
//   - HBM floor: bytes read and written once (inputs, outputs, weights, masks) at 4.8 TB/s; the modeled time is the
//     larger of the two, and the figure reported is the FMA floor time over the modeled time.
// Ignored (stated in the report): latencies and stalls, occupancy (warps idle at barriers, blocks per SM, tail
// effects of the last wave), shared-memory bank conflicts, caches (L2 reuse of halos), instructions outside the hot
// loop (tap-list compaction, tile loads), and the per-tap branch that skips rows in the padding.
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
        public double PercentOfFmaFloor => 100 * FmaFloorMs / ModeledMs;
    }

    private static int RowsInBounds(int h, int i, int ph, int size) { int r = h + i - ph; return r >= 0 && r < size ? 1 : 0; }

    /// <summary>Sum over output rows of the number of kernel rows that land inside the image.</summary>
    private static long ValidPairs(int size, int k)
    {
        long s = 0;
        for (int o = 0; o < size; o++)
            for (int i = 0; i < k; i++) s += RowsInBounds(o, i, k / 2, size);
        return s;
    }

    /// <summary>Forward (or input gradient: the same kernel with flipped taps, the same counts) of one stage, for the
    /// default sliding-window body of dwconv_fused_kernel: per branch, a warp owns kFusedRows outputs along the
    /// branch's long axis for each of 32 lanes across it and runs, for every short-axis tap, the kFusedChunk-tap steps
    /// of the long-axis taps that reach the image for some output of its strip (masked taps included: they are zero
    /// weights), kFusedChunk x kFusedRows FFMAs per step; warps whose strip lies outside the image skip the work.</summary>
    public static Estimate FusedForward(string pass, Stage st, int n, double density, double ffmaShare)
    {
        var limits = DeviceLimits.ForArchitecture(90);
        int[] kh = [.. st.Branches.Select(b => b.Kh)], kw = [.. st.Branches.Select(b => b.Kw)];
        var plan = LaunchPlans.DwConvFused(n, st.C, st.H, st.H, kh, kw, limits);
        int tileW = (int)LaunchPlans.Constant("kFusedTileW"), tileH = (int)LaunchPlans.Constant("kFusedTileH");
        int rows = (int)LaunchPlans.Constant("kFusedRows"), chunk = (int)LaunchPlans.Constant("kFusedChunk");
        int warps = (int)(plan.BlockX * plan.BlockY) / 32;
        if (tileW != 32 || tileH != 32 || warps * rows != 32)
            throw new InvalidOperationException($"the model assumes 32 x 32 tiles of 4 warps x {rows} outputs; plan {plan}");
        double useful = 0, issued = 0;
        foreach (var (bkh, bkw) in st.Branches)
        {
            useful += density * ValidPairs(st.H, bkh) * ValidPairs(st.H, bkw);
            bool tall = bkh >= bkw;
            int kl = Math.Max(bkh, bkw), ks = Math.Min(bkh, bkw), pl = kl / 2;
            int extent = st.H; // square maps: the long axis has H (tall) or W (wide) = H outputs
            for (int ty = 0; ty < st.H; ty += tileH)
                for (int tx = 0; tx < st.H; tx += tileW)
                    for (int w = 0; w < warps; w++)
                    {
                        int a0 = (tall ? ty : tx) + w * rows;
                        if (a0 >= extent) continue;
                        int a1 = Math.Min(extent, a0 + rows) - 1;
                        int lo = Math.Max(0, pl - a1), hi = Math.Min(kl - 1, extent - 1 + pl - a0);
                        issued += (double)ks * (hi / chunk - lo / chunk + 1) * chunk * rows;
                    }
        }
        double planes = (double)n * st.C;
        useful *= planes;
        issued *= planes;
        double bytes = planes * st.H * st.H * 4.0 * (1 + st.Branches.Length)
                       + st.C * st.Branches.Sum(b => b.Kh * b.Kw) * 8.0;
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

    /// <summary>Weight gradient of one stage (dwconv_fused_wgrad_kernel).</summary>
    public static Estimate FusedWeightGrad(Stage st, int n, double density, double ffmaShare)
    {
        var limits = DeviceLimits.ForArchitecture(90);
        int[] kh = [.. st.Branches.Select(b => b.Kh)], kw = [.. st.Branches.Select(b => b.Kw)];
        var plan = LaunchPlans.DwConvFusedWeightGrad(n, st.C, st.H, st.H, kh, kw, limits);
        int tileH = plan.TileH, tileW = plan.TileW;
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
        return Make("wgrad", st.Name, useful, issued, ffmaShare, bytes, plan.ToString());
    }

    private static Estimate Make(string pass, string stage, double useful, double issuedWarpFfma, double share, double bytes, string plan)
    {
        double lane = useful / (32 * issuedWarpFfma);
        double floorMs = 1e3 * useful / FmaPerSecond;
        double hbmMs = 1e3 * bytes / HbmBytesPerSecond;
        double issueMs = floorMs / Math.Max(1e-9, lane * share);
        return new Estimate(pass, stage, useful, issuedWarpFfma, lane, share, floorMs, hbmMs, Math.Max(issueMs, hbmMs), plan);
    }
}
