// The tail of SLaK's decomposed large-kernel convolution in training: every branch output goes through its own
// training BatchNorm and the normalized branches are summed, y = sum_b BN_b(x_b). As one operator the sum is written
// once (no per-branch outputs, no adds), and the backward reads the shared incoming gradient once for the sums of all
// branches. Each branch keeps exactly the semantics of BatchNormTrain / BatchNormBackward (batch statistics, running
// statistics updated with the branch's momentum and unbiased variance, its eps); backends without a fused kernel
// compose those calls and Add, in the order the unfused model runs them.
namespace Slak.Backends;

internal partial interface IBackend
{
    /// <summary>Training forward of y = sum_b BN_b(x_b), the sum taken in branch order ((BN_0 + BN_1) + BN_2 ...):
    /// xs[b] (N, C, H, W) all of one shape, weights/biases/runningMeans/runningVars/saveMeans/saveInvStds[b] (C),
    /// momenta[b] and eps[b] per branch; y (N, C, H, W) is overwritten, the running statistics updated in place and
    /// each branch's batch mean and 1 / sqrt(var + eps) saved as BatchNormTrain saves them.</summary>
    void BatchNormTrainSum(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> biases,
                           IReadOnlyList<Tensor> runningMeans, IReadOnlyList<Tensor> runningVars,
                           IReadOnlyList<float> momenta, IReadOnlyList<float> eps, Tensor y,
                           IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds);

    /// <summary>Backward of <see cref="BatchNormTrainSum"/> for the shared incoming gradient dy: per branch what
    /// BatchNormBackward(xs[b], weights[b], saveMeans[b], saveInvStds[b], dy, ...) writes into dxs[b], dweights[b]
    /// and dbiases[b].</summary>
    void BatchNormBackwardSum(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> saveMeans,
                              IReadOnlyList<Tensor> saveInvStds, Tensor dy, IReadOnlyList<Tensor> dxs,
                              IReadOnlyList<Tensor> dweights, IReadOnlyList<Tensor> dbiases);
}
