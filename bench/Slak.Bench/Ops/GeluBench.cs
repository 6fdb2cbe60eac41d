// GELU before and after issue 27's table form, in one run: the accuracy of both against float64 over a dense sweep,
// the per-element cost of the span kernels (1 thread; ns and core cycles per element, cycles taken as the 1-thread
// Vector512 FMA peak / 32 FLOP per cycle, i.e. one 512-bit FMA per cycle), and slak_nano's two GELU-fused GEMMs
// (2 threads, GEMM FLOPs only) with the old erfcc epilogue, the new one in passes, and the new one in one pass,
// interleaved shape by shape.
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll gelu-bench [--reps N] [--out FILE] [--note TEXT]
// (--out appends, so that runs under different settings, e.g. DOTNET_EnableAVX512=0 for the AVX2 fallbacks, share one
// file; --note: a line about the conditions, e.g. the machine's load, written under the header)
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Backends.Cpu;

namespace Slak.Bench.Ops;

internal static class GeluBench
{
    [BenchProgram("gelu-bench", "GELU old (erfcc) vs table form: error vs float64, cycles/element, GELU-fused GEMMs [--reps N] [--out FILE] [--note TEXT]")]
    private static int Run(string[] args)
    {
        if (ReportArgs.Parse(args, defaultReps: 30) is not { } opts) return 2;
        int reps = opts.Reps;
        string? outFile = opts.Out, note = opts.Note;
        var o = new Report();
        var peak1 = FmaPeak.MeasureForRun(1);
        var peak2 = FmaPeak.MeasureForRun(2);
        double ghz = ClockGhz();
        o.Line(Inv($"# gelu-bench: AVX-512 {CpuGelu.Vectorized}, AVX2 {System.Runtime.Intrinsics.X86.Avx2.IsSupported}"));
        o.Line();
        string start = Inv($"{DateTime.UtcNow:u}; commit {RunInfo.Commit()}; {Environment.ProcessorCount} cores");
        o.Line(Inv($"Program: `gelu-bench --reps {reps}` (bench/Slak.Bench/Ops/GeluBench.cs); {start}; load average at start {RunInfo.LoadAverage()}."));
        if (note is not null) o.Line(note);
        o.Line("'old' = the erfcc form of commit 25a04d6 (GeluErfccBaseline.cs), 'new' = the table form (CpuGelu.cs).");
        o.Line(FmaPeak.HeaderLine(peak1));
        o.Line(FmaPeak.HeaderLine(peak2));
        o.Line(Inv($"Cycles below are core cycles at {ghz:F2} GHz, the clock measured in this run") +
            " (a chain of dependent 1-cycle integer operations, best of 200 bursts).");
        o.Line();
        Accuracy(o.Line);
        o.Line();
        for (int pass = 0; pass < 2; pass++) Spans(pass == 0 ? 100 : reps, pass == 1 ? o.Line : null, ghz);
        o.Line();
        for (int pass = 0; pass < 2; pass++) Fused(pass == 0 ? 3 : reps, pass == 1 ? o.Line : null, peak2.Gflops);
        o.Line();
        o.Line(Inv($"Load average at end {RunInfo.LoadAverage()}; {DateTime.UtcNow:u}."));
        if (outFile is not null) File.AppendAllText(outFile, o.ToString());
        return 0;
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    /// <summary>Max errors of old and new against float64 over x = -10 .. 10 in steps of 2^-14 (327,681 points).</summary>
    private static void Accuracy(Action<string> line)
    {
        int n = 20 * 16384 + 1;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = -10f + i / 16384f;
        var ones = Enumerable.Repeat(1f, n).ToArray();
        var yOld = new float[n];
        var yNew = new float[n];
        var dOld = new float[n];
        var dNew = new float[n];
        GeluErfccBaseline.Forward(x, yOld);
        CpuGelu.Forward(x, yNew);
        GeluErfccBaseline.Backward(x, ones, dOld);
        CpuGelu.Backward(x, ones, dNew);
        line("Error against float64 (CpuMath.Erf in double) at every x = -10 .. 10 in steps of 2^-14:");
        line("");
        line("| quantity | old | new |");
        line("|---|---:|---:|");
        (double Lo, string Name)[] ranges = [(-3, "x >= -3"), (-5, "x >= -5"), (-10, "all x")];
        foreach (var (lo, name) in ranges)
        {
            double rOld = 0, rNew = 0;
            for (int i = 0; i < n; i++)
            {
                double w = Gelu64(x[i]);
                if (x[i] < lo || w == 0) continue;
                rOld = Math.Max(rOld, Math.Abs(yOld[i] - w) / Math.Abs(w));
                rNew = Math.Max(rNew, Math.Abs(yNew[i] - w) / Math.Abs(w));
            }
            line(Inv($"| GELU max relative error, {name} | {rOld:G3} | {rNew:G3} |"));
        }
        double aOld = 0, aNew = 0, gOld = 0, gNew = 0;
        for (int i = 0; i < n; i++)
        {
            if (x[i] < 0)
            {
                double w = Gelu64(x[i]);
                aOld = Math.Max(aOld, Math.Abs(yOld[i] - w));
                aNew = Math.Max(aNew, Math.Abs(yNew[i] - w));
            }
            double d = Derivative64(x[i]);
            gOld = Math.Max(gOld, Math.Abs(dOld[i] - d));
            gNew = Math.Max(gNew, Math.Abs(dNew[i] - d));
        }
        line(Inv($"| GELU max absolute error, x < 0 | {aOld:G3} | {aNew:G3} |"));
        line(Inv($"| GELU' max absolute error, all x | {gOld:G3} | {gNew:G3} |"));
    }

    internal static double Gelu64(double x) => 0.5 * x * (1 + CpuMath.Erf(x / Math.Sqrt(2)));

    internal static double Derivative64(double x) =>
        0.5 * (1 + CpuMath.Erf(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);

    /// <summary>The span kernels on 1 thread, at an L1-sized and a slak_nano stage-1 fc1-sized length.</summary>
    private static void Spans(int reps, Action<string>? line, double ghz)
    {
        line?.Invoke(Inv($"Span kernels, 1 thread, best of {reps} (x normal, std 2):"));
        line?.Invoke("");
        line?.Invoke("| kernel | elements | old ns/elem | old cycles/elem | new ns/elem | new cycles/elem | new / old |");
        line?.Invoke("|---|---:|---:|---:|---:|---:|---:|");
        var rng = new Random(1);
        foreach (int n in new[] { 4096, 128 * 64 * 124 })
        {
            var x = new float[n];
            var dy = new float[n];
            var y = new float[n];
            for (int i = 0; i < n; i++)
            {
                x[i] = (float)(2 * Normal(rng));
                dy[i] = (float)Normal(rng);
            }
            int inner = Math.Max(1, 1 << 20 >> BitLength(n));
            double Time(Action body)
            {
                double best = double.MaxValue;
                for (int r = 0; r < reps; r++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    for (int k = 0; k < inner; k++) body();
                    best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds / inner);
                }
                return best * 1e9 / n;
            }
            (string, Action, Action)[] kernels =
            [
                ("GELU forward", () => GeluErfccBaseline.Forward(x, y), () => CpuGelu.Forward(x, y)),
                ("dy * GELU'", () => GeluErfccBaseline.Backward(x, dy, y), () => CpuGelu.Backward(x, dy, y)),
            ];
            foreach (var (name, old, now) in kernels)
            {
                double a = double.MaxValue, b = double.MaxValue;
                for (int round = 0; round < 3; round++) // interleaved
                {
                    a = Math.Min(a, Time(old));
                    b = Math.Min(b, Time(now));
                }
                line?.Invoke(Inv($"| {name} | {n} | {a:F3} | {a * ghz:F2} | {b:F3} | {b * ghz:F2} | {b / a:F2} |"));
            }
        }
    }

    /// <summary>The core clock: 2 x 8 dependent integer add/xor (1 cycle latency each) per iteration, best burst.</summary>
    private static double ClockGhz()
    {
        const long iterations = 1 << 16;
        double best = BestBurst.Seconds(1, 200, warmup: 20, _ => Chain(iterations, 3, 5));
        return iterations * 16 / best / 1e9;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static float Chain(long iterations, long y, long z)
    {
        long x = 1;
        for (long i = 0; i < iterations; i++)
        {
            x = (x + y) ^ z; x = (x + y) ^ z; x = (x + y) ^ z; x = (x + y) ^ z;
            x = (x + y) ^ z; x = (x + y) ^ z; x = (x + y) ^ z; x = (x + y) ^ z;
        }
        return x;
    }

    private static int BitLength(int n) => 32 - int.LeadingZeroCount(n);

    private static double Normal(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>slak_nano's and slak_nano64's GELU-fused products at stages 1-4, as the backend runs them.</summary>
    private static unsafe void Fused(int reps, Action<string>? line, double peak2)
    {
        line?.Invoke(Inv($"GELU-fused GEMMs, 2 threads, best of {reps}, GFLOP/s of the product (% of the 2-thread peak):"));
        line?.Invoke("");
        line?.Invoke("| stage | product | M | N | K | no epilogue | old GELU (passes) | new GELU, passes | new GELU, one pass |");
        line?.Invoke("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        int[] widths = [31, 62, 124, 249];
        foreach (int[] pixels in new[] { new[] { 64, 16, 4, 1 }, new[] { 256, 64, 16, 4 } })
        for (int s = 0; s < 4; s++)
        {
            int rows = 128 * pixels[s], c = widths[s], h = 4 * c;
            var rng = new Random(1);
            float[] Fill(int len, double scale)
            {
                var v = new float[len];
                for (int i = 0; i < len; i++) v[i] = (float)((rng.NextDouble() - 0.5) * scale);
                return v;
            }
            var x = Fill(rows * c, 2);
            var w = Fill(h * c, 2 / Math.Sqrt(c));
            var bias = Fill(h, 0.2);
            var pre = Fill(rows * h, 4);
            var outC = new float[rows * h];
            var y = new float[rows * h];
            var dbias = new float[h];
            fixed (float* pb = bias)
            fixed (float* py = y)
            fixed (float* pp = pre)
            fixed (float* pdb = dbias)
            {
                nint bP = (nint)pb, yP = (nint)py, pP = (nint)pp, dbP = (nint)pdb;
                (string Name, bool Tb, Func<GemmEpilogue>[] Make)[] products =
                [
                    ("fc1 fwd + bias + GELU", true,
                    [
                        () => new BaselineBiasGeluEpilogue((float*)bP, (float*)yP),
                        () => new BiasGeluEpilogue((float*)bP, (float*)yP) { OnePass = false },
                        () => new BiasGeluEpilogue((float*)bP, (float*)yP) { OnePass = true },
                    ]),
                    ("fc2 dX x GELU' + dbias", false,
                    [
                        () => new BaselineGeluGradBiasSumEpilogue((float*)pP, (float*)dbP),
                        () => new GeluGradBiasSumEpilogue((float*)pP, (float*)dbP) { OnePass = false },
                        () => new GeluGradBiasSumEpilogue((float*)pP, (float*)dbP) { OnePass = true },
                    ]),
                ];
                foreach (var (name, tb, make) in products)
                {
                    double Time(Func<GemmEpilogue>? epi)
                    {
                        int saved = CpuParallel.Threads;
                        CpuParallel.Threads = 2;
                        try
                        {
                            double best = double.MaxValue;
                            for (int r = 0; r < reps + 2; r++)
                            {
                                long t0 = Stopwatch.GetTimestamp();
                                CpuGemm.Sgemm(false, tb, rows, h, c, 1f, x, c, w, tb ? c : h, 0f, outC, h, 2,
                                    epilogue: epi?.Invoke());
                                double sec = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                                if (r >= 2) best = Math.Min(best, sec);
                            }
                            return 2.0 * rows * h * c / best / 1e9;
                        }
                        finally
                        {
                            CpuParallel.Threads = saved;
                        }
                    }
                    var g = new double[4];
                    Array.Fill(g, 0);
                    for (int round = 0; round < 2; round++) // interleaved, best of both rounds
                    {
                        g[0] = Math.Max(g[0], Time(null));
                        for (int v = 0; v < 3; v++) g[v + 1] = Math.Max(g[v + 1], Time(make[v]));
                    }
                    string Cell(double v) => Inv($"{v:F1} ({FmaPeak.PercentOf(v, peak2)})");
                    string cells = string.Join(" | ", g.Select(Cell));
                    line?.Invoke(Inv($"| {c} @ {pixels[s]} px | {name} | {rows} | {h} | {c} | {cells} |"));
                }
            }
        }
    }
}
