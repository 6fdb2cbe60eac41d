// `dwconv-passes`: times each pass of our decomposed CPU depthwise convolution on the SLaK-T stage shapes (batch 8)
// and reports GFLOP/s counting only taps inside the image, and the weight-grad / forward time ratio.
using Slak.Backends.Cpu;

namespace Slak.Bench.DwConv;

internal static class DwConvPasses
{
    [BenchProgram("dwconv-passes", "our CPU depthwise conv, each pass, SLaK-T stage shapes, GFLOP/s (valid taps)")]
    private static int Run(string[] args)
    {
        int reps = DwConvBench.ParseInt(args, "--reps", 5);
        CpuParallel.Threads = DwConvBench.ParseInt(args, "--threads", CpuParallel.Threads);
        DwConvBench.CpuTime = args.Contains("--cpu-time");
        int only = DwConvBench.ParseInt(args, "--stage", 0);
        var peak = FmaPeak.MeasureForRun(CpuParallel.Threads);
        Console.WriteLine($"# {DwConvBench.Machine()}, threads {CpuParallel.Threads}, median of {reps}" +
            (DwConvBench.CpuTime ? ", PROCESS CPU TIME (not wall time)" : ""));
        Console.WriteLine(FmaPeak.HeaderLine(peak));
        Console.WriteLine("# fwd = the training forward (branch outputs); fwd sum-only = inference (merged kernel)");
        Console.WriteLine("| N,C,H,M | GFLOP/pass | fwd ms | fwd GFLOP/s | fwd % of peak | dgrad ms | wgrad ms | wgrad/fwd | " +
            "fwd sum-only ms |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var (n, c, h, m) in DwConvBench.Stages.Where((_, i) => only == 0 || only == i + 1))
        {
            var p = new DwConvProblem(n, c, h, m);
            double gf = p.ValidFlops / 1e9;
            double fwd = DwConvBench.TimeMs(p.ForwardBranches, reps);
            double dgrad = DwConvBench.TimeMs(p.BackwardData, reps);
            double wgrad = DwConvBench.TimeMs(p.BackwardFilter, reps);
            double sumOnly = DwConvBench.TimeMs(p.ForwardSum, reps);
            Console.WriteLine($"| {n},{c},{h},{m} | {gf:F2} | {fwd:F1} | {gf / fwd * 1e3:F1} | " +
                $"{FmaPeak.PercentOf(gf / fwd * 1e3, peak.Gflops)} | {dgrad:F1} | " +
                $"{wgrad:F1} | {wgrad / fwd:F2} | {sumOnly:F1} |");
        }
        return 0;
    }
}
