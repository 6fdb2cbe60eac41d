// BenchmarkDotNet suite of the CPU depthwise convolution: each pass (forward with branch outputs, forward sum only,
// input gradient, weight gradient) of the decomposed operator on each SLaK-T stage shape at batch 8, dense and at
// density 0.6 through the sparse-aware path.
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*DwConvBenchmarks*'
using BenchmarkDotNet.Attributes;
using Slak.Backends.Cpu;

namespace Slak.Bench.DwConv;

/// <summary>Per-pass timings of <see cref="CpuDwConvDecomposed"/> on the SLaK-T stages.</summary>
[MemoryDiagnoser]
public class DwConvBenchmarks
{
    private DwConvProblem _p = null!;

    /// <summary>SLaK-T stage (1-4): (8,124,56,51), (8,249,28,49), (8,499,14,47), (8,998,7,13).</summary>
    [Params(1, 2, 3, 4)]
    public int Stage { get; set; }

    /// <summary>Weight density; below 1 the branches carry tap lists (sparse-aware path).</summary>
    [Params(1.0, 0.6)]
    public double Density { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var (n, c, h, m) = DwConvBench.Stages[Stage - 1];
        _p = new DwConvProblem(n, c, h, m, density: Density);
    }

    [Benchmark(Description = "forward (branch outputs + sum)")]
    public void Forward() => _p.Forward();

    [Benchmark(Description = "forward (sum only, inference)")]
    public void ForwardSum() => CpuDwConvDecomposed.Forward(_p.N, _p.C, _p.H, _p.H, _p.Branches, _p.X, [], _p.Sum);

    [Benchmark(Description = "input gradient")]
    public void BackwardData() => _p.BackwardData();

    [Benchmark(Description = "weight gradient")]
    public void BackwardFilter() => _p.BackwardFilter();
}
