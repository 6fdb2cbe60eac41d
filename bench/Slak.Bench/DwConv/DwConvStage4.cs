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
        int reps = DwBench.ParseInt(args, "--reps", 30);
        int n = DwBench.ParseInt(args, "--n", 8);
        int h = DwBench.ParseInt(args, "--h", 7);
        int m = DwBench.ParseInt(args, "--m", 13);
        int c = DwBench.ParseInt(args, "--c", 998);
        Console.WriteLine($"# {DwBench.Machine()}; threads {CpuParallel.Threads}; layout " +
            $"{Environment.GetEnvironmentVariable("SLAK_DWCONV_LAYOUT") ?? "default"}; best of {reps} interleaved");
        var p = new DwProblem(n, c, h, m);
        var small = new DwProblem(n, Math.Max(1, c / 8), h, m);
        var none = new List<Memory<float>>();
        var one = new List<Memory<float>> { p.Ys[0], Memory<float>.Empty, Memory<float>.Empty };
        var t = DwBench.BestOfInterleavedMs(reps,
            p.Forward,
            () => CpuDecomposedDwConv.Forward(n, c, h, h, p.Branches, p.X, none, p.Sum),
            () => CpuDecomposedDwConv.Forward(n, c, h, h, p.Branches, p.X, one, Span<float>.Empty),
            small.Forward);
        double gf = p.ValidFlops / 1e9;
        Console.WriteLine($"N,C,H,M = {n},{c},{h},{m}: valid {gf:F3} GFLOP");
        Console.WriteLine($"fwd 3 outputs + sum : {t[0]:F3} ms ({gf / t[0] * 1e3:F1} GFLOP/s)");
        Console.WriteLine($"fwd sum only        : {t[1]:F3} ms ({t[1] / t[0]:F2} of full)");
        Console.WriteLine($"fwd branch-0 only   : {t[2]:F3} ms ({t[2] / t[0]:F2} of full)");
        Console.WriteLine($"fwd C/8 (all outs)  : {t[3]:F3} ms (x8 = {t[3] * 8 / t[0]:F2} of full)");
        return 0;
    }
}
