// Benchmarks of the sparse family (cuda/kernels/sparse.cu, CpuBackend.Sparse.cs): one prune/regrow round on the
// stage-1 large-kernel weight (124, 1, 51, 51) at density 0.6, each regrowth rule. The mask is rebuilt before every
// round, so each measures one round from the same state.
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*SparseBench*'
using BenchmarkDotNet.Attributes;
using Slak.Backends;

namespace Slak.Bench.Ops;

/// <summary>One prune/regrow round per regrowth rule.</summary>
public class SparseBench : OpBench
{
    private const int K = 51;
    private Tensor _w = null!, _g = null!, _mask = null!, _keep = null!, _initial = null!;
    private long _remove;

    /// <summary>The regrowth rule of the round (a name of the internal SparseRegrowth: parameters must be
    /// public).</summary>
    [Params(nameof(SparseRegrowth.RandomExact), nameof(SparseRegrowth.RandomBernoulli), nameof(SparseRegrowth.Gradient))]
    public string Growth { get; set; } = nameof(SparseRegrowth.RandomExact);

    private SparseRegrowth Rule => Enum.Parse<SparseRegrowth>(Growth);

    [GlobalSetup]
    public void Setup()
    {
        _w = RandN(C, 1, K, K); _g = RandN(C, 1, K, K);
        var rng = new SlakRandom(7);
        var live = new float[C * K * K];
        for (int i = 0; i < live.Length; i++) live[i] = rng.NextDouble() < 0.6 ? 1f : 0f;
        _initial = Tensor.FromArray(live, [C, 1, K, K], Dev);
        _mask = Empty(C, 1, K, K); _keep = Empty(C, 1, K, K);
        _remove = (long)(0.3 * live.Sum());
    }

    [IterationSetup]
    public void ResetMask() => Backend.Copy(_initial, _mask);

    // Only gradient regrowth takes the gradient (the random rules are given none, as Masking calls them).
    [Benchmark] public long PruneRegrow() =>
        Backend.SparsePruneRegrow(_w, _mask, Rule == SparseRegrowth.Gradient ? _g : null, _keep, _remove, Rule, 12345);
}
