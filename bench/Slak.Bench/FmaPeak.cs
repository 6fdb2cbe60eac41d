// Measures this machine's peak fp32 FMA throughput (Vector256 and Vector512, 1 thread and N threads) with
// independent accumulator chains, so that every GFLOP/s figure in bench/results can be read as a fraction of it.
//   dotnet run -c Release --project bench/Slak.Bench -- fma-peak [--threads N] [--reps N]
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Bench;

internal static class FmaPeak
{
    // ~1 ms of FMAs per burst at full speed.
    private const long Iterations = 1L << 17;

    [BenchProgram("fma-peak", "peak fp32 FMA GFLOP/s of this CPU (Vector256/Vector512, 1 and N threads)")]
    private static int Run(string[] args)
    {
        int threads = Environment.ProcessorCount, reps = 300;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--threads": threads = int.Parse(args[++i]); break;
                case "--reps": reps = int.Parse(args[++i]); break;
                default:
                    Console.Error.WriteLine($"unknown argument '{args[i]}' (use --threads N, --reps N)");
                    return 2;
            }
        }
        var rows = new List<(string, int, double)>();
        if (Fma.IsSupported)
        {
            foreach (int t in new[] { 1, threads }.Distinct())
                rows.Add(("Vector256 FMA, 12 chains", t, Measure(t, reps, Chains256, 12 * 8)));
        }
        if (Avx512F.IsSupported)
        {
            foreach (int t in new[] { 1, threads }.Distinct())
                rows.Add(("Vector512 FMA, 12 chains", t, Measure(t, reps, Chains512, 12 * 16)));
        }
        return Print(rows, threads, reps);
    }

    private static int Print(List<(string Name, int Threads, double Gflops)> rows, int threads, int reps)
    {
        Console.WriteLine($"FMA: {Fma.IsSupported}, AVX-512F: {Avx512F.IsSupported}; best of {reps} bursts of {Iterations} iterations");
        Console.WriteLine();
        Console.WriteLine("| kernel | threads | GFLOP/s | per thread |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var (name, t, g) in rows)
            Console.WriteLine($"| {name} | {t} | {g:F1} | {g / t:F1} |");
        double one = rows.Where(r => r.Threads == 1).Select(r => r.Gflops).DefaultIfEmpty(0).Max();
        double all = rows.Where(r => r.Threads == threads).Select(r => r.Gflops).DefaultIfEmpty(0).Max();
        Console.WriteLine();
        Console.WriteLine($"fma-peak: x{one:F1} GFLOP/s fp32 on 1 thread, x{all:F1} GFLOP/s on {threads} threads");
        return 0;
    }

    /// <summary>The peak a GFLOP/s figure is read against, measured at the start of the run that reports it (hosts of
    /// one machine kind differ by 2x): the same measurement as train-vs-torch's, Vector512 FMA where AVX-512F is
    /// present, else Vector256; NaN without FMA. Description: "GFLOP/s (kernel, threads, best of N bursts)".</summary>
    internal static (double Gflops, string Description) MeasureForRun(int threads, int reps = 300)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(reps);
        var (name, gflops) = Avx512F.IsSupported ? ("Vector512 FMA, 12 chains", Measure(threads, reps, Chains512, 12 * 16))
            : Fma.IsSupported ? ("Vector256 FMA, 12 chains", Measure(threads, reps, Chains256, 12 * 8))
            : ("no FMA", double.NaN);
        return (gflops, string.Create(CultureInfo.InvariantCulture,
            $"{gflops:F1} GFLOP/s ({name}, {threads} threads, best of {reps} bursts of {Iterations} iterations)"));
    }

    /// <summary>The header line every GFLOP/s-quoting bench program prints: the peak measured in this run.</summary>
    internal static string HeaderLine((double Gflops, string Description) peak) =>
        string.Create(CultureInfo.InvariantCulture, $"# FMA peak measured in this run: {peak.Description}");

    /// <summary>A rate as a percentage of the run's peak, formatted like the tables' other columns.</summary>
    internal static string PercentOf(double gflops, double peak) =>
        (100 * gflops / peak).ToString("F1", CultureInfo.InvariantCulture);

    // Short bursts (~1 ms) repeated many times on persistent threads, best burst kept (BestBurst).
    // GFLOP/s = threads * Iterations * flops per iteration / burst time.
    internal static double Measure(int threads, int reps, Func<long, float> body, int lanesTimesChains)
    {
        body(Iterations);
        double best = BestBurst.Seconds(threads, reps, warmup: 0, _ => body(Iterations));
        return threads * (double)Iterations * lanesTimesChains * 2 / best / 1e9;
    }

    // 12 independent chains cover FMA latency (4-5 cycles) x 2 pipes with margin; values stay bounded (x*a + b).
    // Compiled fully optimised on the first call: a burst of tier-0 code would measure the JIT, not the FMA pipes.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static float Chains256(long iters)
    {
        var a = Vector256.Create(0.999f);
        var b = Vector256.Create(0.001f);
        Vector256<float> c0 = a, c1 = b, c2 = a, c3 = b, c4 = a, c5 = b, c6 = a, c7 = b, c8 = a, c9 = b, c10 = a, c11 = b;
        for (long i = 0; i < iters; i++)
        {
            c0 = Fma.MultiplyAdd(c0, a, b); c1 = Fma.MultiplyAdd(c1, a, b); c2 = Fma.MultiplyAdd(c2, a, b);
            c3 = Fma.MultiplyAdd(c3, a, b); c4 = Fma.MultiplyAdd(c4, a, b); c5 = Fma.MultiplyAdd(c5, a, b);
            c6 = Fma.MultiplyAdd(c6, a, b); c7 = Fma.MultiplyAdd(c7, a, b); c8 = Fma.MultiplyAdd(c8, a, b);
            c9 = Fma.MultiplyAdd(c9, a, b); c10 = Fma.MultiplyAdd(c10, a, b); c11 = Fma.MultiplyAdd(c11, a, b);
        }
        var s = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
        return Vector256.Sum(s);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static float Chains512(long iters)
    {
        var a = Vector512.Create(0.999f);
        var b = Vector512.Create(0.001f);
        Vector512<float> c0 = a, c1 = b, c2 = a, c3 = b, c4 = a, c5 = b, c6 = a, c7 = b, c8 = a, c9 = b, c10 = a, c11 = b;
        for (long i = 0; i < iters; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(c0, a, b); c1 = Avx512F.FusedMultiplyAdd(c1, a, b);
            c2 = Avx512F.FusedMultiplyAdd(c2, a, b); c3 = Avx512F.FusedMultiplyAdd(c3, a, b);
            c4 = Avx512F.FusedMultiplyAdd(c4, a, b); c5 = Avx512F.FusedMultiplyAdd(c5, a, b);
            c6 = Avx512F.FusedMultiplyAdd(c6, a, b); c7 = Avx512F.FusedMultiplyAdd(c7, a, b);
            c8 = Avx512F.FusedMultiplyAdd(c8, a, b); c9 = Avx512F.FusedMultiplyAdd(c9, a, b);
            c10 = Avx512F.FusedMultiplyAdd(c10, a, b); c11 = Avx512F.FusedMultiplyAdd(c11, a, b);
        }
        var s = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
        return Vector512.Sum(s);
    }
}
