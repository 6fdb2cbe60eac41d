// bf16 mixed precision as a decorator of the backend contract: while MixedPrecision.Current is Bf16, Tensor.Backend
// hands out this wrapper, so every operator rounds at the same points without opting in (the ProfilingBackend
// pattern). The rounding points are where the CUDA bf16 path stores or reads bfloat16 (docs/mixed-precision.md):
//   - GEMMs and convolutions (Linear, the fused MLP, Conv2d, the depthwise convolutions; forward and both backwards)
//     read every tensor operand as bf16 (a rounded copy: the bf16 copy of a weight, an activation, an incoming
//     gradient) and accumulate in fp32;
//   - the activations they and the activation/norm operators produce in the forward pass (GEMM/convolution outputs,
//     GELU, LayerNorm, BatchNorm, layer scale) are stored as bf16 (rounded in place);
//   - everything else is fp32: the residual additions (the residual stream), DropPath, the loss and its softmax, the
//     norms' statistics (computed in fp32 from the values they read; saved mean and 1/std fp32), every gradient
//     written by a backward (weight gradients, activation gradients between operators), the optimizer step on the
//     fp32 master weights and moments, BatchNorm running statistics and the prune/regrow rounds.
// A pruned weight is exactly 0 in the master, and round(0) = 0, so its bf16 copy is exactly 0 too; masks (0/1) are
// exact in bf16 and are passed through unrounded.
// Where the backend holds stored activations as real 16-bit blocks (IBf16KernelBackend.StoreBf16: CUDA), a float32
// kernel that only reads such an activation gets a widened float32 copy for the call (Operands.Widened; exact), so the
// block stays 16-bit until the backward pass has read it for the last time.
namespace Slak.Backends;

