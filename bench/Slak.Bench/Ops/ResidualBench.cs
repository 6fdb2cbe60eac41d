// Benchmarks of the residual family (cuda/kernels/residual.cu, CpuBackend.Residual.cs): the SLaK block's epilogue
// (layer scale, DropPath, permute back to NCHW, residual add) on a stage-1 map of SLaK-T.
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*ResidualBench*'
using BenchmarkDotNet.Attributes;

namespace Slak.Bench.Ops;

/// <summary>The fused block epilogue forward and backward on (8, 124, 56, 56) with layer scale and DropPath
/// factors.</summary>
public class ResidualBench : OpBench
{
    private Tensor _input = null!, _y = null!, _gamma = null!, _scale = null!, _out = null!, _dOut = null!, _dy = null!,
        _dgamma = null!;

    [GlobalSetup]
    public void Setup()
    {
        _input = RandN(N, C, H, H); _y = RandN(N, H, H, C); _gamma = RandN(C); _scale = RandN(N);
        _out = Empty(N, C, H, H); _dOut = RandN(N, C, H, H); _dy = Empty(N, H, H, C); _dgamma = Empty(C);
    }

    [Benchmark] public void ChannelsLastResidual() => Backend.ChannelsLastResidual(_input, _y, _gamma, _scale, _out);

    [Benchmark]
    public void ChannelsLastResidualBackward() =>
        Backend.ChannelsLastResidualBackward(_y, _gamma, _scale, _dOut, _dy, _dgamma);
}
