// Benchmarks of the optim family (cuda/kernels/optim.cu, CpuBackend.Optim.cs): one AdamW step on a stage-1 MLP
// weight (496 x 124), dense and masked with the sparse-training moment rule.
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*OptimBench*'
using BenchmarkDotNet.Attributes;
using Slak.Backends;

namespace Slak.Bench.Ops;

/// <summary>AdamW steps on a dense and on a masked parameter.</summary>
public class OptimBench : OpBench
{
    private Tensor _p = null!, _g = null!, _m = null!, _v = null!, _mask = null!;
    private readonly AdamWHyper _hyper = new(4e-3f, 0.9f, 0.999f, 1e-8f, 0.05f, 10);

    [GlobalSetup]
    public void Setup()
    {
        _p = RandN(4 * C, C); _g = RandN(4 * C, C);
        _m = Tensor.Zeros([4 * C, C], Dev); _v = Tensor.Zeros([4 * C, C], Dev);
        _mask = Tensor.Full([4 * C, C], 1f, Dev);
    }

    [Benchmark] public void AdamW() => Backend.AdamWStep(_p, _g, _m, _v, null, _hyper, maskMoments: false);
    [Benchmark] public void AdamWMasked() => Backend.AdamWStep(_p, _g, _m, _v, _mask, _hyper, maskMoments: true);
}
