// Shared pieces of the depthwise-convolution comparison programs: SLaK-T stage shapes, a decomposed operator with
// random weights and masks, wall-clock timing (median of repeats after a warm-up), and the PyTorch peer process.
using System.Diagnostics;
using System.Globalization;
using Slak.Backends.Cpu;

namespace Slak.Bench.DwConv;

/// <summary>One decomposed depthwise problem: (N, C, H, W) and branches M x S, S x M (and S x S).</summary>
internal sealed class DwConvProblem
{
    public DwConvProblem(int n, int c, int h, int m, int s = 5, bool square = true, double density = 1.0, int seed = 1)
    {
        N = n; C = c; H = h; M = m; S = s;
        var rng = new Random(seed);
        X = Rand(rng, n * c * h * h);
        var sizes = square ? new[] { (m, s), (s, m), (s, s) } : new[] { (m, s), (s, m) };
        foreach (var (kh, kw) in sizes)
        {
            var w = Rand(rng, c * kh * kw);
            float[] mask = [];
            CpuDwConvTapList? taps = null;
            if (density < 1.0)
            {
                mask = new float[w.Length];
                for (int i = 0; i < mask.Length; i++) mask[i] = rng.NextDouble() < density ? 1f : 0f;
                taps = CpuDwConvTapList.FromMask(c, kh, kw, mask, 1);
            }
            Branches.Add(new CpuDwConvBranch(kh, kw, w, mask, taps));
            Ys.Add(new float[X.Length]);
            Dys.Add(Rand(rng, X.Length));
            Dws.Add(new float[w.Length]);
        }
        Sum = new float[X.Length];
        Dx = new float[X.Length];
    }

    public int N { get; }
    public int C { get; }
    public int H { get; }
    public int M { get; }
    public int S { get; }
    public float[] X { get; }
    public float[] Sum { get; }
    public float[] Dx { get; }
    public List<CpuDwConvBranch> Branches { get; } = [];
    public List<Memory<float>> Ys { get; } = [];
    public List<ReadOnlyMemory<float>> Dys { get; } = [];
    public List<Memory<float>> Dws { get; } = [];

    /// <summary>FLOPs (2 per multiply-add) of one pass over all branches, counting only taps inside the
    /// image.</summary>
    public double ValidFlops => Branches.Sum(b => 2.0 * new CpuDwConvShape(N, C, H, H, b.Kh, b.Kw).ValidMacs());

    /// <summary>Every output: the branch outputs and their sum.</summary>
    public void Forward() => CpuDwConvDecomposed.Forward(N, C, H, H, Branches, X, Ys, Sum);

    /// <summary>The training forward: the branch outputs only (each feeds its own BatchNorm).</summary>
    public void ForwardBranches() =>
        CpuDwConvDecomposed.Forward(N, C, H, H, Branches, X, Ys, Span<float>.Empty);

    /// <summary>The sum of the branches only (inference; the function PyTorch's three conv2d calls compute).</summary>
    public void ForwardSum() => CpuDwConvDecomposed.Forward(N, C, H, H, Branches, X, [], Sum);

    public void BackwardData() => CpuDwConvDecomposed.BackwardData(N, C, H, H, Branches, Dys, Dx);

    /// <summary>Weight gradients skip masked taps (true: the sparse-aware wgrad) or compute all taps.</summary>
    public bool SkipMasked { get; set; } = true;

    public void BackwardFilter() =>
        CpuDwConvDecomposed.BackwardFilter(N, C, H, H, Branches, X, Dys, Dws, SkipMasked);

    /// <summary>One training step of the operator: branch outputs, input gradient, weight gradients.</summary>
    public void ForwardBackward()
    {
        ForwardBranches();
        BackwardData();
        BackwardFilter();
    }

    private static float[] Rand(Random rng, int len)
    {
        var a = new float[len];
        for (int i = 0; i < len; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }
}

internal static class DwConvBench
{
    /// <summary>SLaK-T stage shapes at batch 8: (N, C, H = W, M).</summary>
    public static readonly (int N, int C, int H, int M)[] Stages =
        [(8, 124, 56, 51), (8, 249, 28, 49), (8, 499, 14, 47), (8, 998, 7, 13)];

    /// <summary>When set, TimeMs reports process CPU time (all threads) instead of wall time: a load-independent
    /// measure of work on a shared machine (divide by the thread count for an unloaded wall-time estimate).</summary>
    public static bool CpuTime { get; set; }

    /// <summary>Median time in ms of <paramref name="reps"/> runs after one warm-up run.</summary>
    public static double TimeMs(Action action, int reps)
    {
        action();
        var times = new double[reps];
        var proc = Process.GetCurrentProcess();
        for (int i = 0; i < reps; i++)
        {
            proc.Refresh();
            var c0 = proc.TotalProcessorTime;
            long t0 = Stopwatch.GetTimestamp();
            action();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            if (CpuTime)
            {
                proc.Refresh();
                times[i] = (proc.TotalProcessorTime - c0).TotalMilliseconds;
            }
        }
        Array.Sort(times);
        return times[reps / 2];
    }

    /// <summary>Best (minimum) wall time in ms of each action over <paramref name="reps"/> rounds in which the
    /// actions run alternately, after one warm-up round. On a shared machine interference only adds time, so the
    /// minimum of interleaved runs compares variants more fairly than medians taken at different moments.</summary>
    public static double[] BestOfInterleavedMs(int reps, params Action[] actions)
    {
        foreach (var a in actions) a();
        var best = Enumerable.Repeat(double.MaxValue, actions.Length).ToArray();
        for (int r = 0; r < reps; r++)
        {
            for (int i = 0; i < actions.Length; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                actions[i]();
                best[i] = Math.Min(best[i], Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
        }
        return best;
    }

    public static int ParseInt(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    public static string Machine()
    {
        string model = "unknown CPU";
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal))
                {
                    model = line.Split(':', 2)[1].Trim();
                    break;
                }
        }
        catch (IOException) { }
        return $"{model}, {Environment.ProcessorCount} logical CPUs, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC";
    }

    /// <summary>Runs bench/torch/dwconv_peer.py with /usr/bin/python3; returns its stdout lines, or null (with a
    /// message on stderr) when PyTorch is not available.</summary>
    public static string[]? RunTorch(string args)
    {
        string script = FindScript();
        var psi = new ProcessStartInfo("/usr/bin/python3", $"\"{script}\" {args}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        try
        {
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
            {
                Console.Error.WriteLine($"torch peer failed (exit {p.ExitCode}): {stderr.Result}");
                return null;
            }
            return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.Error.WriteLine($"cannot start /usr/bin/python3: {e.Message}");
            return null;
        }
    }

    private static string FindScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string p = Path.Combine(dir.FullName, "bench", "torch", "dwconv_peer.py");
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException("bench/torch/dwconv_peer.py not found above " + AppContext.BaseDirectory);
    }
}
