// Thread budget of the CPU backend. Every multi-threaded CPU kernel goes through here, so a user (or a benchmark
// comparing against a peer at the same thread count) sets one number: CpuParallel.Threads or SLAK_NUM_THREADS.
namespace Slak.Backends.Cpu;

/// <summary>Thread budget and a parallel-for helper for CPU kernels.</summary>
public static class CpuParallel
{
    private static int _threads = ReadThreads();

    /// <summary>Maximum number of threads a CPU kernel may use (default: SLAK_NUM_THREADS or the core count).</summary>
    public static int Threads
    {
        get => _threads;
        set => _threads = value >= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, "thread count must be >= 1");
    }

    /// <summary>Runs <paramref name="body"/> for every i in [from, to), on up to <see cref="Threads"/> threads;
    /// inline when one thread is allowed or the range has a single item.</summary>
    public static void For(int from, int to, Action<int> body)
    {
        if (to - from <= 1 || _threads == 1)
        {
            for (int i = from; i < to; i++) body(i);
            return;
        }
        Parallel.For(from, to, new ParallelOptions { MaxDegreeOfParallelism = _threads }, body);
    }

    private static int ReadThreads()
    {
        var env = Environment.GetEnvironmentVariable("SLAK_NUM_THREADS");
        return int.TryParse(env, out int n) && n >= 1 ? n : Environment.ProcessorCount;
    }
}
