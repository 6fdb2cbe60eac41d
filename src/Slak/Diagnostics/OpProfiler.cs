// Opt-in wall-clock profile of the training step by operator: set SLAK_PROFILE=1 and every backend call (through the
// ProfilingBackend decorator that Tensor.Backend hands out while profiling is on: forward and each backward kernel
// apart, keyed by backend method and the shape of its first tensor), every backward closure (the engine measures
// each node as "<op>.bwd": the closure's own host work), the autograd bookkeeping, the optimizer and the data
// loader's waits add their time to a table printed to stderr when the process exits. Times are exclusive
// (a nested region's time is not counted twice) and measured on the calling thread only, so a parallel kernel
// counts its wall time, not its CPU time. Off by default: then a region is one static bool test and no allocation.
// The profiler knows nothing of autograd (the backends use it, and they must not depend on the engine): the engine
// tells it when a backward pass runs (InBackward), so a backend call made there is named "bwd <method>" and the
// forward and backward uses of a shared kernel (Gemm, Mul, Permute, ...) are apart; each closure is "<op>.bwd".
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Slak.Diagnostics;

/// <summary>Per-operator wall-time accounting for profiling runs (SLAK_PROFILE=1).</summary>
internal static class OpProfiler
{
    private static readonly ConcurrentDictionary<string, Entry> Entries = new(StringComparer.Ordinal);
    [ThreadStatic] private static long _childTicks;
    [ThreadStatic] private static int _backwardDepth;
    private static long _firstTimestamp;

    static OpProfiler()
    {
        var env = Environment.GetEnvironmentVariable("SLAK_PROFILE");
        if (string.IsNullOrEmpty(env) || env == "0") return;
        _enabled = true;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Console.Error.WriteLine(Report());
    }

    /// <summary>Whether regions are measured (default: SLAK_PROFILE set to anything but "0"). When switched on
    /// by the environment, the table is printed to stderr at process exit.</summary>
    public static bool Enabled
    {
        get => _enabled;
        set => _enabled = value;
    }

    private static bool _enabled;

    /// <summary>Starts a region named <paramref name="name"/>; dispose the result to add its time.</summary>
    public static Region Measure(string name) => _enabled ? Start(name) : default;

    /// <summary>Starts the region of one backend call, named by the backend method and the shape of its first tensor
    /// argument, with the prefix "bwd " inside a backward pass; the name is only formatted when profiling
    /// is on.</summary>
    public static Region MeasureKernel(string method, Tensor shapeOf) =>
        _enabled ? Start(string.Concat(_backwardDepth > 0 ? "bwd " : "", method, " ", Shapes.Format(shapeOf.Shape))) : default;

    /// <summary>Marks the calling thread as running a backward pass until the result is disposed (the autograd engine
    /// calls it; nesting is allowed).</summary>
    public static BackwardPass InBackward()
    {
        _backwardDepth++;
        return new BackwardPass(true);
    }

    /// <summary>Starts the region of a backward closure, named "op.bwd" and the shape of its output gradient.</summary>
    public static Region MeasureBackward(string op, Tensor gradOutput) =>
        _enabled ? Start(string.Concat(op, ".bwd ", Shapes.Format(gradOutput.Shape))) : default;

    /// <summary>Counts one event named <paramref name="name"/> (no time), e.g. fork/joins of parallel loops.</summary>
    public static void Count(string name)
    {
        if (!_enabled) return;
        Interlocked.Increment(ref Entries.GetOrAdd(name, static _ => new Entry()).Calls);
    }

    private static Region Start(string name)
    {
        long now = Stopwatch.GetTimestamp();
        Interlocked.CompareExchange(ref _firstTimestamp, now, 0);
        var region = new Region(name, now, _childTicks);
        _childTicks = 0;
        return region;
    }

