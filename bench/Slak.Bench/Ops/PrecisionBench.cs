// Benchmarks of the precision family (cuda/kernels/precision.cu, CpuBackend.Precision.cs) on a stage-1 map: the bf16
// rounding that --precision bf16 applies at every stored activation and GEMM/convolution operand.
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*PrecisionBench*'
using BenchmarkDotNet.Attributes;

namespace Slak.Bench.Ops;

/// <summary>RoundToBf16 over one (8, 124, 56, 56) map, out of place and in place.</summary>
public class PrecisionBench : OpBench
{
    private Tensor _a = null!, _y = null!;

    [GlobalSetup]
    public void Setup() { _a = RandN(N, C, H, H); _y = Empty(N, C, H, H); }

    [Benchmark] public void RoundToBf16() => Backend.RoundToBf16(_a, _y);
    [Benchmark] public void RoundToBf16InPlace() => Backend.RoundToBf16(_y, _y);
}