/// <summary>An <see cref="IBackend"/> that runs the backend it wraps with bf16 storage and bf16 GEMM/convolution
/// inputs (fp32 accumulation), by rounding to bfloat16 (nearest even) at the points the CUDA bf16 path stores
/// bf16.</summary>
internal sealed partial class Bf16Backend : IBackend
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IBackend, Bf16Backend> Wrappers = new();
    private readonly IBackend _inner;

    private Bf16Backend(IBackend inner) => _inner = inner;

    /// <summary>The bf16 wrapper of <paramref name="backend"/> (one per backend instance).</summary>
    public static IBackend Wrap(IBackend backend) =>
        backend is Bf16Backend ? backend : Wrappers.GetValue(backend, static b => new Bf16Backend(b));

    /// <summary>The backend this wrapper runs.</summary>
    public IBackend Inner => _inner;

    /// <summary>Tests only: called with (source, bf16 copy) for every rounded operand copy a kernel reads.</summary>
    internal static Action<Tensor, Tensor>? CopyObserver { get; set; }

    // The bf16 copies of one call's operands, released when the call returns.
    private readonly ref struct Operands
    {
        private readonly IBackend _backend;
        private readonly List<Tensor> _copies;

        public Operands(IBackend backend)
        {
            _backend = backend;
            _copies = new List<Tensor>(4);
        }

        // t itself, or where t is held as 16-bit bf16, a float32 copy of its (bf16) values for this call.
        public Tensor Widened(Tensor t)
        {
            if (_backend is not IBf16KernelBackend real || !real.HoldsBf16(t)) return t;
            var copy = Tensor.Empty(t.Shape, t.Device);
            _backend.RoundToBf16(t, copy); // widens exactly
            _copies.Add(copy);
            return copy;
        }

        public Tensor? WidenedOrNull(Tensor? t) => t is null ? null : Widened(t);

        // A bf16 copy of t (rounded to nearest even, kept as float32 values).
        public Tensor Of(Tensor t)
        {
            var copy = Tensor.Empty(t.Shape, t.Device);
            _backend.RoundToBf16(t, copy);
            _copies.Add(copy);
            CopyObserver?.Invoke(t, copy);
            return copy;
        }

        public Tensor? OfOrNull(Tensor? t) => t is null ? null : Of(t);

        public Tensor[] Of(IReadOnlyList<Tensor> ts)
        {
            var r = new Tensor[ts.Count];
            for (int i = 0; i < r.Length; i++) r[i] = Of(ts[i]);
            return r;
        }

        public Tensor?[] OfOrNull(IReadOnlyList<Tensor?> ts)
        {
            var r = new Tensor?[ts.Count];
            for (int i = 0; i < r.Length; i++) r[i] = OfOrNull(ts[i]);
            return r;
        }

        public void Dispose()
        {
            foreach (var c in _copies) c.Dispose();
        }
    }

    private Operands Bf16Operands() => new(_inner);

    // Stores an activation as bf16: rounds it in place (and, on a backend with bf16 storage, holds it as 16-bit).
    private void Store(Tensor y)
    {
        if (_inner is IBf16KernelBackend real) real.StoreBf16(y);
        else _inner.RoundToBf16(y, y);
    }

    /// <inheritdoc/>
    public Device Device => _inner.Device;

    // ---- memory and element-wise: fp32 (forwarded) ------------------------------------------------------------

    /// <inheritdoc/>
    public Storage Allocate(long length) => _inner.Allocate(length);

    /// <inheritdoc/>
    public void CopyFromHost(ReadOnlySpan<float> source, Tensor destination) => _inner.CopyFromHost(source, destination);

    /// <inheritdoc/>
    public void CopyToHost(Tensor source, Span<float> destination) => _inner.CopyToHost(source, destination);

    /// <inheritdoc/>
    public void Copy(Tensor source, Tensor destination)
    {
        using var o = Bf16Operands();
        _inner.Copy(o.Widened(source), destination);
    }

    /// <inheritdoc/>
    public void Fill(Tensor destination, float value) => _inner.Fill(destination, value);

    /// <inheritdoc/>
    public void FillFromScalar(Tensor destination, Tensor scalar, float scale) => _inner.FillFromScalar(destination, scalar, scale);

    /// <inheritdoc/>
    public void RoundToBf16(Tensor x, Tensor y) => _inner.RoundToBf16(x, y);

    /// <inheritdoc/>
    public void Add(Tensor a, Tensor b, Tensor y)
    {
        using var o = Bf16Operands();
        _inner.Add(o.Widened(a), o.Widened(b), y);
    }

    /// <inheritdoc/>
    public void AddScaled(Tensor y, Tensor x, float alpha) => _inner.AddScaled(y, x, alpha);

    /// <inheritdoc/>
    public void Mul(Tensor a, Tensor b, Tensor y)
    {
        using var o = Bf16Operands();
        _inner.Mul(o.Widened(a), o.Widened(b), y);
    }

    /// <inheritdoc/>
    public void Scale(Tensor x, float alpha, Tensor y)
    {
        using var o = Bf16Operands();
        _inner.Scale(o.Widened(x), alpha, y);
    }

    /// <inheritdoc/>
    public void Gelu(Tensor x, Tensor y)
    {
        using (var o = Bf16Operands()) _inner.Gelu(o.Widened(x), y);
        Store(y);
    }

    /// <inheritdoc/>
    public void GeluBackward(Tensor x, Tensor dy, Tensor dx)
    {
        using var o = Bf16Operands();
        _inner.GeluBackward(o.Widened(x), dy, dx);
    }

    /// <inheritdoc/>
    public void MulLastDim(Tensor x, Tensor gamma, Tensor y)
    {
        using (var o = Bf16Operands()) _inner.MulLastDim(o.Widened(x), gamma, y);
        Store(y);
    }

    /// <inheritdoc/>
    public void MulLastDimBackward(Tensor x, Tensor gamma, Tensor dy, Tensor? dx, Tensor? dgamma)
    {
        using var o = Bf16Operands();
        _inner.MulLastDimBackward(o.Widened(x), gamma, dy, dx, dgamma);
    }

    /// <inheritdoc/>
    public void MulRows(Tensor x, Tensor rowScale, Tensor y)
    {
        using var o = Bf16Operands();
        _inner.MulRows(o.Widened(x), rowScale, y);
    }

    /// <inheritdoc/>
    public void AddBiasLastDim(Tensor y, Tensor bias) => _inner.AddBiasLastDim(y, bias);

    /// <inheritdoc/>
    public void AddBiasChannels(Tensor y, Tensor bias) => _inner.AddBiasChannels(y, bias);

    /// <inheritdoc/>
    public void SumToLastDim(Tensor dy, Tensor db) => _inner.SumToLastDim(dy, db);

    /// <inheritdoc/>
    public void Permute(Tensor x, ReadOnlySpan<int> perm, Tensor y)
    {
        using var o = Bf16Operands();
        _inner.Permute(o.Widened(x), perm, y);
    }

    /// <inheritdoc/>
    public void SumAll(Tensor x, Tensor y) => _inner.SumAll(x, y);

    /// <inheritdoc/>
    public void SumSquares(Tensor x, Tensor y) => _inner.SumSquares(x, y);

    /// <inheritdoc/>
    public void GlobalAvgPool(Tensor x, Tensor y)
    {
        using var o = Bf16Operands();
        _inner.GlobalAvgPool(o.Widened(x), y);
    }

    /// <inheritdoc/>
    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx) => _inner.GlobalAvgPoolBackward(dy, dx);

    // ---- GEMMs and dense convolutions: bf16 operands, fp32 accumulation ---------------------------------------

    /// <inheritdoc/>
    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, Tensor b, float beta, Tensor c)
    {
        if (_inner is IBf16KernelBackend real && real.TryGemmBf16(transA, transB, m, n, k, alpha, a, b, beta, c)) return;
        using var o = Bf16Operands();
        _inner.Gemm(transA, transB, m, n, k, alpha, o.Of(a), o.Of(b), beta, c);
    }

    /// <inheritdoc/>
    public void LinearBias(Tensor x, Tensor w, Tensor bias, Tensor y)
    {
        if (_inner is not IBf16KernelBackend real || !real.TryLinearBiasBf16(x, w, bias, y))
        {
            using var o = Bf16Operands();
            _inner.LinearBias(o.Of(x), o.Of(w), bias, y);
        }
        Store(y);
    }

    /// <inheritdoc/>
    public void LinearBiasGelu(Tensor x, Tensor w, Tensor bias, Tensor pre, Tensor y)
    {
        if (_inner is not IBf16KernelBackend real || !real.TryLinearBiasGeluBf16(x, w, bias, pre, y))
        {
            using var o = Bf16Operands();
            _inner.LinearBiasGelu(o.Of(x), o.Of(w), bias, pre, y);
        }
        Store(pre);
        Store(y);
    }

    /// <inheritdoc/>
    public void LinearBackwardDataGelu(Tensor dy, Tensor w, Tensor pre, Tensor dpre, Tensor dbias)
    {
        using var o = Bf16Operands();
        var preF = o.Widened(pre);
        if (_inner is IBf16KernelBackend real && real.TryLinearBackwardDataGeluBf16(dy, w, preF, dpre, dbias)) return;
        _inner.LinearBackwardDataGelu(o.Of(dy), o.Of(w), preF, dpre, dbias);
    }

    /// <inheritdoc/>
    public void Conv2dForward(Tensor x, Tensor w, Tensor? bias, Tensor y, int strideH, int strideW, int padH, int padW)
    {
        using (var o = Bf16Operands())
        {
            if (!(_inner is IBf16KernelBackend real &&
                  real.TryConv2dForwardBf16(o.Widened(x), w, bias, y, strideH, strideW, padH, padW)))
                _inner.Conv2dForward(o.Of(x), o.Of(w), bias, y, strideH, strideW, padH, padW);
        }
        Store(y);
    }

    /// <inheritdoc/>
    public void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int strideH, int strideW, int padH, int padW)
    {
        if (_inner is IBf16KernelBackend real && real.TryConv2dBackwardDataBf16(dy, w, dx, strideH, strideW, padH, padW))
            return;
        using var o = Bf16Operands();
        _inner.Conv2dBackwardData(o.Of(dy), o.Of(w), dx, strideH, strideW, padH, padW);
    }

    /// <inheritdoc/>
    public void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor? dbias, int strideH, int strideW, int padH, int padW)
    {
        using var o = Bf16Operands();
        var rounded = o.Of(dy); // the bias gradient reads the rounded dy on both paths
        if (_inner is IBf16KernelBackend real &&
            real.TryConv2dBackwardFilterBf16(o.Widened(x), rounded, dw, dbias, strideH, strideW, padH, padW))
            return;
        _inner.Conv2dBackwardFilter(o.Of(x), rounded, dw, dbias, strideH, strideW, padH, padW);
    }

    // ---- normalization: fp32 statistics, bf16 output ----------------------------------------------------------

    /// <inheritdoc/>
    public void LayerNormLastDim(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        using (var o = Bf16Operands()) _inner.LayerNormLastDim(o.Widened(x), weight, bias, eps, y, mean, rstd);
        Store(y);
    }

    /// <inheritdoc/>
    public void LayerNormLastDimBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                         Tensor dx, Tensor dweight, Tensor dbias)
    {
        using var o = Bf16Operands();
        _inner.LayerNormLastDimBackward(o.Widened(x), weight, mean, rstd, dy, dx, dweight, dbias);
    }

    /// <inheritdoc/>
    public void LayerNormChannelsFirst(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        using (var o = Bf16Operands()) _inner.LayerNormChannelsFirst(o.Widened(x), weight, bias, eps, y, mean, rstd);
        Store(y);
    }

    /// <inheritdoc/>
    public void LayerNormChannelsFirstBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                               Tensor dx, Tensor dweight, Tensor dbias)
    {
        using var o = Bf16Operands();
        _inner.LayerNormChannelsFirstBackward(o.Widened(x), weight, mean, rstd, dy, dx, dweight, dbias);
    }

    /// <inheritdoc/>
    public void LayerNormNchwToNhwc(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        using (var o = Bf16Operands()) _inner.LayerNormNchwToNhwc(o.Widened(x), weight, bias, eps, y, mean, rstd);
        Store(y);
    }

    /// <inheritdoc/>
    public void LayerNormNchwToNhwcBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                            Tensor dx, Tensor dweight, Tensor dbias)
    {
        using var o = Bf16Operands();
        _inner.LayerNormNchwToNhwcBackward(o.Widened(x), weight, mean, rstd, dy, dx, dweight, dbias);
    }

    /// <inheritdoc/>
    public void BatchNormTrain(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                               float momentum, float eps, Tensor y, Tensor saveMean, Tensor saveInvStd)
    {
        using (var o = Bf16Operands())
            _inner.BatchNormTrain(o.Widened(x), weight, bias, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd);
        Store(y);
    }

    /// <inheritdoc/>
    public void ChannelsLastResidual(Tensor input, Tensor y, Tensor? gamma, Tensor? scale, Tensor output)
    {
        // The unfused path stores the layer-scale product (MulLastDim's output) as bf16; the permute, the DropPath
        // factor and the residual add (the fp32 residual stream) are not rounded.
        using var o = Bf16Operands();
        if (gamma is null)
        {
            _inner.ChannelsLastResidual(o.Widened(input), o.Widened(y), null, scale, output);
            return;
        }
        using var scaled = Tensor.Empty(y.ShapeArray, y.Device);
        _inner.MulLastDim(o.Widened(y), gamma, scaled);
        _inner.RoundToBf16(scaled, scaled); // the layer-scale product as bf16 (a temporary: rounded, not held 16-bit)
        _inner.ChannelsLastResidual(o.Widened(input), scaled, null, scale, output);
    }

    /// <inheritdoc/>
    public void ChannelsLastResidualBackward(Tensor y, Tensor? gamma, Tensor? scale, Tensor dOutput, Tensor? dy,
                                             Tensor? dgamma)
    {
        using var o = Bf16Operands();
        _inner.ChannelsLastResidualBackward(o.Widened(y), gamma, scale, dOutput, dy, dgamma);
    }

    /// <inheritdoc/>
    public void BatchNormEval(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, float eps, Tensor y)
    {
        using (var o = Bf16Operands()) _inner.BatchNormEval(o.Widened(x), weight, bias, runningMean, runningVar, eps, y);
        Store(y);
    }

    /// <inheritdoc/>
    public void BatchNormBackward(Tensor x, Tensor weight, Tensor saveMean, Tensor saveInvStd, Tensor dy,
                                  Tensor dx, Tensor dweight, Tensor dbias)
    {
        using var o = Bf16Operands();
        _inner.BatchNormBackward(o.Widened(x), weight, saveMean, saveInvStd, dy, dx, dweight, dbias);
    }

    // ---- loss, optimizer, sparse rounds: fp32 -----------------------------------------------------------------

    /// <inheritdoc/>
    public void SoftmaxCrossEntropy(Tensor logits, Tensor targets, Tensor probs, Tensor loss)
    {
        using var o = Bf16Operands();
        _inner.SoftmaxCrossEntropy(o.Widened(logits), targets, probs, loss);
    }

    /// <inheritdoc/>
    public void SoftmaxCrossEntropyBackward(Tensor probs, Tensor targets, Tensor gradLoss, Tensor dlogits) =>
        _inner.SoftmaxCrossEntropyBackward(probs, targets, gradLoss, dlogits);

    /// <inheritdoc/>
    public void AdamWStep(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, Tensor? mask, in AdamWHyper hyper,
                          bool maskMoments) =>
        _inner.AdamWStep(param, grad, expAvg, expAvgSq, mask, hyper, maskMoments);

    /// <inheritdoc/>
    public void AdamWStepGroup(IReadOnlyList<AdamWItem> items, bool maskMoments) =>
        _inner.AdamWStepGroup(items, maskMoments);

    /// <inheritdoc/>
    public long SparsePruneRegrow(Tensor weight, Tensor mask, Tensor? grad, Tensor keep, long numRemove,
                                  SparseRegrowth growth, ulong roundSeed) =>
        _inner.SparsePruneRegrow(weight, mask, grad, keep, numRemove, growth, roundSeed);
}