    /// <summary>Forgets every measurement (the next region restarts the wall clock).</summary>
    public static void Reset()
    {
        Entries.Clear();
        Interlocked.Exchange(ref _firstTimestamp, 0);
    }

    /// <summary>Snapshot of the measurements: name, calls, exclusive seconds.</summary>
    public static IReadOnlyList<(string Name, long Calls, double Seconds)> Snapshot() =>
        Entries.Select(kv => (kv.Key, kv.Value.Calls, kv.Value.Ticks / (double)Stopwatch.Frequency))
               .OrderByDescending(e => e.Item3).ToList();

    /// <summary>The profile as two Markdown tables: by operator (shapes merged) and the top entries by operator and
    /// shape, each with its share of the wall time since the first region.</summary>
    public static string Report(int topShapes = 40)
    {
        var snap = Snapshot();
        long first = Interlocked.Read(ref _firstTimestamp);
        double wall = first == 0 ? 0 : (Stopwatch.GetTimestamp() - first) / (double)Stopwatch.Frequency;
        double measured = snap.Sum(e => e.Seconds);
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"## SLAK_PROFILE: {measured:F2} s in regions, {wall:F2} s wall since the first region");
        sb.AppendLine();
        sb.AppendLine("| operator | calls | seconds | % of wall |");
        sb.AppendLine("|---|---:|---:|---:|");
        foreach (var g in snap.GroupBy(e => OpOf(e.Name)).Select(g => (Name: g.Key, Calls: g.Sum(e => e.Calls), Seconds: g.Sum(e => e.Seconds)))
                              .OrderByDescending(g => g.Seconds))
            sb.AppendLine(inv, $"| {g.Name} | {g.Calls} | {g.Seconds:F3} | {Pct(g.Seconds, wall)} |");
        sb.AppendLine(inv, $"| (outside regions) | | {Math.Max(0, wall - measured):F3} | {Pct(Math.Max(0, wall - measured), wall)} |");
        sb.AppendLine();
        sb.AppendLine("| operator and input shape | calls | seconds | % of wall |");
        sb.AppendLine("|---|---:|---:|---:|");
        foreach (var e in snap.Take(topShapes))
            sb.AppendLine(inv, $"| {e.Name} | {e.Calls} | {e.Seconds:F3} | {Pct(e.Seconds, wall)} |");
        return sb.ToString();
    }

    private static string OpOf(string name)
    {
        int paren = name.IndexOf(" (", StringComparison.Ordinal);
        return paren < 0 ? name : name[..paren];
    }

    private static string Pct(double part, double whole) =>
        whole <= 0 ? "-" : (100 * part / whole).ToString("F1", CultureInfo.InvariantCulture);

    private sealed class Entry
    {
        public long Calls;
        public long Ticks;
    }

    /// <summary>A backward pass of the calling thread (see <see cref="InBackward"/>); disposing it ends it.</summary>
    public readonly struct BackwardPass : IDisposable
    {
        private readonly bool _open;

        internal BackwardPass(bool open) => _open = open;

        /// <summary>Ends the backward pass.</summary>
        public void Dispose()
        {
            if (_open) _backwardDepth--;
        }
    }

    /// <summary>An open region; disposing it records its exclusive time.</summary>
    public readonly struct Region : IDisposable
    {
        private readonly string? _name;
        private readonly long _start;
        private readonly long _outerChildTicks;

        internal Region(string name, long start, long outerChildTicks)
        {
            _name = name;
            _start = start;
            _outerChildTicks = outerChildTicks;
        }

        /// <summary>Ends the region.</summary>
        public void Dispose()
        {
            if (_name is null) return;
            long elapsed = Stopwatch.GetTimestamp() - _start;
            var e = Entries.GetOrAdd(_name, static _ => new Entry());
            Interlocked.Increment(ref e.Calls);
            Interlocked.Add(ref e.Ticks, elapsed - _childTicks);
            _childTicks = _outerChildTicks + elapsed;
        }
    }
}
