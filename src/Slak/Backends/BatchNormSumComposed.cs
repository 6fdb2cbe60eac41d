// IBackend.BatchNormSum.cs composed of a backend's own BatchNormTrain, Add and BatchNormBackward, in the order of the
// unfused model: BN_0, BN_1, Add, BN_2, Add ... forward, and each branch's BatchNorm backward on the shared gradient.
// For backends without a fused kernel (CUDA, bf16); the same calls as the unfused path, so the same results.
namespace Slak.Backends;

internal static class BatchNormSumComposed
{
    /// <summary><see cref="IBackend.BatchNormTrainSum"/> as per-branch BatchNormTrain calls added into y.</summary>
    public static void Train(IBackend be, IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights,
                             IReadOnlyList<Tensor> biases, IReadOnlyList<Tensor> runningMeans,
                             IReadOnlyList<Tensor> runningVars, IReadOnlyList<float> momenta, IReadOnlyList<float> eps,
                             Tensor y, IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds)
    {
        be.BatchNormTrain(xs[0], weights[0], biases[0], runningMeans[0], runningVars[0], momenta[0], eps[0], y,
            saveMeans[0], saveInvStds[0]);
        if (xs.Count == 1) return;
        using var branch = Tensor.Empty(y.ShapeArray, y.Device);
        for (int b = 1; b < xs.Count; b++)
        {
            be.BatchNormTrain(xs[b], weights[b], biases[b], runningMeans[b], runningVars[b], momenta[b], eps[b], branch,
                saveMeans[b], saveInvStds[b]);
            be.Add(y, branch, y);
        }
    }

    /// <summary><see cref="IBackend.BatchNormBackwardSum"/> as one BatchNormBackward per branch.</summary>
    public static void Backward(IBackend be, IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights,
                                IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds, Tensor dy,
                                IReadOnlyList<Tensor> dxs, IReadOnlyList<Tensor> dweights, IReadOnlyList<Tensor> dbiases)
    {
        for (int b = 0; b < xs.Count; b++)
            be.BatchNormBackward(xs[b], weights[b], saveMeans[b], saveInvStds[b], dy, dxs[b], dweights[b], dbiases[b]);
    }
}
