// The decomposed large kernel's training tail (IBackend.BatchNormSum.cs) under bf16: composed of this backend's own
// BatchNormTrain, Add and BatchNormBackward, so every operand is read and every output stored at the same precision as
// on the unfused path.
namespace Slak.Backends;

internal sealed partial class Bf16Backend
{
    /// <inheritdoc/>
    public void BatchNormTrainSum(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> biases,
                                  IReadOnlyList<Tensor> runningMeans, IReadOnlyList<Tensor> runningVars,
                                  IReadOnlyList<float> momenta, IReadOnlyList<float> eps, Tensor y,
                                  IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds) =>
        BatchNormSumComposed.Train(this, xs, weights, biases, runningMeans, runningVars, momenta, eps, y, saveMeans,
            saveInvStds);

    /// <inheritdoc/>
    public void BatchNormBackwardSum(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights,
                                     IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds, Tensor dy,
                                     IReadOnlyList<Tensor> dxs, IReadOnlyList<Tensor> dweights,
                                     IReadOnlyList<Tensor> dbiases) =>
        BatchNormSumComposed.Backward(this, xs, weights, saveMeans, saveInvStds, dy, dxs, dweights, dbiases);
}
