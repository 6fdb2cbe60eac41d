// Benchmarks of the loss family (cuda/kernels/loss.cu, CpuBackend.Loss.cs): soft-target softmax cross-entropy at
// batch 128 over 1000 classes (the ImageNet head).
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*LossBench*'
using BenchmarkDotNet.Attributes;

namespace Slak.Bench.Ops;

/// <summary>Softmax cross-entropy forward and backward.</summary>
public class LossBench : OpBench
{
    private const int Rows = 128, Classes = 1000;
    private Tensor _logits = null!, _targets = null!, _probs = null!, _loss = null!, _gradLoss = null!, _dlogits = null!;

    [GlobalSetup]
    public void Setup()
    {
        _logits = RandN(Rows, Classes); _targets = Tensor.Full([Rows, Classes], 1f / Classes, Dev);
        _probs = Empty(Rows, Classes); _loss = Empty(1); _gradLoss = Tensor.Full([1], 1f, Dev); _dlogits = Empty(Rows, Classes);
        Backend.SoftmaxCrossEntropy(_logits, _targets, _probs, _loss);
    }

    [Benchmark] public void SoftmaxCrossEntropy() => Backend.SoftmaxCrossEntropy(_logits, _targets, _probs, _loss);
    [Benchmark] public void SoftmaxCrossEntropyBackward() => Backend.SoftmaxCrossEntropyBackward(_probs, _targets, _gradLoss, _dlogits);
}
