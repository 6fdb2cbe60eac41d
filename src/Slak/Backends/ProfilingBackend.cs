// Profiling as a decorator of the backend contract: while SLAK_PROFILE (OpProfiler.Enabled) is on, Tensor.Backend
// hands out this wrapper, so EVERY kernel-level call of every operator is one region named by the backend method and
// the shape of its first tensor argument ("DecomposedDwConvBackwardData (128,124,56,56)"): forward and each backward
// apart, and no operator can be missed, because none has to opt in. The members are a mechanical forwarding of
// IBackend, one region each, in the interface's order.
using Slak.Diagnostics;

namespace Slak.Backends;

/// <summary>An <see cref="IBackend"/> that measures every call of the backend it wraps (see <see cref="OpProfiler"/>).</summary>
internal sealed partial class ProfilingBackend : IBackend
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IBackend, ProfilingBackend> Wrappers = new();
    private readonly IBackend _inner;

    private ProfilingBackend(IBackend inner) => _inner = inner;

    /// <summary>The profiling wrapper of <paramref name="backend"/> (one per backend instance).</summary>
    public static IBackend Wrap(IBackend backend) =>
        backend is ProfilingBackend ? backend : Wrappers.GetValue(backend, static b => new ProfilingBackend(b));

    /// <summary>The backend this wrapper measures.</summary>
    public IBackend Inner => _inner;

    private static OpProfiler.Region Region(string method, Tensor shapeOf) => OpProfiler.MeasureKernel(method, shapeOf);

    /// <inheritdoc/>
    public Device Device => _inner.Device;

    /// <inheritdoc/>
    public Storage Allocate(long length)
    {
        using var r = OpProfiler.Measure(nameof(Allocate));
        return _inner.Allocate(length);
    }

    /// <inheritdoc/>
    public void CopyFromHost(ReadOnlySpan<float> source, Tensor destination)
    {
        using var r = Region(nameof(CopyFromHost), destination);
        _inner.CopyFromHost(source, destination);
    }

    /// <inheritdoc/>
    public void CopyToHost(Tensor source, Span<float> destination)
    {
        using var r = Region(nameof(CopyToHost), source);
        _inner.CopyToHost(source, destination);
    }

    /// <inheritdoc/>
    public void Copy(Tensor source, Tensor destination)
    {
        using var r = Region(nameof(Copy), source);
        _inner.Copy(source, destination);
    }

    /// <inheritdoc/>
    public void Fill(Tensor destination, float value)
    {
        using var r = Region(nameof(Fill), destination);
        _inner.Fill(destination, value);
    }

    /// <inheritdoc/>
    public void FillFromScalar(Tensor destination, Tensor scalar, float scale)
    {
        using var r = Region(nameof(FillFromScalar), destination);
        _inner.FillFromScalar(destination, scalar, scale);
    }

    /// <inheritdoc/>
    public void RoundToBf16(Tensor x, Tensor y)
    {
        using var r = Region(nameof(RoundToBf16), x);
        _inner.RoundToBf16(x, y);
    }

    /// <inheritdoc/>
    public void Add(Tensor a, Tensor b, Tensor y)
    {
        using var r = Region(nameof(Add), a);
        _inner.Add(a, b, y);
    }

    /// <inheritdoc/>
    public void AddScaled(Tensor y, Tensor x, float alpha)
    {
        using var r = Region(nameof(AddScaled), y);
        _inner.AddScaled(y, x, alpha);
    }

    /// <inheritdoc/>
    public void Mul(Tensor a, Tensor b, Tensor y)
    {
        using var r = Region(nameof(Mul), a);
        _inner.Mul(a, b, y);
    }

    /// <inheritdoc/>
    public void Scale(Tensor x, float alpha, Tensor y)
    {
        using var r = Region(nameof(Scale), x);
        _inner.Scale(x, alpha, y);
    }

    /// <inheritdoc/>
    public void Gelu(Tensor x, Tensor y)
    {
        using var r = Region(nameof(Gelu), x);
        _inner.Gelu(x, y);
    }

    /// <inheritdoc/>
    public void GeluBackward(Tensor x, Tensor dy, Tensor dx)
    {
        using var r = Region(nameof(GeluBackward), x);
        _inner.GeluBackward(x, dy, dx);
    }

    /// <inheritdoc/>
    public void MulLastDim(Tensor x, Tensor gamma, Tensor y)
    {
        using var r = Region(nameof(MulLastDim), x);
        _inner.MulLastDim(x, gamma, y);
    }

    /// <inheritdoc/>
    public void MulLastDimBackward(Tensor x, Tensor gamma, Tensor dy, Tensor? dx, Tensor? dgamma)
    {
        using var r = Region(nameof(MulLastDimBackward), x);
        _inner.MulLastDimBackward(x, gamma, dy, dx, dgamma);
    }

    /// <inheritdoc/>
    public void MulRows(Tensor x, Tensor rowScale, Tensor y)
    {
        using var r = Region(nameof(MulRows), x);
        _inner.MulRows(x, rowScale, y);
    }

    /// <inheritdoc/>
    public void AddBiasLastDim(Tensor y, Tensor bias)
    {
        using var r = Region(nameof(AddBiasLastDim), y);
        _inner.AddBiasLastDim(y, bias);
    }

    /// <inheritdoc/>
    public void AddBiasChannels(Tensor y, Tensor bias)
    {
        using var r = Region(nameof(AddBiasChannels), y);
        _inner.AddBiasChannels(y, bias);
    }

    /// <inheritdoc/>
    public void SumToLastDim(Tensor dy, Tensor db)
    {
        using var r = Region(nameof(SumToLastDim), dy);
        _inner.SumToLastDim(dy, db);
    }

    /// <inheritdoc/>
    public void Permute(Tensor x, ReadOnlySpan<int> perm, Tensor y)
    {
        using var r = Region(nameof(Permute), x);
        _inner.Permute(x, perm, y);
    }

    /// <inheritdoc/>
    public void SumAll(Tensor x, Tensor y)
    {
        using var r = Region(nameof(SumAll), x);
        _inner.SumAll(x, y);
    }

    /// <inheritdoc/>
    public void SumSquares(Tensor x, Tensor y)
    {
        using var r = Region(nameof(SumSquares), x);
        _inner.SumSquares(x, y);
    }

    /// <inheritdoc/>
    public void GlobalAvgPool(Tensor x, Tensor y)
    {
        using var r = Region(nameof(GlobalAvgPool), x);
        _inner.GlobalAvgPool(x, y);
    }

    /// <inheritdoc/>
    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx)
    {
        using var r = Region(nameof(GlobalAvgPoolBackward), dy);
        _inner.GlobalAvgPoolBackward(dy, dx);
    }

    /// <inheritdoc/>
    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, Tensor b, float beta, Tensor c)
    {
        using var r = Region(nameof(Gemm), a);
        _inner.Gemm(transA, transB, m, n, k, alpha, a, b, beta, c);
    }

    /// <inheritdoc/>
    public void LinearBias(Tensor x, Tensor w, Tensor bias, Tensor y)
    {
        using var r = Region(nameof(LinearBias), x);
        _inner.LinearBias(x, w, bias, y);
    }

    /// <inheritdoc/>
    public void LinearBiasGelu(Tensor x, Tensor w, Tensor bias, Tensor pre, Tensor y)
    {
        using var r = Region(nameof(LinearBiasGelu), x);
        _inner.LinearBiasGelu(x, w, bias, pre, y);
    }

    /// <inheritdoc/>
    public void LinearBackwardDataGelu(Tensor dy, Tensor w, Tensor pre, Tensor dpre, Tensor dbias)
    {
        using var r = Region(nameof(LinearBackwardDataGelu), dy);
        _inner.LinearBackwardDataGelu(dy, w, pre, dpre, dbias);
    }

    /// <inheritdoc/>
    public void Conv2dForward(Tensor x, Tensor w, Tensor? bias, Tensor y, int strideH, int strideW, int padH, int padW)
    {
        using var r = Region(nameof(Conv2dForward), x);
        _inner.Conv2dForward(x, w, bias, y, strideH, strideW, padH, padW);
    }

    /// <inheritdoc/>
    public void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int strideH, int strideW, int padH, int padW)
    {
        using var r = Region(nameof(Conv2dBackwardData), dy);
        _inner.Conv2dBackwardData(dy, w, dx, strideH, strideW, padH, padW);
    }

    /// <inheritdoc/>
    public void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor? dbias, int strideH, int strideW, int padH, int padW)
    {
        using var r = Region(nameof(Conv2dBackwardFilter), x);
        _inner.Conv2dBackwardFilter(x, dy, dw, dbias, strideH, strideW, padH, padW);
    }

    /// <inheritdoc/>
    public void LayerNormLastDim(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        using var r = Region(nameof(LayerNormLastDim), x);
        _inner.LayerNormLastDim(x, weight, bias, eps, y, mean, rstd);
    }

    /// <inheritdoc/>
    public void LayerNormLastDimBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight, Tensor dbias)
    {
        using var r = Region(nameof(LayerNormLastDimBackward), x);
        _inner.LayerNormLastDimBackward(x, weight, mean, rstd, dy, dx, dweight, dbias);
    }

    /// <inheritdoc/>
    public void LayerNormChannelsFirst(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        using var r = Region(nameof(LayerNormChannelsFirst), x);
        _inner.LayerNormChannelsFirst(x, weight, bias, eps, y, mean, rstd);
    }

    /// <inheritdoc/>
    public void LayerNormChannelsFirstBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight, Tensor dbias)
    {
        using var r = Region(nameof(LayerNormChannelsFirstBackward), x);
        _inner.LayerNormChannelsFirstBackward(x, weight, mean, rstd, dy, dx, dweight, dbias);
    }

    /// <inheritdoc/>
    public void LayerNormNchwToNhwc(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        using var r = Region(nameof(LayerNormNchwToNhwc), x);
        _inner.LayerNormNchwToNhwc(x, weight, bias, eps, y, mean, rstd);
    }

    /// <inheritdoc/>
    public void LayerNormNchwToNhwcBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight, Tensor dbias)
    {
        using var r = Region(nameof(LayerNormNchwToNhwcBackward), x);
        _inner.LayerNormNchwToNhwcBackward(x, weight, mean, rstd, dy, dx, dweight, dbias);
    }

    /// <inheritdoc/>
    public void ChannelsLastResidual(Tensor input, Tensor y, Tensor? gamma, Tensor? scale, Tensor output)
    {
        using var r = Region(nameof(ChannelsLastResidual), input);
        _inner.ChannelsLastResidual(input, y, gamma, scale, output);
    }

    /// <inheritdoc/>
    public void ChannelsLastResidualBackward(Tensor y, Tensor? gamma, Tensor? scale, Tensor dOutput, Tensor? dy, Tensor? dgamma)
    {
        using var r = Region(nameof(ChannelsLastResidualBackward), dOutput);
        _inner.ChannelsLastResidualBackward(y, gamma, scale, dOutput, dy, dgamma);
    }

    /// <inheritdoc/>
    public void BatchNormTrain(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, float momentum, float eps, Tensor y, Tensor saveMean, Tensor saveInvStd)
    {
        using var r = Region(nameof(BatchNormTrain), x);
        _inner.BatchNormTrain(x, weight, bias, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd);
    }

    /// <inheritdoc/>
    public void BatchNormEval(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, float eps, Tensor y)
    {
        using var r = Region(nameof(BatchNormEval), x);
        _inner.BatchNormEval(x, weight, bias, runningMean, runningVar, eps, y);
    }

    /// <inheritdoc/>
    public void BatchNormBackward(Tensor x, Tensor weight, Tensor saveMean, Tensor saveInvStd, Tensor dy, Tensor dx, Tensor dweight, Tensor dbias)
    {
        using var r = Region(nameof(BatchNormBackward), x);
        _inner.BatchNormBackward(x, weight, saveMean, saveInvStd, dy, dx, dweight, dbias);
    }

    /// <inheritdoc/>
    public void SoftmaxCrossEntropy(Tensor logits, Tensor targets, Tensor probs, Tensor loss)
    {
        using var r = Region(nameof(SoftmaxCrossEntropy), logits);
        _inner.SoftmaxCrossEntropy(logits, targets, probs, loss);
    }

    /// <inheritdoc/>
    public void SoftmaxCrossEntropyBackward(Tensor probs, Tensor targets, Tensor gradLoss, Tensor dlogits)
    {
        using var r = Region(nameof(SoftmaxCrossEntropyBackward), probs);
        _inner.SoftmaxCrossEntropyBackward(probs, targets, gradLoss, dlogits);
    }

    /// <inheritdoc/>
    public void AdamWStep(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, Tensor? mask, in AdamWHyper hyper, bool maskMoments)
    {
        using var r = Region(nameof(AdamWStep), param);
        _inner.AdamWStep(param, grad, expAvg, expAvgSq, mask, in hyper, maskMoments);
    }

    /// <inheritdoc/>
    public void AdamWStepGroup(IReadOnlyList<AdamWItem> items, bool maskMoments)
    {
        using var r = OpProfiler.Measure(nameof(AdamWStepGroup));
        _inner.AdamWStepGroup(items, maskMoments);
    }

    /// <inheritdoc/>
    public void DecomposedDwConvForward(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks, IReadOnlyList<Tensor> ys)
    {
        using var r = Region(nameof(DecomposedDwConvForward), x);
        _inner.DecomposedDwConvForward(x, weights, masks, ys);
    }

    /// <inheritdoc/>
    public void DecomposedDwConvForwardSum(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks, Tensor y)
    {
        using var r = Region(nameof(DecomposedDwConvForwardSum), x);
        _inner.DecomposedDwConvForwardSum(x, weights, masks, y);
    }

    /// <inheritdoc/>
    public void DecomposedDwConvBackwardData(IReadOnlyList<Tensor?> dys, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> masks, Tensor dx)
    {
        using var r = Region(nameof(DecomposedDwConvBackwardData), dx);
        _inner.DecomposedDwConvBackwardData(dys, weights, masks, dx);
    }

    /// <inheritdoc/>
    public void DecomposedDwConvBackwardFilter(Tensor x, IReadOnlyList<Tensor?> dys, IReadOnlyList<Tensor?> skipMasks, IReadOnlyList<Tensor?> dws)
    {
        using var r = Region(nameof(DecomposedDwConvBackwardFilter), x);
        _inner.DecomposedDwConvBackwardFilter(x, dys, skipMasks, dws);
    }

    /// <inheritdoc/>
    public long SparsePruneRegrow(Tensor weight, Tensor mask, Tensor? grad, Tensor keep, long numRemove, SparseRegrowth growth, ulong roundSeed)
    {
        using var r = Region(nameof(SparsePruneRegrow), weight);
        return _inner.SparsePruneRegrow(weight, mask, grad, keep, numRemove, growth, roundSeed);
    }
}
