// Old against new for this session's changes to the CPU block MLP (issue 27), in one process: CpuBackend.MlpForward
// and MlpBackward (pre kept, as the training step runs them) at every stage of slak_nano and slak_nano64 (batch 128,
// 2 threads), with the changes switched off (`old`: CpuMlp.SplitHiddenForward / SplitHiddenBackward = false, i.e.
// SLAK_MLP_SPLIT_HIDDEN=0; CpuMlp.ReduceTransposed = false, SLAK_MLP_REDUCE_TRANSPOSED=0; CpuGemm.MaskedPackB = false,
// SLAK_GEMM_MASKED_PACK=0; CpuMlp.GeluJoint = false, SLAK_MLP_GELU_JOINT=0) and on (`new`, the defaults), alternating call by call; best of N calls each. Writes bench/results/mlp-ab.md with the FMA peak measured
// in the same run (one core's, times the 2 threads, as mlp-phases).
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll mlp-ab [--reps N] [--out FILE] [--note TEXT]
//     [--only split-hidden|reduce-transposed|masked-pack|gelu-joint] [--base CHANGE] [--split-from-rows N]
// (gelu-joint: CpuMlp.GeluJoint, SLAK_MLP_GELU_JOINT: the backward's act and GELU' in one pass after the dact product)
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Backends;
using Slak.Backends.Cpu;

namespace Slak.Bench.Gemm;

