// The pointwise GEMMs of a slak_nano / slak_nano64 training step (batch 128: every block MLP's forward, input-gradient
// and weight-gradient products, and the two GELU-fused ones as the backend runs them), timed with CpuGemm's earlier
// paths (CpuGemm.LegacyPaths) and its current ones in one process, interleaved call by call, best of N each, at
// 2 threads, plus the current path at 1 thread; writes bench/results/gemm-nano-step.md with the FMA peak of the run.
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll gemm-nano-step [--reps N] [--out FILE] [--note TEXT]
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Backends.Cpu;

namespace Slak.Bench.Gemm;

internal static class GemmNanoStep
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    // Pixels per image at stages 1-4: slak_nano (32x32 inputs: 8x8 .. 1x1 maps), slak_nano64 (16x16 .. 2x2).
    private static readonly (string Preset, int[] Pixels)[] Presets =
        [("slak_nano", [64, 16, 4, 1]), ("slak_nano64", [256, 64, 16, 4])];

    private static readonly int[] Widths = [31, 62, 124, 249];

    [BenchProgram("gemm-nano-step", "CpuGemm on a slak_nano step's pointwise GEMMs: earlier vs current paths, interleaved [--reps N] [--out FILE] [--note TEXT]")]
    private static int Run(string[] args)
    {
        if (ReportArgs.Parse(args, defaultReps: 40) is not { } opts) return 2;
        int reps = opts.Reps;
        string outPath = opts.Out ?? "bench/results/gemm-nano-step.md", note = opts.Note ?? "";
        string loadStart = RunInfo.LoadAverage();
        var start = DateTime.UtcNow;
        var peak2 = FmaPeak.MeasureForRun(2);
        var peak1 = FmaPeak.MeasureForRun(1);
        var forkJoin = ForkJoinMicroseconds(reps * 20);
        var rows = new List<Row>();
        // Pass 0 warms every shape and path up (tiered JIT), pass 1 measures.
        for (int pass = 0; pass < 2; pass++)
        {
            rows.Clear();
            foreach (var (preset, pixels) in Presets)
                for (int s = 0; s < 4; s++)
                    foreach (var shape in Shapes(128 * pixels[s], Widths[s]))
                        rows.Add(Measure(preset, pixels[s], shape, pass == 0 ? 10 : reps));
        }
        // The peaks again after the GEMMs: on a loaded machine the first measurement may have found one core busy; the
        // higher of the two is the one the percentages use (both are printed).
        var peak2End = FmaPeak.MeasureForRun(2);
        var peak1End = FmaPeak.MeasureForRun(1);
        string loadEnd = RunInfo.LoadAverage();
        Console.WriteLine(FmaPeak.HeaderLine(peak2) + " (start)");
        Console.WriteLine(FmaPeak.HeaderLine(peak2End) + " (end)");
        Console.WriteLine(FmaPeak.HeaderLine(peak1) + " (start)");
        Console.WriteLine(FmaPeak.HeaderLine(peak1End) + " (end)");
        if (peak2End.Gflops > peak2.Gflops) peak2 = peak2End;
        if (peak1End.Gflops > peak1.Gflops) peak1 = peak1End;
        string text = Format(rows, reps, start, loadStart, loadEnd, peak1, peak2, note, forkJoin);
        File.WriteAllText(outPath, text);
        Console.Write(text);
        return 0;
    }

    // InSum: false for the reference row (fc1's product without its epilogue), which the step does not run.
    private sealed record Shape(string Product, bool Ta, bool Tb, int M, int N, int K, int Epilogue, bool InSum = true);

    // Swap2: the current paths with the swapped form at every k (CpuGemm.SwapMinK = 0), NaN where it does not apply.
    private sealed record Row(string Preset, int Pixels, Shape Shape, double Old2, double New2, double New1, double Swap2);

    // Epilogue 0: none; 1: bias + GELU (fc1 forward); 2: GELU' + bias gradient (fc2's input gradient).
    private static IEnumerable<Shape> Shapes(int rows, int c)
    {
        int h = 4 * c;
        yield return new("fc1 fwd + bias + GELU", false, true, rows, h, c, 1);
        yield return new("(fc1 fwd, no epilogue)", false, true, rows, h, c, 0, false);
        yield return new("fc2 fwd", false, true, rows, c, h, 0);
        yield return new("fc2 dX x GELU' + dbias", false, false, rows, h, c, 2);
        yield return new("fc1 dX", false, false, rows, c, h, 0);
        yield return new("fc1 dW", true, false, h, c, rows, 0);
        yield return new("fc2 dW", true, false, c, h, rows, 0);
    }

    private static unsafe Row Measure(string preset, int pixels, Shape sh, int reps)
    {
        var rng = new Random(1);
        float[] Fill(long len)
        {
            var v = new float[len];
            for (long i = 0; i < len; i++) v[i] = (float)(rng.NextDouble() - 0.5);
            return v;
        }
        var a = Fill((long)sh.M * sh.K);
        var b = Fill((long)sh.K * sh.N);
        var c = new float[(long)sh.M * sh.N];
        var aux = sh.Epilogue == 0 ? [] : Fill((long)sh.M * sh.N);
        var bias = Fill(sh.N);
        var best = new[] { double.MaxValue, double.MaxValue, double.MaxValue, double.MaxValue };
        bool swappable = sh.Ta && !sh.Tb && sh.M < sh.N && sh.Epilogue == 0;
        int savedSwap = CpuGemm.SwapMinK;
        int savedThreads = CpuParallel.Threads;
        fixed (float* pAux = aux)
        fixed (float* pBias = bias)
        {
            try
            {
                for (int r = 0; r < reps; r++)
                    for (int v = 0; v < (swappable ? 4 : 3); v++)
                    {
                        CpuGemm.LegacyPaths = v == 0;
                        CpuGemm.SwapMinK = v == 3 ? 0 : savedSwap;
                        int threads = v == 2 ? 1 : 2;
                        CpuParallel.Threads = threads;
                        GemmEpilogue? epi = sh.Epilogue switch
                        {
                            1 => new BiasGeluEpilogue(pBias, pAux),
                            2 => new GeluGradBiasSumEpilogue(pAux, pBias),
                            _ => null,
                        };
                        long t0 = Stopwatch.GetTimestamp();
                        CpuGemm.Sgemm(sh.Ta, sh.Tb, sh.M, sh.N, sh.K, 1f, a, sh.Ta ? sh.M : sh.K, b,
                            sh.Tb ? sh.K : sh.N, 0f, c, sh.N, threads, epilogue: epi);
                        best[v] = Math.Min(best[v], Stopwatch.GetElapsedTime(t0).TotalSeconds);
                    }
            }
            finally
            {
                CpuGemm.LegacyPaths = false;
                CpuGemm.SwapMinK = savedSwap;
                CpuParallel.Threads = savedThreads;
            }
        }
        return new Row(preset, pixels, sh, best[0], best[1], best[2], swappable ? best[3] : double.NaN);
    }

    private static string Format(List<Row> rows, int reps, DateTime start, string loadStart, string loadEnd,
        (double Gflops, string Description) peak1, (double Gflops, string Description) peak2, string note,
        (double Best, double Median) forkJoin)
    {
        var sb = new StringBuilder();
        void Line(string s) => sb.Append(s).Append('\n');
        string commit = RunInfo.Commit();
        Line("# gemm-nano-step");
        Line("");
        Line(string.Create(Inv, $"Generated by `dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll gemm-nano-step --reps {reps}` " +
            $"on {Environment.ProcessorCount} logical CPUs ({RunInfo.CpuModel()}), {start:yyyy-MM-dd HH:mm} UTC, commit {commit}."));
        Line($"Load average (/proc/loadavg) at the start: `{loadStart}`, at the end: `{loadEnd}`.");
        if (note.Length > 0) Line($"Note: {note}");
        Line("");
        Line("The FMA peak was measured before and after the GEMMs at each thread count; the higher is used:");
        Line("");
        Line(FmaPeak.HeaderLine(peak2));
        Line("");
        Line(FmaPeak.HeaderLine(peak1));
        Line(string.Create(Inv, $"One fork/join of CpuParallel.For over 2 empty items at 2 threads: best {forkJoin.Best:F1} us, " +
            $"median {forkJoin.Median:F1} us."));
        Line("");
        Line("Each product of one block MLP at each stage (batch 128; C = channels, 4C hidden; rows = 128 x pixels), " +
            "as CpuGemm.Sgemm runs it in the step (the forward fc1 and fc2's input gradient with their GELU epilogues, " +
            "whose work is not counted in the FLOPs). `old` = CpuGemm.LegacyPaths (edge tiles through a stack tile, B " +
            "packed in its own parallel phase, A packed also for outputs of one or two slivers, 128-row products on the " +
            "shared-panel driver with the epilogue in a phase after it, split-k sum forked, dW always swapped with a " +
            "scalar transpose-back), `new` = the " +
            $"current paths (the last column: the dW products with fewer rows than columns computed swapped, C^T = B^T A " +
            $"and transposed back, at every k instead of only from k = {CpuGemm.SwapMinK}). Old and new alternate call by call in one process; best of {reps} each. % = of the peak " +
            "measured above at the same thread count.");
        Line("");
        Line("| preset | stage | product | M | N | K | old 2T us | new 2T us | new/old | old 2T % | new 2T % | new 1T % | new, always swapped, 2T us |");
        Line("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            double flops = 2.0 * r.Shape.M * r.Shape.N * r.Shape.K;
            Line(string.Create(Inv, $"| {r.Preset} | {Widths[Array.IndexOf(Presets.First(p => p.Preset == r.Preset).Pixels, r.Pixels)]} @ {r.Pixels} px | " +
                $"{r.Shape.Product} | {r.Shape.M} | {r.Shape.N} | {r.Shape.K} | {r.Old2 * 1e6:F1} | {r.New2 * 1e6:F1} | " +
                $"{r.New2 / r.Old2:F2} | {Pct(flops, r.Old2, peak2.Gflops)} | {Pct(flops, r.New2, peak2.Gflops)} | " +
                $"{Pct(flops, r.New1, peak1.Gflops)} | {(double.IsNaN(r.Swap2) ? "-" : (r.Swap2 * 1e6).ToString("F1", Inv))} |"));
        }
        Line("");
        Line("Sums over the six products of one block per stage (a step runs each block's products once; stages have " +
            "different depths, so this is per block, not per step):");
        Line("");
        Line("| preset | old 2T us | new 2T us | new/old | old 2T % | new 2T % |");
        Line("|---|---:|---:|---:|---:|---:|");
        var summary = new List<string>();
        foreach (var g in rows.Where(r => r.Shape.InSum).GroupBy(r => r.Preset))
        {
            double flops = g.Sum(r => 2.0 * r.Shape.M * r.Shape.N * r.Shape.K);
            double o = g.Sum(r => r.Old2), n = g.Sum(r => r.New2);
            Line(string.Create(Inv, $"| {g.Key} | {o * 1e6:F0} | {n * 1e6:F0} | {n / o:F2} | {Pct(flops, o, peak2.Gflops)} | " +
                $"{Pct(flops, n, peak2.Gflops)} |"));
            summary.Add(string.Create(Inv, $"{g.Key} {Pct(flops, o, peak2.Gflops)} -> {Pct(flops, n, peak2.Gflops)}"));
        }
        Line("");
        Line($"gemm-nano-step: 2-thread fraction of the peak, old -> new: {string.Join(", ", summary)}");
        return sb.ToString();
    }

    // The fixed cost every parallel phase of a GEMM pays (times a best and a median call).
    private static (double Best, double Median) ForkJoinMicroseconds(int calls)
    {
        int saved = CpuParallel.Threads;
        CpuParallel.Threads = 2;
        try
        {
            var times = new double[calls];
            int sink = 0;
            for (int i = 0; i < calls; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                CpuParallel.For(0, 2, j => Interlocked.Add(ref sink, j));
                times[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds * 1e6;
            }
            Array.Sort(times);
            return (times[0], times[calls / 2]);
        }
        finally
        {
            CpuParallel.Threads = saved;
        }
    }

    private static string Pct(double flops, double seconds, double peakGflops)
        => string.Create(Inv, $"{100 * flops / seconds / 1e9 / peakGflops:F0}%");

}
