// Thread budget of the CPU backend. Every multi-threaded CPU kernel goes through here, so a user (or a benchmark
// comparing against a peer at the same thread count) sets one number: CpuParallel.Threads or SLAK_NUM_THREADS.
using System.Runtime.CompilerServices;

namespace Slak.Backends.Cpu;

/// <summary>Thread budget and a parallel-for helper for CPU kernels.</summary>
internal static class CpuParallel
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
    public static void For(int from, int to, Action<int> body,
        [CallerFilePath] string callerFile = "", [CallerMemberName] string caller = "")
    {
        if (to - from <= 1 || _threads == 1)
        {
            for (int i = from; i < to; i++) body(i);
            return;
        }
        if (Diagnostics.OpProfiler.Enabled)
            Diagnostics.OpProfiler.Count($"fork/join count: {Path.GetFileNameWithoutExtension(callerFile)}.{caller}");
        Parallel.For(from, to, new ParallelOptions { MaxDegreeOfParallelism = _threads }, body);
    }

    /// <summary>Work (in elements touched) below which <see cref="For(int, int, long, Action{int}, string, string)"/> runs inline:
    /// a fork/join costs about as much as a SIMD pass over this many floats, more on a busy machine.</summary>
    public const long MinParallelWork = 1 << 15;

    /// <summary>Like <see cref="For(int, int, Action{int}, string, string)"/>, but inline when <paramref name="work"/> (elements
    /// the whole loop touches) is below <see cref="MinParallelWork"/>.</summary>
    public static void For(int from, int to, long work, Action<int> body,
        [CallerFilePath] string callerFile = "", [CallerMemberName] string caller = "")
    {
        if (work < MinParallelWork)
        {
            for (int i = from; i < to; i++) body(i);
            return;
        }
        For(from, to, body, callerFile, caller);
    }

    private static int ReadThreads()
    {
        var env = Environment.GetEnvironmentVariable("SLAK_NUM_THREADS");
        return int.TryParse(env, out int n) && n >= 1 ? n : Environment.ProcessorCount;
    }
}
