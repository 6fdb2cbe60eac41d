// Benchmarks of the reduce family (cuda/kernels/reduce.cu, CpuBackend.Reduce.cs) on a stage-1 map.
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*ReduceBench*'
using BenchmarkDotNet.Attributes;

namespace Slak.Bench.Ops;

/// <summary>Full sum, column sum (bias gradient), global average pooling and the channels-last permutation.</summary>
public class ReduceBench : OpBench
{
    private Tensor _x = null!, _rows = null!, _scalar = null!, _col = null!, _pool = null!, _perm = null!;

    [GlobalSetup]
    public void Setup()
    {
        _x = RandN(N, C, H, H); _rows = RandN(N * H * H, C); _scalar = Empty(1); _col = Empty(C);
        _pool = Empty(N, C); _perm = Empty(N, H, H, C);
    }

    [Benchmark] public void SumAll() => Backend.SumAll(_x, _scalar);
    [Benchmark] public void SumToLastDim() => Backend.SumToLastDim(_rows, _col);
    [Benchmark] public void GlobalAvgPool() => Backend.GlobalAvgPool(_x, _pool);
    [Benchmark] public void PermuteToChannelsLast() => Backend.Permute(_x, [0, 2, 3, 1], _perm);
}
