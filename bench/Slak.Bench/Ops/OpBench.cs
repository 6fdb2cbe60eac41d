// Shared setup of the per-family operator benchmarks (ActivationBench, ElementwiseBench, LossBench, NormBench,
// OptimBench, ReduceBench, SparseBench): the backend of the chosen device and random tensors at SLaK-T stage-1 sizes
// (batch 8 on the CPU: the (8, 124, 56, 56) maps and the (8*56*56, 496) MLP hidden of a block). Each benchmark calls
// one backend kernel family (the families of docs/layout.md), as the DwConv and Gemm suites do for theirs.
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*NormBench*'
using BenchmarkDotNet.Attributes;
using Slak.Backends;

namespace Slak.Bench.Ops;

/// <summary>Base of the per-family operator benchmarks: device, backend and random inputs.</summary>
public abstract class OpBench
{
    /// <summary>Batch, channels and spatial size of the SLaK-T stage-1 maps the benchmarks run on.</summary>
    protected const int N = 8, C = 124, H = 56;

    private readonly SlakRandom _rng = new(2024);

    /// <summary>The device the kernels run on ("cpu"; "cuda" on a machine with a GPU).</summary>
    [Params("cpu")]
    public string DeviceName { get; set; } = "cpu";

    /// <summary>The opened device.</summary>
    protected Device Dev => Device.Parse(DeviceName);

    /// <summary>The device's backend.</summary>
    internal IBackend Backend => BackendRegistry.For(Dev);

    /// <summary>A tensor of standard normal samples on the device.</summary>
    protected Tensor RandN(params int[] shape) => Tensor.RandN(_rng, shape, Dev);

    /// <summary>An uninitialised tensor on the device.</summary>
    protected Tensor Empty(params int[] shape) => Tensor.Empty(shape, Dev);
}
