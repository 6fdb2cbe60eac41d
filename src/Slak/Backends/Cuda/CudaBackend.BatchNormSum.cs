// The decomposed large kernel's training tail (IBackend.BatchNormSum.cs) on CUDA, composed of the BatchNorm and Add
// kernels in the order the unfused model runs them (one temporary per branch after the first); a fused kernel is not
// written yet.
namespace Slak.Backends.Cuda;

partial class CudaBackend // accessibility and sealing are declared in CudaBackend.cs
{
    /// <inheritdoc />
    public void BatchNormTrainSum(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> biases,
                                  IReadOnlyList<Tensor> runningMeans, IReadOnlyList<Tensor> runningVars,
                                  IReadOnlyList<float> momenta, IReadOnlyList<float> eps, Tensor y,
                                  IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds) =>
        BatchNormSumComposed.Train(this, xs, weights, biases, runningMeans, runningVars, momenta, eps, y, saveMeans,
            saveInvStds);

    /// <inheritdoc />
    public void BatchNormBackwardSum(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights,
                                     IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds, Tensor dy,
                                     IReadOnlyList<Tensor> dxs, IReadOnlyList<Tensor> dweights,
                                     IReadOnlyList<Tensor> dbiases) =>
        BatchNormSumComposed.Backward(this, xs, weights, saveMeans, saveInvStds, dy, dxs, dweights, dbiases);
}
