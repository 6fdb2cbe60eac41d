// `dwconv-density-sweep`: the sparse-aware path (per-channel live-tap lists) at densities {1.0, 0.8, 0.6, 0.4, 0.2}
// against the dense path with the same masked weights, on the stage-1 and stage-2 shapes at batch 8.
using Slak.Backends.Cpu;

namespace Slak.Bench.DwConv;

internal static class DwConvDensitySweep
{
    private static readonly double[] Densities = [1.0, 0.8, 0.6, 0.4, 0.2];

    [BenchProgram("dwconv-density-sweep", "sparse-aware vs dense depthwise conv at densities 1.0..0.2 (stages 1-2)")]
    private static int Run(string[] args)
    {
        int reps = DwConvBench.ParseInt(args, "--reps", 4);
        CpuParallel.Threads = DwConvBench.ParseInt(args, "--threads", CpuParallel.Threads);
        Console.WriteLine($"# {DwConvBench.Machine()}; threads {CpuParallel.Threads}; " +
            $"best of {reps} interleaved runs; wall time");
        Console.WriteLine("# dense = same masked weights, all taps computed; " +
            "sparse = CpuDwConvTapList (pruned taps skipped); " +
            "at density 1.0 both run the same dense code (a measure of the noise)");
        Console.WriteLine("| N,C,H,M | density | dense fwd ms | sparse fwd ms | sparse/dense fwd | " +
            "dense fwd+bwd ms | sparse fwd+bwd ms | sparse/dense fwd+bwd |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var (n, c, h, m) in DwConvBench.Stages.Take(2))
        {
            foreach (double d in Densities)
            {
                var sparse = new DwConvProblem(n, c, h, m, density: d);
                var dense = new DwConvProblem(n, c, h, m, density: d);
                dense.SkipMasked = false;
                for (int b = 0; b < dense.Branches.Count; b++)
                    dense.Branches[b] = dense.Branches[b] with { Taps = null };
                var t = DwConvBench.BestOfInterleavedMs(reps, dense.Forward, sparse.Forward, dense.ForwardBackward,
                    sparse.ForwardBackward);
                double df = t[0], sf = t[1], db = t[2], sb = t[3];
                Console.WriteLine($"| {n},{c},{h},{m} | {d:F1} | {df:F1} | {sf:F1} | {sf / df:F2} | {db:F1} | " +
                    $"{sb:F1} | {sb / db:F2} |");
            }
        }
        return 0;
    }
}