internal static class MlpAb
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private static readonly (string Preset, int Stage, int Pixels, int C)[] Shapes =
    [
        ("slak_nano", 1, 64, 31), ("slak_nano", 2, 16, 62), ("slak_nano", 3, 4, 124), ("slak_nano", 4, 1, 249),
        ("slak_nano64", 1, 256, 31), ("slak_nano64", 2, 64, 62), ("slak_nano64", 3, 16, 124), ("slak_nano64", 4, 4, 249),
    ];

    private const int Threads = 2;

    // Fwd / Bwd: best of the calls, old and new; FwdRatio / BwdRatio: the median over the reps of new / old of the two
    // calls of one rep (adjacent in time, so on the shared machine both are about as likely to be descheduled).
    // FwdPhases / BwdPhases: per variant, each phase's best over the calls (CpuMlp's phase clock: a task's steps, the
    // tasks' sum over the thread count; on the shared machine a short phase is more often undisturbed than a call).
    private sealed record Row(string Preset, int Stage, int Rows, int C, double[] Fwd, double[] Bwd, double FwdRatio,
        double BwdRatio, double[][] FwdPhases, double[][] BwdPhases);

    [BenchProgram("mlp-ab", "The CPU block MLP per stage, this session's changes off against on (SLAK_MLP_SPLIT_HIDDEN, SLAK_MLP_REDUCE_TRANSPOSED, SLAK_GEMM_MASKED_PACK, SLAK_MLP_GELU_JOINT), interleaved [--reps N] [--out FILE] [--note TEXT] [--only CHANGE] [--base CHANGE] [--split-from-rows N]")]
    private static int Run(string[] args)
    {
        int at = Array.IndexOf(args, "--split-from-rows");
        if (at >= 0)
        {
            _splitFromRows = int.Parse(args[at + 1], CultureInfo.InvariantCulture);
            args = [.. args[..at], .. args[(at + 2)..]];
        }
        at = Array.IndexOf(args, "--only");
        if (at >= 0)
        {
            _only = args[at + 1];
            args = [.. args[..at], .. args[(at + 2)..]];
            if (!Changes.Contains(_only))
            {
                Console.Error.WriteLine($"--only: one of {string.Join(", ", Changes)}");
                return 2;
            }
        }
        at = Array.IndexOf(args, "--base");
        if (at >= 0)
        {
            _base = args[at + 1];
            args = [.. args[..at], .. args[(at + 2)..]];
        }
        if (ReportArgs.Parse(args, defaultReps: 100) is not { } opts) return 2;
        string outPath = opts.Out ?? "bench/results/mlp-ab.md", note = opts.Note ?? "";
        string loadStart = RunInfo.LoadAverage();
        var start = DateTime.UtcNow;
        int savedThreads = CpuParallel.Threads;
        CpuParallel.Threads = Threads;
        var one = FmaPeak.MeasureForRun(1, 3000);
        var rows = new List<Row>();
        try
        {
            for (int pass = 0; pass < 2; pass++) // pass 0 warms up (tiered JIT)
            {
                rows.Clear();
                foreach (var (preset, stage, pixels, c) in Shapes)
                    rows.Add(Measure(preset, stage, 128 * pixels, c, pass == 0 ? 3 : opts.Reps));
            }
        }
        finally
        {
            Switch(true);
            CpuParallel.Threads = savedThreads;
        }
        var oneEnd = FmaPeak.MeasureForRun(1, 3000);
        if (oneEnd.Gflops > one.Gflops) one = oneEnd;
        var peak = (one.Gflops * Threads, string.Create(Inv, $"{one.Gflops * Threads:F1} GFLOP/s = {Threads} x {one.Description}"));
        string text = Format(rows, opts.Reps, start, loadStart, RunInfo.LoadAverage(), peak, note);
        File.WriteAllText(outPath, text);
        Console.Write(text);
        return 0;
    }

    // --split-from-rows N: the new variant splits over the hidden units wherever row blocks would be shorter than N
    // rows (CpuMlp.MinBackwardBlockRows during its calls), e.g. 129 to include the third stage.
    private static int _splitFromRows;

    // --only NAME (split-hidden, reduce-transposed, masked-pack, gelu-joint): the new variant turns on that change
    // alone, the others stay off in both variants.
    private static string? _only;

    private static readonly string[] Changes = ["split-hidden", "reduce-transposed", "masked-pack", "gelu-joint"];

    // --base NAME: that change on in both variants (to time another change on top of it).
    private static string? _base;

    private static void Switch(bool on)
    {
        bool On(string change) => change == _base || (on && (_only == null || _only == change));
        CpuMlp.MinBackwardBlockRows = on && _splitFromRows > 0 ? _splitFromRows : 128;
        CpuMlp.SplitHiddenForward = On("split-hidden");
        CpuMlp.SplitHiddenBackward = On("split-hidden");
        CpuMlp.ReduceTransposed = On("reduce-transposed");
        CpuGemm.MaskedPackB = On("masked-pack");
        CpuMlp.GeluJoint = On("gelu-joint");
    }

    private static Row Measure(string preset, int stage, int rows, int c, int reps)
    {
        var rng = new Random(stage * 7 + c);
        using var ops = new MlpOperands(rows, c, rng);
        double[] fwd = [double.MaxValue, double.MaxValue], bwd = [double.MaxValue, double.MaxValue];
        var fwdRatios = new double[reps];
        var bwdRatios = new double[reps];
        var f = new double[2];
        var b = new double[2];
        var fwdPhases = new[] { NewPhases(), NewPhases() };
        var bwdPhases = new[] { NewPhases(), NewPhases() };
        var ticks = new long[Threads * MlpPhaseClock.Count];
        for (int r = 0; r < reps; r++)
        {
            for (int v = 0; v < 2; v++)
            {
                Switch(v == 1);
                Array.Clear(ticks);
                MlpPhaseClock.Ticks = ticks;
                long t0 = Stopwatch.GetTimestamp();
                ops.Forward();
                f[v] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                BestPhases(ticks, fwdPhases[v]);
                Array.Clear(ticks);
                t0 = Stopwatch.GetTimestamp();
                ops.Backward();
                b[v] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                MlpPhaseClock.Ticks = null;
                BestPhases(ticks, bwdPhases[v]);
                fwd[v] = Math.Min(fwd[v], f[v]);
                bwd[v] = Math.Min(bwd[v], b[v]);
            }
            fwdRatios[r] = f[1] / f[0];
            bwdRatios[r] = b[1] / b[0];
        }
        return new Row(preset, stage, rows, c, fwd, bwd, Median(fwdRatios), Median(bwdRatios), fwdPhases, bwdPhases);
    }

    private static double[] NewPhases() => Enumerable.Repeat(double.MaxValue, MlpPhaseClock.Count).ToArray();

    // Each phase's time in this call (the tasks' sum over the thread count) folded into its best.
    private static void BestPhases(long[] ticks, double[] best)
    {
        for (int p = 0; p < MlpPhaseClock.Count; p++)
        {
            long sum = 0;
            for (int t = 0; t < Threads; t++) sum += ticks[t * MlpPhaseClock.Count + p];
            best[p] = Math.Min(best[p], sum / (double)Stopwatch.Frequency / Threads);
        }
    }

    // The sum of the phases' bests (0 where the path has no phase clock: the per-GEMM composition).
    private static double PhaseSum(double[] best) => best.Sum();

    private static double Median(double[] v)
    {
        var s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static string Format(List<Row> rows, int reps, DateTime start, string loadStart, string loadEnd,
        (double Gflops, string Description) peak, string note)
    {
        var sb = new StringBuilder();
        void Line(string s) => sb.Append(s).Append('\n');
        string P(double flops, double s) => FmaPeak.PercentOf(flops / s / 1e9, peak.Gflops);
        Line("# mlp-ab");
        Line("");
        Line(string.Create(Inv, $"Generated by `dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll mlp-ab --reps {reps}` " +
            $"on {Environment.ProcessorCount} logical CPUs ({RunInfo.CpuModel()}), {start:yyyy-MM-dd HH:mm} UTC, commit {RunInfo.Commit()}."));
        Line($"Load average (/proc/loadavg) at the start: `{loadStart}`, at the end: `{loadEnd}`.");
        if (note.Length > 0) Line($"Note: {note}");
        if (_only != null) Line($"Only one change: `new` turns on `{_only}` alone; every other change is off in both variants" +
            (_base != null ? $", except `{_base}`, on in both." : "."));
        if (_splitFromRows > 0) Line($"`new` splits over the hidden units wherever row blocks would have under {_splitFromRows} rows.");
        Line("");
        Line("The FMA peak: one core's, measured before and after the runs (the higher is used), times the 2 threads:");
        Line("");
        Line(FmaPeak.HeaderLine(peak));
        Line("");
        Line($"One CpuBackend.MlpForward and MlpBackward (C -> 4C -> C at batch 128, {Threads} threads, pre kept as the " +
            "training step runs them); `old` = SLAK_MLP_SPLIT_HIDDEN=0, SLAK_MLP_REDUCE_TRANSPOSED=0, SLAK_GEMM_MASKED_PACK=0 and SLAK_MLP_GELU_JOINT=0 " +
            "(the last stage's " +
            "forward over row blocks with the weights packed on the calling thread, its backward as the per-GEMM composition; " +
            "dw2's per-task sums reduced element by element; a ragged B sliver or A strip packed element by element), " +
            "`new` = the defaults (the last stage split over the hidden units, CpuMlp.SplitHidden.cs; dw2 reduced as vectors " +
            "and transposed by 8 x 8 blocks; ragged B slivers and A strips packed by masked loads; the backward's act and GELU' " +
            "in one pass after the dact product); the two alternate call by " +
            $"call, best of {reps} each; `median new/old` = the median over the reps of the ratio of a rep's two calls. % = the MLP's GEMM FLOPs (2 products fwd, 4 bwd, 2 x rows x C x 4C each) over the " +
            "time, of the peak above. `step` sums the four stages (every stage has two blocks in both presets).");
        Line("");
        Line("| preset | stage | rows | C | fwd old ms | fwd new ms | fwd new/old | fwd median new/old | bwd old ms | bwd new ms | bwd new/old | bwd median new/old | fwd % old / new | bwd % old / new |");
        Line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var summary = new List<string>();
        foreach (var grp in rows.GroupBy(r => r.Preset))
        {
            double fl = 0, fo = 0, fn = 0, bo = 0, bn = 0;
            foreach (var r in grp)
            {
                double f = 2.0 * r.Rows * r.C * 4 * r.C;
                Line(string.Create(Inv, $"| {r.Preset} | {r.Stage} | {r.Rows} | {r.C} | {r.Fwd[0] * 1e3:F3} | {r.Fwd[1] * 1e3:F3} | " +
                    $"{r.Fwd[1] / r.Fwd[0]:F2} | {r.FwdRatio:F2} | {r.Bwd[0] * 1e3:F3} | {r.Bwd[1] * 1e3:F3} | {r.Bwd[1] / r.Bwd[0]:F2} | {r.BwdRatio:F2} | " +
                    $"{P(2 * f, r.Fwd[0])} / {P(2 * f, r.Fwd[1])} | {P(4 * f, r.Bwd[0])} / {P(4 * f, r.Bwd[1])} |"));
                fl += f; fo += r.Fwd[0]; fn += r.Fwd[1]; bo += r.Bwd[0]; bn += r.Bwd[1];
            }
            Line(string.Create(Inv, $"| {grp.Key} | step | | | {fo * 1e3:F3} | {fn * 1e3:F3} | {fn / fo:F2} | | {bo * 1e3:F3} | " +
                $"{bn * 1e3:F3} | {bn / bo:F2} | | {P(2 * fl, fo)} / {P(2 * fl, fn)} | {P(4 * fl, bo)} / {P(4 * fl, bn)} |"));
            summary.Add(string.Create(Inv, $"{grp.Key} fwd x{fn / fo:F2} ({P(2 * fl, fo)} -> {P(2 * fl, fn)}), " +
                $"bwd x{bn / bo:F2} ({P(4 * fl, bo)} -> {P(4 * fl, bn)})"));
        }
        Line("");
        Line("Per phase (CpuMlp's phase clock, each phase's best over the calls, per thread: the tasks' sum / 2; the " +
            "per-GEMM composition has no clock, so its sums are 0; Pack and Reduce, which the row-block form runs once on the " +
            "calling thread, are halved too): the sum of the bests, and the phases whose bests differ " +
            "by more than 3 % and 5 microseconds, old -> new ms.");
        Line("");
        Line("| preset | stage | fwd phases old / new ms | bwd phases old / new ms | phases that differ |");
        Line("|---|---:|---:|---:|---|");
        foreach (var r in rows)
        {
            var diffs = new List<string>();
            foreach (var (dir, ph) in new[] { ("fwd", r.FwdPhases), ("bwd", r.BwdPhases) })
                for (int p = 0; p < MlpPhaseClock.Count; p++)
                {
                    double o = ph[0][p], n = ph[1][p];
                    if (Math.Abs(n - o) > Math.Max(0.03 * Math.Max(o, n), 5e-6))
                        diffs.Add(string.Create(Inv, $"{dir} {(MlpPhase)p} {o * 1e3:F3} -> {n * 1e3:F3}"));
                }
            Line(string.Create(Inv, $"| {r.Preset} | {r.Stage} | {PhaseSum(r.FwdPhases[0]) * 1e3:F3} / {PhaseSum(r.FwdPhases[1]) * 1e3:F3} | " +
                $"{PhaseSum(r.BwdPhases[0]) * 1e3:F3} / {PhaseSum(r.BwdPhases[1]) * 1e3:F3} | {string.Join(", ", diffs)} |"));
        }
        Line("");
        Line($"mlp-ab (new/old, stages summed): {string.Join("; ", summary)}");
        return sb.ToString();
    }
}
