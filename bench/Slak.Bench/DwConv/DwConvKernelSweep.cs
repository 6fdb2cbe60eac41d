// `dwconv-kernel-sweep`: our CPU operator at (8, 124, 56 x 56) for M in {7, 13, 31, 51, 61, 101, 151}: decomposed
// (M x 5 + 5 x M + 5 x 5) against one dense M x M kernel, forward and forward+backward, showing the linear versus
// quadratic growth. Writes a CSV next to --out and, when python3-matplotlib is present, a PNG plot of it.
using System.Diagnostics;
using System.Globalization;
using Slak.Backends.Cpu;

namespace Slak.Bench.DwConv;

internal static class DwConvKernelSweep
{
    private static readonly int[] Ms = [7, 13, 31, 51, 61, 101, 151];

    [BenchProgram("dwconv-kernel-sweep", "decomposed vs dense M x M at (8,124,56x56), M = 7..151 (table, CSV, PNG)")]
    private static int Run(string[] args)
    {
        int reps = DwConvBench.ParseInt(args, "--reps", 3);
        CpuParallel.Threads = DwConvBench.ParseInt(args, "--threads", CpuParallel.Threads);
        int oi = Array.IndexOf(args, "--out");
        string outBase = oi >= 0 && oi + 1 < args.Length ? args[oi + 1] : "dwconv-kernel-sweep";
        var peak = FmaPeak.MeasureForRun(CpuParallel.Threads);
        Console.WriteLine($"# {DwConvBench.Machine()}; threads {CpuParallel.Threads}; median of {reps}; wall time");
        Console.WriteLine(FmaPeak.HeaderLine(peak));
        Console.WriteLine("| M | decomposed fwd ms | decomposed fwd+bwd ms | dense MxM fwd ms | " +
            "dense MxM fwd+bwd ms | decomposed GFLOP (valid) | dense GFLOP (valid) |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        var csv = new List<string> { "M,dec_fwd_ms,dec_fwdbwd_ms,dense_fwd_ms,dense_fwdbwd_ms" };
        var decF = new Dictionary<int, double>();
        foreach (int m in Ms)
        {
            var dec = new DwConvProblem(8, 124, 56, m);
            var dense = new DwConvProblem(8, 124, 56, m, s: m, square: false);
            // A dense M x M problem is one branch; DwConvProblem(square: false) with S = M gives M x M twice, so drop one.
            dense.Branches.RemoveAt(1); dense.Ys.RemoveAt(1); dense.Dys.RemoveAt(1); dense.Dws.RemoveAt(1);
            double df = DwConvBench.TimeMs(dec.Forward, reps), db = DwConvBench.TimeMs(dec.ForwardBackward, reps);
            double sf = DwConvBench.TimeMs(dense.Forward, reps), sb = DwConvBench.TimeMs(dense.ForwardBackward, reps);
            decF[m] = df;
            Console.WriteLine($"| {m} | {df:F1} | {db:F1} | {sf:F1} | {sb:F1} | {dec.ValidFlops / 1e9:F2} | " +
                $"{dense.ValidFlops / 1e9:F2} |");
            csv.Add(string.Create(CultureInfo.InvariantCulture, $"{m},{df:F3},{db:F3},{sf:F3},{sb:F3}"));
        }
        Console.WriteLine();
        Console.WriteLine($"dwconv-kernel-sweep: decomposed fwd time(M=101)/time(M=51) = {decF[101] / decF[51]:F2}");
        File.WriteAllLines(outBase + ".csv", csv);
        Plot(outBase);
        return 0;
    }

    private static void Plot(string outBase)
    {
        string script = string.Join('\n',
            "import csv, sys",
            "try:",
            "    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt",
            "except ImportError:",
            "    print('no python3-matplotlib: PNG not written'); sys.exit(0)",
            "rows = list(csv.DictReader(open(sys.argv[1] + '.csv')))",
            "m = [int(r['M']) for r in rows]",
            "fig, ax = plt.subplots(figsize=(7, 4.5))",
            "for key, label, style in [('dec_fwd_ms', 'decomposed Mx5+5xM+5x5, fwd', 'o-'),",
            "        ('dec_fwdbwd_ms', 'decomposed, fwd+bwd', 'o--'), ('dense_fwd_ms', 'dense MxM, fwd', 's-'),",
            "        ('dense_fwdbwd_ms', 'dense MxM, fwd+bwd', 's--')]:",
            "    ax.plot(m, [float(r[key]) for r in rows], style, label=label)",
            "ax.set_xlabel('kernel size M'); ax.set_ylabel('time, ms (wall)'); ax.set_yscale('log')",
            "ax.set_title('Slak CPU depthwise conv, (8, 124, 56x56)'); ax.grid(True, alpha=0.3); ax.legend()",
            "fig.tight_layout(); fig.savefig(sys.argv[1] + '.png', dpi=110); print('wrote', sys.argv[1] + '.png')");
        string py = Path.Combine(Path.GetTempPath(), "slak_dwconv_sweep_plot.py");
        File.WriteAllText(py, script);
        try
        {
            using var p = Process.Start(new ProcessStartInfo("/usr/bin/python3", $"\"{py}\" \"{outBase}\"")
            { UseShellExecute = false })!;
            p.WaitForExit();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.Error.WriteLine($"plot skipped: {e.Message}");
        }
    }
}
