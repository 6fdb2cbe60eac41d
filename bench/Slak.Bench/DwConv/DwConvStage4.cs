// `dwconv-stage4`: what limits the decomposed CPU depthwise forward on small planes (SLaK-T stage 4: 7x7 maps,
// 998 channels). Times, interleaved in one run (best of rounds), the forward with all four outputs, with the sum
// only, with one branch output only, and the same forward at fewer channels (per-channel cost), so ratios stay
// meaningful on a loaded machine. Run it once per SLAK_DWCONV_LAYOUT (columns, batch) to compare the layouts.
using Slak.Backends.Cpu;

namespace Slak.Bench.DwConv;

internal static class DwConvStage4
{
    [BenchProgram("dwconv-stage4", "fixed costs of the decomposed depthwise forward on small planes")]
    private static int Run(string[] args)
    {
        int reps = DwConvBench.ParseInt(args, "--reps", 30);
        int n = DwConvBench.ParseInt(args, "--n", 8);
        int h = DwConvBench.ParseInt(args, "--h", 7);
        int m = DwConvBench.ParseInt(args, "--m", 13);
        int c = DwConvBench.ParseInt(args, "--c", 998);
        var peak = FmaPeak.MeasureForRun(CpuParallel.Threads);
        Console.WriteLine($"# {DwConvBench.Machine()}; threads {CpuParallel.Threads}; layout " +
            $"{Environment.GetEnvironmentVariable("SLAK_DWCONV_LAYOUT") ?? "default"}; best of {reps} interleaved");
        Console.WriteLine(FmaPeak.HeaderLine(peak));
        var p = new DwConvProblem(n, c, h, m);
        var small = new DwConvProblem(n, Math.Max(1, c / 8), h, m);
        var tiny = new DwConvProblem(n, 8, h, m);
        int threads = CpuParallel.Threads;
        var none = new List<Memory<float>>();
        var one = new List<Memory<float>> { p.Ys[0], Memory<float>.Empty, Memory<float>.Empty };
        var t = DwConvBench.BestOfInterleavedMs(reps,
            p.Forward,
            () => CpuDwConvDecomposed.Forward(n, c, h, h, p.Branches, p.X, none, p.Sum),
            () => CpuDwConvDecomposed.Forward(n, c, h, h, p.Branches, p.X, one, Span<float>.Empty),
            small.Forward,
            () => { CpuParallel.Threads = 1; p.Forward(); CpuParallel.Threads = threads; },
            tiny.Forward);
        double gf = p.ValidFlops / 1e9;
        Console.WriteLine($"N,C,H,M = {n},{c},{h},{m}: valid {gf:F3} GFLOP");
        Console.WriteLine($"fwd 3 outputs + sum : {t[0]:F3} ms ({gf / t[0] * 1e3:F1} GFLOP/s, " +
            $"{FmaPeak.PercentOf(gf / t[0] * 1e3, peak.Gflops)} % of peak)");
        Console.WriteLine($"fwd sum only        : {t[1]:F3} ms ({t[1] / t[0]:F2} of full)");
        Console.WriteLine($"fwd branch-0 only   : {t[2]:F3} ms ({t[2] / t[0]:F2} of full)");
        Console.WriteLine($"fwd C/8 (all outs)  : {t[3]:F3} ms (x8 = {t[3] * 8 / t[0]:F2} of full)");
        Console.WriteLine($"fwd 1 thread        : {t[4]:F3} ms ({t[4] / t[0]:F2} of 2 threads)");
        Console.WriteLine($"fwd C=8 (per call)  : {t[5]:F3} ms");
        Breakdown(p, reps);
        return 0;
    }

    /// <summary>Single-thread timings of the pieces of the batch-interleaved forward over all work items: weight
    /// gather (per call), pack only, pack + the 3 branch convolutions, and pack + convs + the 4 stores.</summary>
    private static unsafe void Breakdown(DwConvProblem p, int reps)
    {
        int n = p.N, c = p.C, h = p.H;
        if (n % 8 != 0) return;
        var g = new CpuDwConvEngine.Geometry(h, h, interleaved: true);
        int plane = h * h, groups = n / 8;
        var passes = p.Branches.Select(b => CpuDwConvPass.Gather(b.Kh, b.Kw, CpuDwConvTapList.Dense(c, b.Kh, b.Kw),
            b.Weight.Span, b.Mask.Span)).ToArray();
        var ysum = p.Sum;
        void Loop(int stage) => LoopOver(passes, stage);
        void LoopOver(CpuDwConvPass[] passes, int stage)
        {
            float* xp = CpuDwConvEngine.Scratch(g.PaddedLength + 2 * g.OutLength);
            float* op = xp + g.PaddedLength;
            nint* planes = stackalloc nint[8];
            fixed (float* px = p.X)
            fixed (float* py = ysum)
                for (int grp = 0; grp < groups; grp++)
                    for (int ch = 0; ch < c; ch++)
                    {
                        for (int k = 0; k < 8; k++) planes[k] = (nint)(px + ((nint)(grp * 8 + k) * c + ch) * plane);
                        CpuDwConvEngine.PackPlanes(g, planes, xp, g.Stride, g.ImageOffset);
                        if (stage < 1) continue;
                        for (int b = 0; b < passes.Length; b++)
                        {
                            CpuDwConvEngine.ConvPlane(g, xp, passes[b], ch, op, accumulate: false);
                            if (stage < 2) continue;
                            for (int k = 0; k < 8; k++)
                                planes[k] = (nint)(py + ((nint)(grp * 8 + k) * c + ch) * plane);
                            CpuDwConvEngine.UnpackPlanes(g, op, planes, add: false);
                            if (b == passes.Length - 1) CpuDwConvEngine.UnpackPlanes(g, op, planes, add: false);
                        }
                    }
        }
        var t = DwConvBench.BestOfInterleavedMs(reps,
            () => { foreach (var b in p.Branches) CpuDwConvPass.Gather(b.Kh, b.Kw, CpuDwConvTapList.Dense(c, b.Kh, b.Kw),
                b.Weight.Span, b.Mask.Span).Release(); },
            () => Loop(0), () => Loop(1), () => Loop(2));
        Console.WriteLine($"1 thread: weight gather {t[0]:F3} ms, pack {t[1]:F3} ms, pack+3 convs {t[2]:F3} ms, " +
            $"pack+convs+4 stores {t[3]:F3} ms");
        // The sum-only path: one pass over the union of the taps (CpuDwConvMergedTaps).
        var merged = CpuDwConvMergedTaps.For(p.Branches.Select(b => CpuDwConvTapList.Dense(c, b.Kh, b.Kw)).ToArray());
        CpuDwConvPass[] one = [merged.Gather(p.Branches)];
        var m = DwConvBench.BestOfInterleavedMs(reps, () => merged.Gather(p.Branches).Release(), () => LoopOver(one, 1));
        Console.WriteLine($"1 thread, sum only: merged weight gather {m[0]:F3} ms, pack+merged conv {m[1]:F3} ms");
        CpuDwConvPass.ReleaseAll(one);
        CpuDwConvPass.ReleaseAll(passes);
    }
}
