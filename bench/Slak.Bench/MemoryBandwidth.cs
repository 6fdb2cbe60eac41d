// Measures this machine's read bandwidth from cache and from DRAM, so that the memory-bound rows of train-vs-torch and
// the norm benches can be read as fractions of it (the bandwidth counterpart of FmaPeak).
//   dotnet run -c Release --project bench/Slak.Bench -- memory-bandwidth [--threads N]
//
// The summing kernel is compiled fully optimised on its first call (AggressiveOptimization). Without that, .NET runs
// a new method's tier-0 code until ~30 calls and a 100 ms delay have passed, and a measurement of a few milliseconds
// never leaves it: the figures this program replaces (train-vs-torch before 2026-12-06) read 55 GB/s "from cache" on
// 2 threads, about a third of what the optimised loop reads from L2 on one.
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Slak.Bench;

internal static class MemoryBandwidth
{
    /// <summary>Bytes per thread of the cache measurement: L2-resident on this machine kind (1 MiB of L2 per core),
    /// about the size of one image's activations in the training step's stage 1.</summary>
    internal const int CacheBytesPerThread = 256 << 10;

    /// <summary>Bytes per thread of the DRAM measurement: far beyond any last-level cache of this machine
    /// kind.</summary>
    internal const int DramBytesPerThread = 64 << 20;

    [BenchProgram("memory-bandwidth", "read bandwidth per buffer size (L1 ... DRAM), 1 and N threads")]
    private static int Run(string[] args)
    {
        int threads = Environment.ProcessorCount;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--threads" && i + 1 < args.Length) threads = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else
            {
                Console.Error.WriteLine($"unknown argument '{args[i]}' (use --threads N)");
                return 2;
            }
        }
        Console.WriteLine($"# memory-bandwidth: {RunInfo.CpuModel()}, load {RunInfo.LoadAverage()}");
        Console.WriteLine("| bytes per thread | 1 thread GB/s | " + threads + " threads GB/s |");
        Console.WriteLine("|---:|---:|---:|");
        foreach (int kib in new[] { 16, 128, 256, 512, 1024, 4096, 16384, 65536 })
        {
            int reps = kib >= 16384 ? 10 : 100;
            Console.WriteLine($"| {kib} KiB | {Read(1, kib << 10, reps):F1} | {Read(threads, kib << 10, reps):F1} |");
        }
        return 0;
    }

    /// <summary>Bytes per thread of the last-level-cache measurement: beyond L2 (1 MiB per core), within the L3 that a
    /// few-MB tensor of the training step is read from when the operator before it has just written it.</summary>
    internal const int L3BytesPerThread = 4 << 20;

    /// <summary>The read bandwidths on <paramref name="threads"/> threads from L2, L3 and DRAM, in GB/s.</summary>
    internal static (double L2, double L3, double Dram) MeasureLevels(int threads, bool quick) =>
        (Read(threads, CacheBytesPerThread, quick ? 20 : 200), Read(threads, L3BytesPerThread, quick ? 5 : 40),
         Read(threads, DramBytesPerThread, quick ? 3 : 15));

    /// <summary>The cache and DRAM read bandwidths on <paramref name="threads"/> threads, in GB/s.</summary>
    internal static (double Cache, double Dram) MeasureForRun(int threads, bool quick) =>
        (Read(threads, CacheBytesPerThread, quick ? 20 : 200), Read(threads, DramBytesPerThread, quick ? 3 : 15));

    /// <summary>Read bandwidth in GB/s: every thread sums its own buffer of <paramref name="bytesPerThread"/> bytes,
    /// in bursts of at least 4 MiB per thread; the best of <paramref name="reps"/> bursts (BestBurst) after one
    /// warm-up burst that brings the buffers into cache.</summary>
    internal static double Read(int threads, int bytesPerThread, int reps)
    {
        int n = bytesPerThread / sizeof(float);
        var buffers = Enumerable.Range(0, threads).Select(_ => Enumerable.Repeat(1f, n).ToArray()).ToArray();
        int passes = Math.Max(1, (4 << 20) / bytesPerThread);
        double best = BestBurst.Seconds(threads, reps, warmup: 1, id =>
        {
            float local = 0;
            for (int p = 0; p < passes; p++) local += Sum(buffers[id]);
            return local;
        });
        return (double)threads * passes * bytesPerThread / best / 1e9;
    }

    // 8 independent accumulators of the widest vector: enough loads in flight that the memory, not the add latency,
    // sets the pace.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Sum(float[] a)
    {
        if (!Vector512.IsHardwareAccelerated) return Sum256(a);
        var s0 = Vector512<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0; var s4 = s0; var s5 = s0; var s6 = s0;
        var s7 = s0;
        ref float r = ref a[0];
        int i = 0;
        for (; i + 128 <= a.Length; i += 128)
        {
            s0 += Vector512.LoadUnsafe(ref r, (nuint)i);
            s1 += Vector512.LoadUnsafe(ref r, (nuint)(i + 16));
            s2 += Vector512.LoadUnsafe(ref r, (nuint)(i + 32));
            s3 += Vector512.LoadUnsafe(ref r, (nuint)(i + 48));
            s4 += Vector512.LoadUnsafe(ref r, (nuint)(i + 64));
            s5 += Vector512.LoadUnsafe(ref r, (nuint)(i + 80));
            s6 += Vector512.LoadUnsafe(ref r, (nuint)(i + 96));
            s7 += Vector512.LoadUnsafe(ref r, (nuint)(i + 112));
        }
        float s = Vector512.Sum((s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7));
        for (; i < a.Length; i++) s += a[i];
        return s;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Sum256(float[] a)
    {
        var s0 = Vector256<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0; var s4 = s0; var s5 = s0; var s6 = s0;
        var s7 = s0;
        ref float r = ref a[0];
        int i = 0;
        for (; i + 64 <= a.Length; i += 64)
        {
            s0 += Vector256.LoadUnsafe(ref r, (nuint)i);
            s1 += Vector256.LoadUnsafe(ref r, (nuint)(i + 8));
            s2 += Vector256.LoadUnsafe(ref r, (nuint)(i + 16));
            s3 += Vector256.LoadUnsafe(ref r, (nuint)(i + 24));
            s4 += Vector256.LoadUnsafe(ref r, (nuint)(i + 32));
            s5 += Vector256.LoadUnsafe(ref r, (nuint)(i + 40));
            s6 += Vector256.LoadUnsafe(ref r, (nuint)(i + 48));
            s7 += Vector256.LoadUnsafe(ref r, (nuint)(i + 56));
        }
        float s = Vector256.Sum((s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7));
        for (; i < a.Length; i++) s += a[i];
        return s;
    }
}
