// What a case runs against: the device backend, the CPU backend, the options, and one Check that runs an operation on
// both (device outputs poisoned), compares, verifies on the emulator that the row's kernel was really launched, and
// times the device (warm-up, then the median of synchronized repeats). Under --blocks sample the device run executes
// only the block sample of the sampled kernels (IBlockSampler) and is not timed. Every tensor a case creates through
// the context is disposed when the case ends, whether it passed, failed or threw.
using System.Diagnostics;
using Slak.Backends;
using Slak.Backends.Cpu;
using Slak.Backends.Cuda;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;

namespace Slak.GpuCheck;

/// <summary>Runs one case's operation on both backends and produces its row.</summary>
internal sealed class CheckContext : IDisposable
{
    private readonly List<Tensor> _owned = [];
    private readonly IBlockSampler _sampler;
    private static float[] s_poison = [];

    public CheckContext(CudaBackend gpu, CheckOptions options, GpuCase current, IBlockSampler sampler, SlakRandom rng)
    {
        Gpu = gpu;
        Options = options;
        Case = current;
        _sampler = sampler;
        Rng = rng;
    }

    /// <summary>Seconds of timed repeats one row may take (see <see cref="Time"/>).</summary>
    public const double TimingBudgetSeconds = 1.5;

    public CudaBackend Gpu { get; }
    public static CpuBackend Cpu => CpuBackend.Instance;
    public CheckOptions Options { get; }
    public GpuCase Case { get; }
    public SlakRandom Rng { get; }
    public bool Full => Options.Full;

    /// <summary>The row produced by <see cref="Check"/> (null until it ran).</summary>
    public RowResult? Result { get; set; }

    /// <summary>Lines printed while sampling (the seed and the sampled blocks per launch), for the log.</summary>
    public List<string> SampleLog { get; } = [];

    /// <summary>The tensor of <paramref name="pair"/> that lives on <paramref name="be"/>.</summary>
    public static Tensor T((Tensor Cpu, Tensor Gpu) pair, IBackend be) => be is CpuBackend ? pair.Cpu : pair.Gpu;

