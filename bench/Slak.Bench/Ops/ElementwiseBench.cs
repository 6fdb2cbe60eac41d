// Benchmarks of the elementwise family (cuda/kernels/elementwise.cu, CpuBackend.Elementwise.cs) on a stage-1 map.
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*ElementwiseBench*'
using BenchmarkDotNet.Attributes;

namespace Slak.Bench.Ops;

/// <summary>Fill, add, axpy, multiply and scale over one (8, 124, 56, 56) map.</summary>
public class ElementwiseBench : OpBench
{
    private Tensor _a = null!, _b = null!, _y = null!;

    [GlobalSetup]
    public void Setup() { _a = RandN(N, C, H, H); _b = RandN(N, C, H, H); _y = Empty(N, C, H, H); }

    [Benchmark] public void Fill() => Backend.Fill(_y, 0.5f);
    [Benchmark] public void Add() => Backend.Add(_a, _b, _y);
    [Benchmark] public void AddScaled() => Backend.AddScaled(_y, _a, 0.25f);
    [Benchmark] public void Mul() => Backend.Mul(_a, _b, _y);
    [Benchmark] public void Scale() => Backend.Scale(_a, 1.5f, _y);
}
