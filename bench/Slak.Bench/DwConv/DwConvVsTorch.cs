// `dwconv-vs-torch`: our decomposed CPU depthwise convolution (51x5 + 5x51 + 5x5 style: the sum, and separately the
// branch outputs training keeps) against PyTorch's CPU conv2d(groups=C) (three convs summed) on the four SLaK-T
// stage shapes at batch 8, same thread count, in one run. Last line: `dwconv-vs-torch: fwd x<ratio>, fwd+bwd
// x<ratio>` (geometric means of PyTorch time / our time).
using System.Globalization;
using Slak.Backends.Cpu;

namespace Slak.Bench.DwConv;

internal static class DwConvVsTorch
{
    [BenchProgram("dwconv-vs-torch", "decomposed depthwise conv vs PyTorch CPU conv2d(groups=C), SLaK-T stages")]
    private static int Run(string[] args)
    {
        int threads = DwConvBench.ParseInt(args, "--threads", CpuParallel.Threads);
        int reps = DwConvBench.ParseInt(args, "--reps", 9);
        int torchReps = DwConvBench.ParseInt(args, "--torch-reps", 5);
        CpuParallel.Threads = threads;
        var peak = FmaPeak.MeasureForRun(threads);
        Console.WriteLine($"# {DwConvBench.Machine()}; threads {threads} (ours and torch.set_num_threads); " +
            $"median of {reps} (ours) / {torchReps} (PyTorch) runs after a warm-up; wall time");
        Console.WriteLine("# ours: CpuDwConvDecomposed. fwd = the sum of the branches (inference: one correlation " +
            "with the merged kernel; the function PyTorch computes); train fwd = the 3 branch outputs, no sum (what " +
            "the training graph runs: each output feeds its own BatchNorm); fwd+bwd = train fwd + input grad + " +
            "weight grads. PyTorch: F.conv2d(groups=C) x3 summed, backward of x and w.");
        Console.WriteLine(FmaPeak.HeaderLine(peak));

        string specs = string.Join(' ', DwConvBench.Stages.Select(s => $"{s.N},{s.C},{s.H},{s.M}"));
        var torch = DwConvBench.RunTorch($"--threads {threads} --reps {torchReps} {specs}");
        if (torch is null || torch.Length < DwConvBench.Stages.Length)
        {
            Console.Error.WriteLine("dwconv-vs-torch: PyTorch peer unavailable; no ratios");
            return 1;
        }

        Console.WriteLine();
        Console.WriteLine("| N,C,H,M | valid GFLOP/pass | torch fwd ms | ours fwd ms | fwd x | " +
            "ours train fwd ms | train fwd x | ours train fwd GFLOP/s | ours train fwd % of peak | torch fwd+bwd ms | ours fwd+bwd ms | " +
            "fwd+bwd x | ours wgrad/train fwd |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        double logF = 0, logT = 0, logB = 0;
        for (int i = 0; i < DwConvBench.Stages.Length; i++)
        {
            var (n, c, h, m) = DwConvBench.Stages[i];
            var f = torch[i].Split(' ');
            double tf = double.Parse(f[5], CultureInfo.InvariantCulture);
            double tb = double.Parse(f[6], CultureInfo.InvariantCulture);
            var p = new DwConvProblem(n, c, h, m);
            double of = DwConvBench.TimeMs(p.ForwardSum, reps);
            double ot = DwConvBench.TimeMs(p.ForwardBranches, reps);
            double ob = DwConvBench.TimeMs(p.ForwardBackward, reps);
            double ow = DwConvBench.TimeMs(p.BackwardFilter, reps);
            double gf = p.ValidFlops / 1e9;
            logF += Math.Log(tf / of);
            logT += Math.Log(tf / ot);
            logB += Math.Log(tb / ob);
            Console.WriteLine($"| {n},{c},{h},{m} | {gf:F2} | {tf:F1} | {of:F1} | {tf / of:F1} | " +
                $"{ot:F1} | {tf / ot:F1} | {gf / ot * 1e3:F1} | {FmaPeak.PercentOf(gf / ot * 1e3, peak.Gflops)} | " +
                $"{tb:F1} | {ob:F1} | {tb / ob:F1} | {ow / ot:F2} |");
        }
        int k = DwConvBench.Stages.Length;
        Console.WriteLine();
        Console.WriteLine($"training forward (branch outputs) vs PyTorch forward: x{Math.Exp(logT / k):F1}");
        Console.WriteLine($"dwconv-vs-torch: fwd x{Math.Exp(logF / k):F1}, fwd+bwd x{Math.Exp(logB / k):F1}");
        return 0;
    }
}
