// Profiling forwarders of IBackend.BatchNormSum.cs (see ProfilingBackend.cs): one region each, named by the method and
// the shape of the first branch's input.
namespace Slak.Backends;

internal sealed partial class ProfilingBackend
{
    /// <inheritdoc/>
    public void BatchNormTrainSum(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> biases,
                                  IReadOnlyList<Tensor> runningMeans, IReadOnlyList<Tensor> runningVars,
                                  IReadOnlyList<float> momenta, IReadOnlyList<float> eps, Tensor y,
                                  IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds)
    {
        using var r = Region(nameof(BatchNormTrainSum), xs[0]);
        _inner.BatchNormTrainSum(xs, weights, biases, runningMeans, runningVars, momenta, eps, y, saveMeans, saveInvStds);
    }

    /// <inheritdoc/>
    public void BatchNormBackwardSum(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> weights,
                                     IReadOnlyList<Tensor> saveMeans, IReadOnlyList<Tensor> saveInvStds, Tensor dy,
                                     IReadOnlyList<Tensor> dxs, IReadOnlyList<Tensor> dweights,
                                     IReadOnlyList<Tensor> dbiases)
    {
        using var r = Region(nameof(BatchNormBackwardSum), xs[0]);
        _inner.BatchNormBackwardSum(xs, weights, saveMeans, saveInvStds, dy, dxs, dweights, dbiases);
    }
}
