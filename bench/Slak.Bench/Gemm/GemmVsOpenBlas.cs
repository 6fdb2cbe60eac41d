// Side-by-side comparison of CpuGemm with OpenBLAS cblas_sgemm on SLaK's MLP shapes: same inputs, same thread count,
// calls interleaved (ours, peer, ours, peer, ...) so both see the same machine load; best-of-N after a warm-up.
//   dotnet run -c Release --project bench/Slak.Bench -- gemm-vs-openblas [--threads N] [--reps N] [--shapes issue|slak|cache|all]
using System.Diagnostics;
using Slak.Backends.Cpu;
using Slak.Bench.Peers;

namespace Slak.Bench.Gemm;

internal static class GemmVsOpenBlas
{
    [BenchProgram("gemm-vs-openblas", "CpuGemm vs OpenBLAS cblas_sgemm on SLaK MLP shapes (GFLOP/s, ratio)")]
    private static int Run(string[] args)
    {
        int threads = CpuParallel.Threads, reps = 7;
        // Cache-resident shapes take ~100 us: many more repetitions so best-of catches a quiet time slice.
        string set = "all";
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--threads": threads = int.Parse(args[++i]); break;
                case "--reps": reps = int.Parse(args[++i]); break;
                case "--shapes": set = args[++i]; break;
                default:
                    Console.Error.WriteLine($"unknown argument '{args[i]}' (use --threads N, --reps N, --shapes issue|slak|cache|all)");
                    return 2;
            }
        }
        if (!OpenBlas.IsAvailable)
        {
            Console.Error.WriteLine("libopenblas.so.0 not found (apt-get install libopenblas0)");
            return 1;
        }

        CpuParallel.Threads = threads;
        OpenBlas.SetNumThreads(threads);
        var shapes = set switch
        {
            "issue" => GemmShapes.Issue().ToList(),
            "slak" => GemmShapes.Slak().ToList(),
            "cache" => GemmShapes.CacheResident().ToList(),
            _ => GemmShapes.Issue().Concat(GemmShapes.Slak()).Concat(GemmShapes.CacheResident()).ToList(),
        };

        var peak = FmaPeak.MeasureForRun(threads);
        Console.WriteLine($"threads={threads} reps={reps} (best of), kernel={CpuGemm.AutoKernelName}, " +
                          $"OpenBLAS: {OpenBlas.Config}");
        Console.WriteLine(FmaPeak.HeaderLine(peak));
        Console.WriteLine();
        Console.WriteLine("| shape | op | M | N | K | CpuGemm GFLOP/s | CpuGemm % of peak | OpenBLAS GFLOP/s | OpenBLAS % of peak | ratio | max rel diff |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        double minRatio = double.MaxValue;
        int counted = 0;
        var rng = new Random(1234);
        foreach (var s in shapes)
        {
            int lda = s.TransA ? s.M : s.K, ldb = s.TransB ? s.K : s.N;
            var a = Random(rng, (long)s.M * s.K);
            var b = Random(rng, (long)s.K * s.N);
            var cOurs = new float[(long)s.M * s.N];
            var cPeer = new float[(long)s.M * s.N];

            void Ours() => CpuGemm.Sgemm(s.TransA, s.TransB, s.M, s.N, s.K, 1f, a, lda, b, ldb, 0f, cOurs, s.N);
            void Peer() => OpenBlas.Sgemm(s.TransA, s.TransB, s.M, s.N, s.K, 1f, a, lda, b, ldb, 0f, cPeer, s.N);

            Ours();
            Peer();
            double bestOurs = double.MaxValue, bestPeer = double.MaxValue;
            int shapeReps = s.Flops < 1e8 ? reps * 20 : reps;
            for (int r = 0; r < shapeReps; r++)
            {
                bestOurs = Math.Min(bestOurs, Time(Ours));
                bestPeer = Math.Min(bestPeer, Time(Peer));
            }
            double diff = 0;
            for (long i = 0; i < cOurs.Length; i++)
                diff = Math.Max(diff, Math.Abs(cOurs[i] - cPeer[i]) / (1 + Math.Abs(cPeer[i])));

            double gOurs = s.Flops / bestOurs / 1e9, gPeer = s.Flops / bestPeer / 1e9, ratio = gOurs / gPeer;
            // Cache-resident shapes show the micro-kernel's rate (read against fma-peak), not SLaK's workload.
            bool slakShape = !s.Name.StartsWith("L2-", StringComparison.Ordinal);
            if (slakShape)
            {
                minRatio = Math.Min(minRatio, ratio);
                counted++;
            }
            Console.WriteLine($"| {s.Name} | {(s.TransA ? 'T' : 'N')}{(s.TransB ? 'T' : 'N')} | {s.M} | {s.N} | {s.K} | " +
                              $"{gOurs:F1} | {FmaPeak.PercentOf(gOurs, peak.Gflops)} | {gPeer:F1} | {FmaPeak.PercentOf(gPeer, peak.Gflops)} | {ratio:F2} | {diff:E1} |");
        }
        Console.WriteLine();
        Console.WriteLine($"gemm-vs-openblas: min ratio x{(counted > 0 ? minRatio : double.NaN):F2} over {counted} shapes" +
                          (counted < shapes.Count ? $" (the {shapes.Count - counted} cache-resident shapes excluded)" : ""));
        return 0;
    }

    private static double Time(Action f)
    {
        long t0 = Stopwatch.GetTimestamp();
        f();
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    private static float[] Random(Random rng, long n)
    {
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }
}
