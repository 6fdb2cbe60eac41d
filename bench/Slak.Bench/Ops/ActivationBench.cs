// Benchmarks of the activation family (cuda/kernels/activation.cu, CpuBackend.Activation.cs) on a block's MLP
// hidden activations (channels last).
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*ActivationBench*'
using BenchmarkDotNet.Attributes;

namespace Slak.Bench.Ops;

/// <summary>GELU forward and backward on the (8*56*56, 496) hidden, layer scale and bias add on (8*56*56,
/// 124).</summary>
public class ActivationBench : OpBench
{
    private Tensor _h = null!, _dh = null!, _hy = null!, _x = null!, _gamma = null!, _y = null!;

    [GlobalSetup]
    public void Setup()
    {
        _h = RandN(N * H * H, 4 * C); _dh = RandN(N * H * H, 4 * C); _hy = Empty(N * H * H, 4 * C);
        _x = RandN(N * H * H, C); _gamma = RandN(C); _y = Empty(N * H * H, C);
    }

    [Benchmark] public void Gelu() => Backend.Gelu(_h, _hy);
    [Benchmark] public void GeluBackward() => Backend.GeluBackward(_h, _dh, _hy);
    [Benchmark] public void MulLastDim() => Backend.MulLastDim(_x, _gamma, _y);
    [Benchmark] public void AddBiasLastDim() => Backend.AddBiasLastDim(_y, _gamma);
}
