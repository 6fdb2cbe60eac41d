// The block MLP of a slak_nano / slak_nano64 training step (batch 128), forward and backward through
// F.LinearGeluLinear as the step runs it, at every stage: the per-GEMM composition (F.MlpOneOperator = false: the
// fused GEMMs one by one, act and dpre as whole tensors) against the one-operator MLP over blocks of rows (CpuMlp.cs),
// keeping the pre-activation or recomputing the first product in the backward (F.MlpRecompute). The three alternate
// call by call in one process, best of N each, at 2 threads; writes bench/results/mlp-step.md with the FMA peak of
// the run.
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll mlp-step [--reps N] [--out FILE] [--note TEXT]
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Backends.Cpu;

namespace Slak.Bench.Gemm;

internal static class MlpStep
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    // Pixels per image at stages 1-4 (as gemm-nano-step): slak_nano (8x8 .. 1x1 maps), slak_nano64 (16x16 .. 2x2).
    private static readonly (string Preset, int[] Pixels)[] Presets =
        [("slak_nano", [64, 16, 4, 1]), ("slak_nano64", [256, 64, 16, 4])];

    private static readonly int[] Widths = [31, 62, 124, 249];

    // The fourth variant is the second with CpuRowOps.Legacy (SLAK_MLP_LEGACY=1): the row blocks and row loops before
    // the balanced blocks and register row loops (CpuGemm.RowOps.cs), for the in-process old/new ratio.
    private static readonly string[] Variants =
        ["per-GEMM", "row blocks, pre kept", "row blocks, recompute", "row blocks, pre kept, legacy"];

    // Gc2: full (generation 2) garbage collections per call (fwd + bwd) of each variant: the per-GEMM form allocates
    // act and dpre as whole tensors (4-16 MB at stage 1) on every call.
    private sealed record Row(string Preset, int Stage, int Rows, int C, double[] Fwd, double[] Bwd, double[] Gc2);

    [BenchProgram("mlp-step", "The block MLP of a slak_nano step per stage: per-GEMM composition vs row blocks (pre kept / recomputed), interleaved [--reps N] [--out FILE] [--note TEXT]")]
    private static int Run(string[] args)
    {
        if (ReportArgs.Parse(args, defaultReps: 20) is not { } opts) return 2;
        int reps = opts.Reps;
        string outPath = opts.Out ?? "bench/results/mlp-step.md", note = opts.Note ?? "";
        string loadStart = RunInfo.LoadAverage();
        var start = DateTime.UtcNow;
        int savedThreads = CpuParallel.Threads;
        CpuParallel.Threads = 2;
        var peak = FmaPeak.MeasureForRun(2);
        var rows = new List<Row>();
        try
        {
            // Pass 0 warms every shape and variant up (tiered JIT), pass 1 measures.
            for (int pass = 0; pass < 2; pass++)
            {
                rows.Clear();
                foreach (var (preset, pixels) in Presets)
                    for (int s = 0; s < 4; s++)
                        rows.Add(Measure(preset, s + 1, 128 * pixels[s], Widths[s], pass == 0 ? 2 : reps));
            }
        }
        finally
        {
            F.MlpOneOperator = true;
            F.MlpRecompute = false;
            CpuRowOps.Legacy = false;
            CpuParallel.Threads = savedThreads;
        }
        // The peak again after the runs: on a loaded machine the first measurement may have found a core busy; the
        // higher of the two is used.
        CpuParallel.Threads = 2;
        var peakEnd = FmaPeak.MeasureForRun(2);
        CpuParallel.Threads = savedThreads;
        Console.WriteLine(FmaPeak.HeaderLine(peak) + " (start)");
        Console.WriteLine(FmaPeak.HeaderLine(peakEnd) + " (end)");
        if (peakEnd.Gflops > peak.Gflops) peak = peakEnd;
        string text = Format(rows, reps, start, loadStart, RunInfo.LoadAverage(), peak, note);
        File.WriteAllText(outPath, text);
        Console.Write(text);
        return 0;
    }

    private static Row Measure(string preset, int stage, int rows, int c, int reps)
    {
        int h = 4 * c;
        var rng = new Random(stage);
        var x = BenchData.Param(rng, [rows, c], 1);
        var w1 = BenchData.Param(rng, [h, c], 1 / Math.Sqrt(c));
        var b1 = BenchData.Param(rng, [h], 0.5);
        var w2 = BenchData.Param(rng, [c, h], 1 / Math.Sqrt(h));
        var b2 = BenchData.Param(rng, [c], 0.5);
        using var g = Tensor.FromArray(BenchData.Uniform(rng, rows * c, 1), [rows, c], Device.Cpu);
        var fwd = Enumerable.Repeat(double.MaxValue, Variants.Length).ToArray();
        var bwd = (double[])fwd.Clone();
        var gc2 = new double[Variants.Length];
        for (int r = 0; r < reps; r++)
            for (int v = 0; v < Variants.Length; v++)
            {
                F.MlpOneOperator = v > 0;
                F.MlpRecompute = v == 2;
                CpuRowOps.Legacy = v == 3;
                foreach (var p in new[] { x, w1, b1, w2, b2 })
                {
                    p.Grad?.Dispose();
                    p.Grad = null;
                }
                int gen2 = GC.CollectionCount(2);
                long t0 = Stopwatch.GetTimestamp();
                var y = F.LinearGeluLinear(x, w1, b1, w2, b2);
                fwd[v] = Math.Min(fwd[v], Stopwatch.GetElapsedTime(t0).TotalSeconds);
                t0 = Stopwatch.GetTimestamp();
                y.Backward(g);
                bwd[v] = Math.Min(bwd[v], Stopwatch.GetElapsedTime(t0).TotalSeconds);
                gc2[v] += (GC.CollectionCount(2) - gen2) / (double)reps;
                y.Dispose();
            }
        foreach (var p in new[] { x, w1, b1, w2, b2 })
        {
            p.Grad?.Dispose();
            p.Dispose();
        }
        return new Row(preset, stage, rows, c, fwd, bwd, gc2);
    }

    private static string Format(List<Row> rows, int reps, DateTime start, string loadStart, string loadEnd,
        (double Gflops, string Description) peak, string note)
    {
        var sb = new StringBuilder();
        void Line(string s) => sb.Append(s).Append('\n');
        Line("# mlp-step");
        Line("");
        Line(string.Create(Inv, $"Generated by `dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll mlp-step --reps {reps}` " +
            $"on {Environment.ProcessorCount} logical CPUs ({RunInfo.CpuModel()}), {start:yyyy-MM-dd HH:mm} UTC, commit {RunInfo.Commit()}."));
        Line($"Load average (/proc/loadavg) at the start: `{loadStart}`, at the end: `{loadEnd}`.");
        if (note.Length > 0) Line($"Note: {note}");
        Line("");
        Line("The FMA peak was measured before and after the runs at 2 threads; the higher is used:");
        Line("");
        Line(FmaPeak.HeaderLine(peak));
        Line("");
        Line($"One block MLP (C -> 4C -> C, exact GELU) per stage at batch 128 (rows = 128 x pixels), forward and " +
            "backward (all five gradients) through F.LinearGeluLinear with autograd, as the training step runs it, 2 threads. " +
            "`per-GEMM` = F.MlpOneOperator = false (SLAK_MLP_FUSED=0: bias + GELU in fc1's epilogue, fc2 with its bias, " +
            "in the backward fc2's dX with GELU' and db1 in its epilogue, db2, and the three other GEMMs, each over all rows, " +
            "pre, act and dpre whole tensors), `kept` = one backend operator each way over blocks of rows that stay in L2, " +
            $"keeping pre (CpuMlp.cs, at most {CpuMlp.HiddenBlockFloats} hidden floats per block), `recompute` = the same keeping nothing, the " +
            $"backward recomputing fc1 per block. The three alternate call by call in one process; best of {reps} each. " +
            "% = the MLP's GEMM FLOPs (2 products per fwd, 4 per bwd; `recompute`'s extra fc1, GELU and biases uncounted) over the " +
            "time, of the peak above; the last column counts the full garbage collections that fell in each variant's calls.");
        Line("");
        Line("| preset | stage | rows | C | fwd per-GEMM ms | fwd kept ms | fwd recompute ms | fwd kept/per-GEMM | bwd per-GEMM ms | bwd kept ms | bwd recompute ms | bwd kept/per-GEMM | bwd recompute/per-GEMM | fwd % per-GEMM / kept | bwd % per-GEMM / kept / recompute | gen-2 GCs per call per-GEMM / kept / recompute |");
        Line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var summary = new List<string>();
        foreach (var r in rows)
        {
            double f = 2.0 * r.Rows * r.C * 4 * r.C; // one of the MLP's products
            string P(double flops, double s) => FmaPeak.PercentOf(flops / s / 1e9, peak.Gflops);
            Line(string.Create(Inv, $"| {r.Preset} | {r.Stage} | {r.Rows} | {r.C} | {r.Fwd[0] * 1e3:F3} | {r.Fwd[1] * 1e3:F3} | " +
                $"{r.Fwd[2] * 1e3:F3} | {r.Fwd[1] / r.Fwd[0]:F2} | {r.Bwd[0] * 1e3:F3} | {r.Bwd[1] * 1e3:F3} | {r.Bwd[2] * 1e3:F3} | " +
                $"{r.Bwd[1] / r.Bwd[0]:F2} | {r.Bwd[2] / r.Bwd[0]:F2} | {P(2 * f, r.Fwd[0])} / {P(2 * f, r.Fwd[1])} | " +
                $"{P(4 * f, r.Bwd[0])} / {P(4 * f, r.Bwd[1])} / {P(4 * f, r.Bwd[2])} | {r.Gc2[0]:F2} / {r.Gc2[1]:F2} / {r.Gc2[2]:F2} |"));
        }
        Line("");
        Line("The row-block operator (pre kept, the default) against itself with SLAK_MLP_LEGACY=1 (the row blocks and " +
            "per-row TensorPrimitives loops before CpuGemm.RowOps.cs), interleaved in the same run; % of the peak above " +
            "as before (GEMM FLOPs only). `step` sums the four stages (every stage has two blocks in both presets, so " +
            "the per-block sum has the step's weights).");
        Line("");
        Line("| preset | stage | rows | C | fwd legacy ms | fwd new ms | fwd new/legacy | bwd legacy ms | bwd new ms | bwd new/legacy | fwd % legacy / new | bwd % legacy / new | fwd+bwd % legacy / new |");
        Line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var legacySummary = new List<string>();
        foreach (var grp in rows.GroupBy(r => r.Preset))
        {
            double fl = 0, tf3 = 0, tf1 = 0, tb3 = 0, tb1 = 0;
            foreach (var r in grp)
            {
                double f = 2.0 * r.Rows * r.C * 4 * r.C;
                string P(double flops, double s) => FmaPeak.PercentOf(flops / s / 1e9, peak.Gflops);
                Line(string.Create(Inv, $"| {r.Preset} | {r.Stage} | {r.Rows} | {r.C} | {r.Fwd[3] * 1e3:F3} | {r.Fwd[1] * 1e3:F3} | " +
                    $"{r.Fwd[1] / r.Fwd[3]:F2} | {r.Bwd[3] * 1e3:F3} | {r.Bwd[1] * 1e3:F3} | {r.Bwd[1] / r.Bwd[3]:F2} | " +
                    $"{P(2 * f, r.Fwd[3])} / {P(2 * f, r.Fwd[1])} | {P(4 * f, r.Bwd[3])} / {P(4 * f, r.Bwd[1])} | " +
                    $"{P(6 * f, r.Fwd[3] + r.Bwd[3])} / {P(6 * f, r.Fwd[1] + r.Bwd[1])} |"));
                fl += f; tf3 += r.Fwd[3]; tf1 += r.Fwd[1]; tb3 += r.Bwd[3]; tb1 += r.Bwd[1];
            }
            string Q(double flops, double s) => FmaPeak.PercentOf(flops / s / 1e9, peak.Gflops);
            Line(string.Create(Inv, $"| {grp.Key} | step | | | {tf3 * 1e3:F3} | {tf1 * 1e3:F3} | {tf1 / tf3:F2} | {tb3 * 1e3:F3} | " +
                $"{tb1 * 1e3:F3} | {tb1 / tb3:F2} | {Q(2 * fl, tf3)} / {Q(2 * fl, tf1)} | {Q(4 * fl, tb3)} / {Q(4 * fl, tb1)} | " +
                $"{Q(6 * fl, tf3 + tb3)} / {Q(6 * fl, tf1 + tb1)} |"));
            legacySummary.Add(string.Create(Inv,
                $"{grp.Key} new/legacy x{(tf1 + tb1) / (tf3 + tb3):F2} ({Q(6 * fl, tf3 + tb3)} -> {Q(6 * fl, tf1 + tb1)} of peak)"));
        }
        Line("");
        Line("Fwd + bwd of one block per stage, summed over the four stages (per block, not per step: stages have different depths):");
        Line("");
        Line("| preset | per-GEMM ms | kept ms | recompute ms | kept/per-GEMM | recompute/per-GEMM |");
        Line("|---|---:|---:|---:|---:|---:|");
        foreach (var grp in rows.GroupBy(r => r.Preset))
        {
            double o = grp.Sum(r => r.Fwd[0] + r.Bwd[0]), k = grp.Sum(r => r.Fwd[1] + r.Bwd[1]),
                c = grp.Sum(r => r.Fwd[2] + r.Bwd[2]);
            Line(string.Create(Inv, $"| {grp.Key} | {o * 1e3:F2} | {k * 1e3:F2} | {c * 1e3:F2} | {k / o:F2} | {c / o:F2} |"));
            summary.Add(string.Create(Inv, $"{grp.Key} kept x{k / o:F2}, recompute x{c / o:F2}"));
        }
        Line("");
        Line($"mlp-step: fwd + bwd time of one block per stage summed, relative to per-GEMM: {string.Join("; ", summary)}; " +
            $"row blocks against SLAK_MLP_LEGACY=1: {string.Join("; ", legacySummary)}");
        return sb.ToString();
    }
}
