// The GEMMs of one slak_nano and one slak_nano64 training step (batch 128, 32x32 / 64x64 inputs: block MLPs at
// 8x8..1x1 / 16x16..2x2 and their two backward products), timed one by one with CpuGemm at 1 and 2 threads: best-of-N GFLOP/s, to see which shapes
// (small K, small N, or 128 rows) lose against the machine's FMA peak.
using System.Diagnostics;
using Slak.Backends.Cpu;

namespace Slak.Bench.Train;

internal static class NanoGemmShapes
{
    // Pixels per image at stages 1-4: slak_nano (32x32 inputs: 8x8 .. 1x1 maps), then slak_nano64 (16x16 .. 2x2).
    private static readonly int[][] Pixels = [[64, 16, 4, 1], [256, 64, 16, 4]];

    [BenchProgram("nano-gemm", "CpuGemm GFLOP/s on the Linear shapes of a slak_nano training step [--reps N]")]
    private static int Run(string[] args)
    {
        int reps = args.Length >= 2 && args[0] == "--reps" ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20;
        (double Gflops, string Description)[] peaks = [FmaPeak.MeasureForRun(1), FmaPeak.MeasureForRun(2)];
        // Warm-up pass over every shape first, so no row is measured on tier-0 (unoptimized) JIT code.
        for (int pass = 0; pass < 2; pass++)
        {
            if (pass == 1)
            {
                Console.WriteLine($"nano-gemm: best of {reps}; {DateTime.UtcNow:u}; load {RunInfo.LoadAverage()}");
                foreach (var peak in peaks) Console.WriteLine(FmaPeak.HeaderLine(peak));
                Console.WriteLine("| stage | product | transA | transB | M | N | K | 1 thread GFLOP/s | 1 thread % of peak | " +
                    "2 threads GFLOP/s | 2 threads % of peak |");
                Console.WriteLine("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
            }
            RunShapes(pass == 0 ? 40 : reps, pass == 1, peaks[0].Gflops, peaks[1].Gflops);
        }
        // The fused products of the step's MLP as the backend runs them (2 threads), with the GEMM's FLOPs only
        // (the epilogue's work is not counted): the bare product, bias, and bias + GELU / GELU' + bias gradient with
        // the epilogue's two-pass (before) and one-pass (after) variants, interleaved shape by shape.
        for (int pass = 0; pass < 2; pass++)
        {
            if (pass == 1)
            {
                Console.WriteLine();
                Console.WriteLine($"nano-gemm fused epilogues, 2 threads: best of {reps}; {DateTime.UtcNow:u}; " +
                    $"load {RunInfo.LoadAverage()}");
                Console.WriteLine(FmaPeak.HeaderLine(peaks[1]));
                Console.WriteLine("| stage | product | M | N | K | no epilogue GFLOP/s (%) | bias (%) | " +
                    "GELU two-pass (%) | GELU one-pass (%) |");
                Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
            }
            RunFused(pass == 0 ? 20 : reps, pass == 1, peaks[1].Gflops);
        }
        // The weight gradients with a transposed A packed (before) and read in place (after), interleaved.
        for (int pass = 0; pass < 2; pass++)
        {
            if (pass == 1)
            {
                Console.WriteLine();
                Console.WriteLine($"nano-gemm dW, A packed vs in place: best of {reps}; {DateTime.UtcNow:u}; " +
                    $"load {RunInfo.LoadAverage()}");
                foreach (var peak in peaks) Console.WriteLine(FmaPeak.HeaderLine(peak));
                Console.WriteLine("| stage | product | M | N | K | 1 thread packed (%) | 1 thread in place (%) | " +
                    "2 threads packed (%) | 2 threads in place (%) |");
                Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
            }
            RunDirectA(pass == 0 ? 20 : reps, pass == 1, peaks[0].Gflops, peaks[1].Gflops);
        }
        Console.WriteLine($"nano-gemm: end {DateTime.UtcNow:u}; load {RunInfo.LoadAverage()}");
        return 0;
    }

    private static void RunDirectA(int reps, bool print, double peak1, double peak2)
    {
        int[] widths = [31, 62, 124, 249];
        foreach (int[] pixels in Pixels)
        for (int s = 0; s < 4; s++)
        {
            int rows = 128 * pixels[s], c = widths[s], h = 4 * c;
            foreach (var (name, m, n) in new[] { ("fc1 dW", h, c), ("fc2 dW", c, h) })
            {
                var g = new double[4];
                for (int v = 0; v < 4; v++)
                {
                    CpuGemm.DirectTransposedA = v % 2 == 1;
                    try
                    {
                        g[v] = Measure(true, false, m, n, rows, v < 2 ? 1 : 2, reps);
                    }
                    finally
                    {
                        CpuGemm.DirectTransposedA = true;
                    }
                }
                if (print) Console.WriteLine($"| {c} @ {pixels[s]} px | {name} | {m} | {n} | {rows} | " +
                    $"{g[0]:F1} ({FmaPeak.PercentOf(g[0], peak1)}) | {g[1]:F1} ({FmaPeak.PercentOf(g[1], peak1)}) | " +
                    $"{g[2]:F1} ({FmaPeak.PercentOf(g[2], peak2)}) | {g[3]:F1} ({FmaPeak.PercentOf(g[3], peak2)}) |");
            }
        }
    }

    private static unsafe void RunFused(int reps, bool print, double peak2)
    {
        int[] widths = [31, 62, 124, 249];
        foreach (int[] pixels in Pixels)
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
            // fc1 forward: pre = X W1^T + b1, y = GELU(pre) (NT, K = C); fc2 input gradient: dH = dY W2, times
            // GELU'(pre), and b1's gradient (NN, K = C).
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
                (string Name, bool Tb, Func<bool, GemmEpilogue?>? Epi, Func<bool, GemmEpilogue?>? Gelu)[] products =
                [
                    ("fc1 fwd + bias + GELU", true, _ => new BiasEpilogue((float*)bP),
                        one => new BiasGeluEpilogue((float*)bP, (float*)yP) { OnePass = one }),
                    ("fc2 dX x GELU' + dbias", false, null,
                        one => new GeluGradBiasSumEpilogue((float*)pP, (float*)dbP) { OnePass = one }),
                ];
                foreach (var (name, tb, epi, gelu) in products)
                {
                    double Time(Func<bool, GemmEpilogue?>? make, bool onePass)
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
                                    epilogue: make?.Invoke(onePass));
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
                    double g0 = Time(null, true);
                    double gb = epi is null ? double.NaN : Time(epi, true);
                    double gOld = Time(gelu, false), gNew = Time(gelu, true);
                    string Cell(double g) => double.IsNaN(g) ? "-" : $"{g:F1} ({FmaPeak.PercentOf(g, peak2)})";
                    if (print) Console.WriteLine($"| {c} @ {pixels[s]} px | {name} | {rows} | {h} | {c} | {Cell(g0)} | " +
                        $"{Cell(gb)} | {Cell(gOld)} | {Cell(gNew)} |");
                }
            }
        }
    }

    private static void RunShapes(int reps, bool print, double peak1, double peak2)
    {
        int[] widths = [31, 62, 124, 249];
        foreach (int[] pixels in Pixels)
        for (int s = 0; s < 4; s++)
        {
            int rows = 128 * pixels[s], c = widths[s], h = 4 * c;
            (string Name, bool Ta, bool Tb, int M, int N, int K)[] shapes =
            [
                ("fc1 fwd", false, true, rows, h, c), ("fc2 fwd", false, true, rows, c, h),
                ("fc1 dX", false, false, rows, c, h), ("fc2 dX", false, false, rows, h, c),
                ("fc1 dW", true, false, h, c, rows), ("fc2 dW", true, false, c, h, rows),
            ];
            foreach (var (name, ta, tb, m, n, k) in shapes)
            {
                double g1 = Measure(ta, tb, m, n, k, 1, reps), g2 = Measure(ta, tb, m, n, k, 2, reps);
                if (print) Console.WriteLine($"| {c} @ {pixels[s]} px | {name} | {ta} | {tb} | {m} | {n} | {k} | {g1:F1} | " +
                    $"{FmaPeak.PercentOf(g1, peak1)} | {g2:F1} | {FmaPeak.PercentOf(g2, peak2)} |");
            }
        }
    }

    private static double Measure(bool ta, bool tb, int m, int n, int k, int threads, int reps)
    {
        var rng = new Random(1);
        var a = new float[m * k];
        var b = new float[k * n];
        var c = new float[m * n];
        for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble();
        for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble();
        int saved = CpuParallel.Threads;
        CpuParallel.Threads = threads;
        try
        {
            double best = double.MaxValue;
            for (int r = 0; r < reps + 2; r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                CpuGemm.Sgemm(ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, c, n);
                double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                if (r >= 2) best = Math.Min(best, s);
            }
            return 2.0 * m * n * k / best / 1e9;
        }
        finally
        {
            CpuParallel.Threads = saved;
        }
    }
}