    /// <summary>Normal(0, 1) values on both backends (drawn in parallel, 64k values per generator seeded from
    /// <see cref="Rng"/>: full-scale inputs are billions of values in all).</summary>
    public (Tensor Cpu, Tensor Gpu) Random(params int[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var data = new float[n];
        ulong seed = Rng.NextUInt64();
        const int chunk = 1 << 16;
        Parallel.For(0, (int)((n + chunk - 1) / chunk), c =>
        {
            var r = new SlakRandom(seed + (ulong)c * 0x9E3779B97F4A7C15UL);
            long end = Math.Min(n, (long)(c + 1) * chunk);
            for (long i = (long)c * chunk; i < end; i++) data[i] = r.NextNormal();
        });
        return FromArray(data, shape);
    }

    /// <summary>The same values on both backends.</summary>
    public (Tensor Cpu, Tensor Gpu) FromArray(float[] data, params int[] shape) =>
        (Own(Tensor.FromArray(data, shape, Device.Cpu)), Own(Tensor.FromArray(data, shape, Gpu.Device)));

    /// <summary>A 0/1 mask with about <paramref name="density"/> ones.</summary>
    public float[] Mask(long n, double density)
    {
        var m = new float[n];
        for (long i = 0; i < n; i++) m[i] = Rng.NextDouble() < density ? 1f : 0f;
        return m;
    }

    /// <summary>Registers a tensor for disposal at the end of the case.</summary>
    public Tensor Own(Tensor t)
    {
        _owned.Add(t);
        return t;
    }

    /// <summary>Runs <paramref name="run"/> on the CPU and on the device (outputs of shapes <paramref name="outputs"/>
    /// poisoned; or, where <paramref name="initial"/>[k] is not null, set to those values for an in-place update),
    /// compares every output, then times the device run. Sets <see cref="Result"/>.</summary>
    public void Check(string shape, double flops, double bytes, int[][] outputs, Action<IBackend, Tensor[]> run,
                      double atol = 1e-4, double rtol = 1e-3, float[]?[]? initial = null)
    {
        bool sampled = Options.Sample && Case.Sampling != SampleHandling.Whole;
        var co = new Tensor[outputs.Length];
        var go = new Tensor[outputs.Length];
        for (int k = 0; k < outputs.Length; k++)
        {
            float[]? init = initial is not null && k < initial.Length ? initial[k] : null;
            co[k] = Own(init is null ? Tensor.Full(outputs[k], float.NaN, Device.Cpu) : Tensor.FromArray(init, outputs[k], Device.Cpu));
            go[k] = Own(Tensor.Empty(outputs[k], Gpu.Device));
            Gpu.CopyFromHost(init is null ? PoisonOf(go[k].Numel) : init, go[k]);
        }

        run(Cpu, co);
        var before = LaunchCounts();
        Func<long, bool>?[] include = new Func<long, bool>?[outputs.Length];
        if (sampled)
        {
            using var scope = _sampler.Scope(Choose);
            run(Gpu, go);
            for (int k = 0; k < outputs.Length; k++) include[k] = IncludeFor(k, go[k].Numel);
        }
        else
        {
            run(Gpu, go);
        }

        Gpu.Gpu.Synchronize();
        VerifyLaunched(before);

        double maxAbs = 0, maxRel = 0;
        long compared = 0;
        var problems = new List<string>();
        for (int k = 0; k < outputs.Length; k++)
        {
            float[]? init = initial is not null && k < initial.Length ? initial[k] : null;
            var r = OutputCompare.Compare(co[k].Data, go[k].ToArray(), init, sampled, atol, rtol, include[k]);
            maxAbs = Math.Max(maxAbs, r.MaxAbs);
            maxRel = Math.Max(maxRel, r.MaxRel);
            compared += r.Compared;
            if (!r.Ok(sampled))
            {
                problems.Add(r.Bad > 0
                    ? $"output {k}: {r.Bad} of {r.Compared} elements differ (first at {r.FirstBad}: expected {co[k].Data[(int)r.FirstBad]}, got {go[k].ToArray()[r.FirstBad]})"
                    : r.Unwritten > 0 ? $"output {k}: {r.Unwritten} elements never written (first at {r.FirstBad})"
                    : $"output {k}: no element written by the sampled blocks");
            }
        }

        double ms = double.NaN;
        if (!Options.Sample && problems.Count == 0)
        {
            ms = Time(() => run(Gpu, go));
        }

        string note = string.Join("; ", problems.Concat(Options.Sample ? [SampleSummary(sampled)] : []));
        Result = new RowResult(Case.Name, Case.Op, problems.Count == 0 ? RowStatus.Ok : RowStatus.Fail)
        {
            Shape = shape, MaxAbs = maxAbs, MaxRel = maxRel, Compared = compared, Ms = ms, Flops = flops,
            Bytes = bytes, Note = note,
        };
    }

    /// <summary>Median wall time of <paramref name="repeats"/> (default <see cref="CheckOptions.Repeats"/>)
    /// synchronized runs after one warm-up; fewer (at least 3) when the warm-up shows they would take more than
    /// <see cref="TimingBudgetSeconds"/> (slow fallback kernels must not eat the GPU window).</summary>
    public double Time(Action run, int? repeats = null)
    {
        var warm = Stopwatch.StartNew();
        run();
        Gpu.Gpu.Synchronize();
        double first = Math.Max(warm.Elapsed.TotalSeconds, 1e-6);
        int wanted = Math.Max(1, repeats ?? Options.Repeats);
        int affordable = (int)Math.Max(3, TimingBudgetSeconds / first);
        var times = new double[Math.Min(wanted, affordable)];
        for (int r = 0; r < times.Length; r++)
        {
            var sw = Stopwatch.StartNew();
            run();
            Gpu.Gpu.Synchronize();
            times[r] = sw.Elapsed.TotalMilliseconds;
        }

        Array.Sort(times);
        return times[times.Length / 2];
    }

    /// <summary>True when the device still works (a sticky CUDA error makes every later call fail).</summary>
    public static bool DeviceUsable(CudaBackend gpu, out string problem)
    {
        try
        {
            gpu.Gpu.Synchronize();
            using var t = Tensor.Full([4], 2f, gpu.Device);
            float[] back = t.ToArray();
            problem = back.All(v => v == 2f) ? "" : "a fill of 2.0 read back wrong values";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            problem = $"{e.GetType().Name}: {e.Message}";
        }

        return problem.Length == 0;
    }

    public void Dispose()
    {
        foreach (var t in _owned)
        {
            if (!t.IsDisposed) t.Dispose();
        }

        _owned.Clear();
    }

    // ---- sampling ----

    private readonly Dictionary<string, Dim3> _sampledGrids = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<uint>> _sampledColumns = new(StringComparer.Ordinal);
    private long _sampledBlocks;
    private long _totalBlocks;

    private IReadOnlyList<Dim3>? Choose(string kernel, Dim3 grid)
    {
        if (!Case.Sampled.Contains(kernel)) return null;
        IReadOnlyList<Dim3> blocks = Case.Sampling == SampleHandling.Columns
            ? BlockSample.Columns(grid, Options.EdgeBlocks, Options.InteriorBlocks, Options.Seed)
            : BlockSample.Standard(grid, Options.EdgeBlocks, Options.InteriorBlocks, Options.Seed);
        _sampledGrids[kernel] = grid;
        if (Case.Sampling == SampleHandling.Columns)
        {
            _sampledColumns[kernel] = blocks.Select(b => b.X).ToHashSet();
        }

        _sampledBlocks += blocks.Count;
        _totalBlocks += grid.Count;
        SampleLog.Add($"{kernel} grid ({grid.X},{grid.Y},{grid.Z}): {blocks.Count} blocks, seed 0x{Options.Seed:x}");
        return blocks;
    }

    private Func<long, bool>? IncludeFor(int output, long numel)
    {
        if (Case.Sampling != SampleHandling.Columns || Case.Owner is null) return null;
        // The sampled kernel that ran (the row's kernel, or its fallback where the launcher chose that).
        string? kernel = Case.Sampled.FirstOrDefault(k => _sampledGrids.ContainsKey(k));
        if (kernel is null || !_sampledGrids.TryGetValue(kernel, out Dim3 grid) || !_sampledColumns.TryGetValue(kernel, out var xs))
        {
            return _ => false;
        }

        var owner = Case.Owner;
        return i => xs.Contains((uint)owner(output, i, grid, numel));
    }

    private string SampleSummary(bool sampled) =>
        !sampled ? "whole grids (" + (Case.SampleNote.Length > 0 ? Case.SampleNote : "not sampled") + ")"
        : $"sampled {_sampledBlocks} of {_totalBlocks} blocks of {string.Join(", ", Case.Sampled)}, seed 0x{Options.Seed:x}" +
          (Case.SampleNote.Length > 0 ? $" ({Case.SampleNote})" : "");

    // ---- launch verification (emulator only: the driver keeps no per-kernel counts) ----

    private Dictionary<string, long>? LaunchCounts() =>
        Gpu.Gpu.IsEmulated ? new Dictionary<string, long>(EmulatedDevice.LaunchCounts, StringComparer.Ordinal) : null;

    private void VerifyLaunched(Dictionary<string, long>? before)
    {
        if (before is null || !Case.Name.EndsWith("_kernel", StringComparison.Ordinal)) return;
        var launched = EmulatedDevice.LaunchCounts
            .Where(kv => kv.Value > before.GetValueOrDefault(kv.Key))
            .Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
        if (!launched.Contains(Case.Name) && !(Case.FallbackKernel is { } fallback && launched.Contains(fallback)))
        {
            throw new InvalidOperationException(
                $"the case did not launch {Case.Name} (it launched: {(launched.Count == 0 ? "nothing" : string.Join(", ", launched))})");
        }
    }

    private static ReadOnlySpan<float> PoisonOf(long n)
    {
        if (s_poison.Length < n)
        {
            s_poison = new float[n];
            Array.Fill(s_poison, OutputCompare.Poison);
        }

        return s_poison.AsSpan(0, checked((int)n));
    }
}
