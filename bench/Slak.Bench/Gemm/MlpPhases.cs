// Where one block MLP call spends its time (issue 27): CpuBackend.MlpForward and MlpBackward at every stage of
// slak_nano64 and slak_nano (batch 128, 2 threads; the last stages' backward runs MlpComposed, which has no phase clock:
// its wall only), with each task's steps timed by CpuMlp's phase clock
// (CpuMlp.Phases.cs): every product's time and GFLOP/s, and the passes that are not products (GELU recompute, GELU',
// column sums, the final reduction, the weights' packing). Pre kept (the step's path) and pre recomputed (F.MlpRecompute,
// SLAK_MLP_RECOMPUTE=1) alternate call by call in one process; best of N calls each, and each phase's best over the N
// calls (the machine is shared: a call's phases include the time its task was descheduled). Writes
// bench/results/mlp-phases.md with the FMA peak measured in the same run.
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll mlp-phases [--reps N] [--out FILE] [--note TEXT]
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Backends;
using Slak.Backends.Cpu;

namespace Slak.Bench.Gemm;

internal static class MlpPhases
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private static readonly (string Preset, int Stage, int Pixels, int C)[] Shapes =
    [
        ("slak_nano64", 1, 256, 31), ("slak_nano64", 2, 64, 62), ("slak_nano64", 3, 16, 124), ("slak_nano64", 4, 4, 249),
        ("slak_nano", 1, 64, 31), ("slak_nano", 2, 16, 62), ("slak_nano", 3, 4, 124), ("slak_nano", 4, 1, 249),
    ];

    private static readonly string[] Variants = ["pre kept", "pre recomputed"];

    private sealed record Timing(double Fwd, double Bwd, double[] FwdPhases, double[] BwdPhases);

    private sealed record Row(string Preset, int Stage, int Rows, int C, Timing[] ByVariant);

    private const int Threads = 2;

    // Bursts of the FMA peak's measurement (300 by default): ten times as many, since on the shared machine a burst
    // with the core to itself is rare.
    private const int PeakBursts = 3000;

    // The peak the phases are read against: one core's, times the thread count. A phase's time is each task's best over
    // the calls, not necessarily with both tasks running at once, so the rate is per core; and on the shared machine
    // a burst with both cores free is rare (the 2-thread measurement read half the peak in most runs here).
    private static (double Gflops, string Description) PeakPerCoreTimesThreads()
    {
        var one = FmaPeak.MeasureForRun(1, PeakBursts);
        return (one.Gflops * Threads, string.Create(Inv, $"{one.Gflops * Threads:F1} GFLOP/s = {Threads} x {one.Description}"));
    }

    [BenchProgram("mlp-phases", "Per-product breakdown of one block MLP call (CpuMlp) per stage, pre kept and recomputed, interleaved [--reps N] [--out FILE] [--note TEXT]")]
    private static int Run(string[] args)
    {
        if (ReportArgs.Parse(args, defaultReps: 20) is not { } opts) return 2;
        string outPath = opts.Out ?? "bench/results/mlp-phases.md", note = opts.Note ?? "";
        string loadStart = RunInfo.LoadAverage();
        var start = DateTime.UtcNow;
        int savedThreads = CpuParallel.Threads;
        CpuParallel.Threads = Threads;
        var peak = PeakPerCoreTimesThreads();
        var rows = new List<Row>();
        try
        {
            for (int pass = 0; pass < 2; pass++) // pass 0 warms up (tiered JIT)
            {
                rows.Clear();
                foreach (var (preset, stage, pixels, c) in Shapes)
                    rows.Add(Measure(preset, stage, 128 * pixels, c, pass == 0 ? 2 : opts.Reps));
            }
        }
        finally
        {
            MlpPhaseClock.Ticks = null;
        }
        var peakEnd = PeakPerCoreTimesThreads();
        CpuParallel.Threads = savedThreads;
        if (peakEnd.Gflops > peak.Gflops) peak = peakEnd;
        string text = Format(rows, opts.Reps, start, loadStart, RunInfo.LoadAverage(), peak, note);
        File.WriteAllText(outPath, text);
        Console.Write(text);
        return 0;
    }

    private static Row Measure(string preset, int stage, int rows, int c, int reps)
    {
        var rng = new Random(stage * 7 + c);
        using var ops = new MlpOperands(rows, c, rng);
        var best = new Timing[Variants.Length];
        for (int v = 0; v < best.Length; v++)
            best[v] = new Timing(double.MaxValue, double.MaxValue, Enumerable.Repeat(double.MaxValue, MlpPhaseClock.Count).ToArray(),
                Enumerable.Repeat(double.MaxValue, MlpPhaseClock.Count).ToArray());
        var ticks = new long[Threads * MlpPhaseClock.Count];
        for (int r = 0; r < reps; r++)
            for (int v = 0; v < Variants.Length; v++)
            {
                Array.Clear(ticks);
                MlpPhaseClock.Ticks = ticks;
                long t0 = Stopwatch.GetTimestamp();
                ops.Forward(keepPre: v == 0);
                double fwd = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                var fwdPhases = PerThread(ticks);
                Array.Clear(ticks);
                t0 = Stopwatch.GetTimestamp();
                ops.Backward(keepPre: v == 0);
                double bwd = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                MlpPhaseClock.Ticks = null;
                var bwdPhases = PerThread(ticks);
                var b = best[v];
                for (int p = 0; p < MlpPhaseClock.Count; p++)
                {
                    b.FwdPhases[p] = Math.Min(b.FwdPhases[p], fwdPhases[p]);
                    b.BwdPhases[p] = Math.Min(b.BwdPhases[p], bwdPhases[p]);
                }
                best[v] = b with { Fwd = Math.Min(b.Fwd, fwd), Bwd = Math.Min(b.Bwd, bwd) };
            }
        return new Row(preset, stage, rows, c, best);
    }

    // Seconds per phase on one thread: the tasks' sum over the thread count (the tasks run side by side; Pack and
    // Reduce run once, before or after them, and are counted whole).
    private static double[] PerThread(long[] ticks)
    {
        var s = new double[MlpPhaseClock.Count];
        for (int p = 0; p < s.Length; p++)
        {
            long sum = 0;
            for (int t = 0; t < Threads; t++) sum += ticks[t * MlpPhaseClock.Count + p];
            bool once = p == (int)MlpPhase.Pack || p == (int)MlpPhase.Reduce;
            s[p] = sum / (double)Stopwatch.Frequency / (once ? 1 : Threads);
        }
        return s;
    }

    private static string Format(List<Row> rows, int reps, DateTime start, string loadStart, string loadEnd,
        (double Gflops, string Description) peak, string note)
    {
        var sb = new StringBuilder();
        void Line(string s) => sb.Append(s).Append('\n');
        Line("# mlp-phases");
        Line("");
        Line(string.Create(Inv, $"Generated by `dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll mlp-phases --reps {reps}` " +
            $"on {Environment.ProcessorCount} logical CPUs ({RunInfo.CpuModel()}), {start:yyyy-MM-dd HH:mm} UTC, commit {RunInfo.Commit()}."));
        Line($"Load average (/proc/loadavg) at the start: `{loadStart}`, at the end: `{loadEnd}`.");
        if (note.Length > 0) Line($"Note: {note}");
        Line("");
        Line("The FMA peak: one core's, measured before and after the runs (the higher is used), times the 2 threads:");
        Line("");
        Line(FmaPeak.HeaderLine(peak));
        Line("");
        Line($"One CpuBackend.MlpForward and MlpBackward (C -> 4C -> C at batch 128, {Threads} threads), `pre kept` (as the " +
            "training step runs them: the backward recomputes act = GELU(pre)) and `pre recomputed` (the backward recomputes the first " +
            $"product, Fc1, per block) alternating call by call; best of {reps} calls each, and each phase's best over those calls " +
            "(on a shared machine a phase's time includes its task's time descheduled). Phase times are per thread (the two tasks' " +
            "sum / 2; Pack and Reduce run once and count whole, except at the last stage, split over the hidden units " +
            "(CpuMlp.SplitHidden.cs), where each task packs its own slices of the weights and Pack is the tasks' sum); a product's GFLOP/s is 2 x rows x C x 4C over that time (so at 2 " +
            "threads), % of the peak above; Fc1 includes its epilogue (bias, GELU), Fc2 its bias; Reduce in the forward: the " +
            "last stage's shares of y summed. Start: a task's time from the fork to its first step (a worker waking up, or " +
            "with Parallel.For's shared index the calling thread taking the second task itself after its first when the " +
            "worker has not started by then); Wait: from its last step to the join's return (the other task still running, " +
            "the join). `other` = best wall - the best phases (scratch, and the phases' bests coming from different calls). " +
            "The clock costs two timestamps per step, ~10 per block of 0.1-0.5 ms.");
        Line("");
        foreach (var (title, fwd) in new[] { ("Forward", true), ("Backward", false) })
        {
            Line($"## {title}");
            Line("");
            var phases = fwd
                ? new[] { MlpPhase.Pack, MlpPhase.Fc1, MlpPhase.Fc2, MlpPhase.Reduce, MlpPhase.Start, MlpPhase.Wait }
                : new[] { MlpPhase.Pack, MlpPhase.Fc1, MlpPhase.GeluRecompute, MlpPhase.Dact, MlpPhase.GeluGrad, MlpPhase.ColumnSums,
                    MlpPhase.Dw2, MlpPhase.Dw1, MlpPhase.Dx, MlpPhase.Reduce, MlpPhase.Start, MlpPhase.Wait };
            Line("| preset | stage | rows | C | variant | wall ms | " + string.Join(" | ", phases.Select(p => $"{p} ms")) +
                " | other ms | products GFLOP/s (% of peak) | wall / pre kept |");
            Line("|---|---:|---:|---:|---|---:|" + string.Concat(phases.Select(_ => "---:|")) + "---:|---|---:|");
            foreach (var r in rows)
            {
                double f = 2.0 * r.Rows * r.C * 4 * r.C;
                for (int v = 0; v < Variants.Length; v++)
                {
                    var t = r.ByVariant[v];
                    double wall = fwd ? t.Fwd : t.Bwd;
                    var ph = fwd ? t.FwdPhases : t.BwdPhases;
                    double other = wall - phases.Sum(p => ph[(int)p]);
                    var products = phases.Where(p => IsProduct(p) && ph[(int)p] > 0).Select(p =>
                        string.Create(Inv, $"{p} {f / ph[(int)p] / 1e9:F0} ({FmaPeak.PercentOf(f / ph[(int)p] / 1e9, peak.Gflops)})"));
                    double old = fwd ? r.ByVariant[0].Fwd : r.ByVariant[0].Bwd;
                    Line(string.Create(Inv, $"| {r.Preset} | {r.Stage} | {r.Rows} | {r.C} | {Variants[v]} | {wall * 1e3:F3} | ") +
                        string.Join(" | ", phases.Select(p => string.Create(Inv, $"{ph[(int)p] * 1e3:F3}"))) +
                        string.Create(Inv, $" | {other * 1e3:F3} | {string.Join(", ", products)} | {(v == 0 ? "" : $"{wall / old:F2}")} |"));
                }
            }
            Line("");
        }
        // The last line: per stage, the step's path (pre kept): fwd and bwd GEMM FLOPs over the sum of the phases (the
        // work of one thread, both threads busy), and the non-product passes' share of the backward's phases.
        var summary = rows.Select(r =>
        {
            var t = r.ByVariant[0];
            // The steps only: not the tasks' start after the fork and wait at the join.
            double Steps(double[] ph) => ph.Where((p, i) => i != (int)MlpPhase.Start && i != (int)MlpPhase.Wait &&
                p > 0 && p < double.MaxValue).Sum();
            double f = 2.0 * r.Rows * r.C * 4 * r.C, fs = Steps(t.FwdPhases), bs = Steps(t.BwdPhases);
            double passes = t.BwdPhases[(int)MlpPhase.GeluRecompute] + t.BwdPhases[(int)MlpPhase.GeluGrad] +
                t.BwdPhases[(int)MlpPhase.ColumnSums] + t.BwdPhases[(int)MlpPhase.Reduce];
            return string.Create(Inv, $"{r.Preset} s{r.Stage} fwd {FmaPeak.PercentOf(2 * f / fs / 1e9, peak.Gflops)} / " +
                $"bwd {FmaPeak.PercentOf(4 * f / bs / 1e9, peak.Gflops)} of peak over the phases, passes {passes / bs * 100:F0} % of bwd");
        });
        Line($"mlp-phases (pre kept): {string.Join("; ", summary)}");
        return sb.ToString();
    }

    private static bool IsProduct(MlpPhase p) => p is MlpPhase.Fc1 or MlpPhase.Fc2 or MlpPhase.Dact or MlpPhase.Dw2
        or MlpPhase.Dw1 or MlpPhase.Dx;
}
