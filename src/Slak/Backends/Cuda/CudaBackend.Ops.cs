// CUDA backend: GEMM (cuBLAS on a GPU, the CPU SGEMM on the emulator), convolutions, normalization, loss and the
// AdamW step. Shapes were validated by Slak.F; sizes are read from the tensors.
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.Backends.Cuda;

internal sealed partial class CudaBackend
{
    /// <inheritdoc />
    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, Tensor b, float beta, Tensor c)
    {
        SetGemmMathMode(); // TF32 under --precision tf32 (CudaBackend.Precision.cs)
        Gpu.Sgemm(transA, transB, m, n, k, alpha, P(a), transA ? m : k, P(b), transB ? k : n, beta, P(c), n);
    }

    private static Conv2dParams ConvParams(Tensor x, Tensor w, int outH, int outW, int sh, int sw, int ph, int pw) =>
        new(x.Size(0), x.Size(1), x.Size(2), x.Size(3), w.Size(0), w.Size(2), w.Size(3), sh, sw, ph, pw, outH, outW);

    /// <inheritdoc />
    public void Conv2dForward(Tensor x, Tensor w, Tensor? bias, Tensor y, int strideH, int strideW, int padH, int padW)
    {
        SetGemmMathMode(); // kernel == stride runs as patchify + GEMM (Conv2dPatchifyKernels)
        Conv2dKernels.Forward(Gpu, P(y), P(x), P(w), PorNull(bias),
                              ConvParams(x, w, y.Size(2), y.Size(3), strideH, strideW, padH, padW));
    }

    /// <inheritdoc />
    public void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int strideH, int strideW, int padH, int padW)
    {
        SetGemmMathMode();
        Conv2dKernels.BackwardData(Gpu, P(dx), P(dy), P(w), ConvParams(dx, w, dy.Size(2), dy.Size(3), strideH, strideW, padH, padW));
    }

    /// <inheritdoc />
    public void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor? dbias, int strideH, int strideW, int padH, int padW)
    {
        SetGemmMathMode();
        Conv2dKernels.BackwardFilter(Gpu, P(dw), PorNull(dbias), P(x), P(dy),
                                     ConvParams(x, dw, dy.Size(2), dy.Size(3), strideH, strideW, padH, padW));
    }

    /// <inheritdoc />
    public void LayerNormLastDim(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd) =>
        NormKernels.LayerNorm(Gpu, P(y), P(mean), P(rstd), P(x), P(weight), P(bias), eps, mean.Size(0), weight.Size(0));

    /// <inheritdoc />
    public void LayerNormLastDimBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                         Tensor dx, Tensor dweight, Tensor dbias) =>
        NormKernels.LayerNormBackward(Gpu, P(dx), P(dweight), P(dbias), P(x), P(weight), P(mean), P(rstd), P(dy),
                                      mean.Size(0), weight.Size(0));

    /// <inheritdoc />
    public void LayerNormChannelsFirst(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd) =>
        NormKernels.LayerNormChannelsFirst(Gpu, P(y), P(mean), P(rstd), P(x), P(weight), P(bias), eps,
                                           x.Size(0), x.Size(1), x.Size(2) * x.Size(3));

    /// <inheritdoc />
    public void LayerNormChannelsFirstBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                               Tensor dx, Tensor dweight, Tensor dbias) =>
        NormKernels.LayerNormChannelsFirstBackward(Gpu, P(dx), P(dweight), P(dbias), P(x), P(weight), P(mean), P(rstd),
                                                   P(dy), x.Size(0), x.Size(1), x.Size(2) * x.Size(3));

    /// <inheritdoc />
    public void BatchNormTrain(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                               float momentum, float eps, Tensor y, Tensor saveMean, Tensor saveInvStd) =>
        NormKernels.BatchNormTrain(Gpu, P(y), P(saveMean), P(saveInvStd), P(runningMean), P(runningVar), P(x), P(weight),
                                   P(bias), momentum, eps, x.Size(0), x.Size(1), x.Size(2) * x.Size(3));

    /// <inheritdoc />
    public void BatchNormEval(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, float eps, Tensor y) =>
        NormKernels.BatchNormEval(Gpu, P(y), P(x), P(runningMean), P(runningVar), P(weight), P(bias), eps,
                                  x.Size(0), x.Size(1), x.Size(2) * x.Size(3));

    /// <inheritdoc />
    public void BatchNormBackward(Tensor x, Tensor weight, Tensor saveMean, Tensor saveInvStd, Tensor dy,
                                  Tensor dx, Tensor dweight, Tensor dbias) =>
        NormKernels.BatchNormBackward(Gpu, P(dx), P(dweight), P(dbias), P(x), P(weight), P(saveMean), P(saveInvStd),
                                      P(dy), x.Size(0), x.Size(1), x.Size(2) * x.Size(3));

    /// <inheritdoc />
    public void SoftmaxCrossEntropy(Tensor logits, Tensor targets, Tensor probs, Tensor loss) =>
        LossKernels.SoftmaxCrossEntropy(Gpu, P(probs), P(loss), P(logits), P(targets), logits.Size(0), logits.Size(1));

    /// <inheritdoc />
    public void SoftmaxCrossEntropyBackward(Tensor probs, Tensor targets, Tensor gradLoss, Tensor dlogits) =>
        LossKernels.SoftmaxCrossEntropyBackward(Gpu, P(dlogits), P(probs), P(targets), P(gradLoss),
                                                probs.Size(0), probs.Size(1));

    /// <inheritdoc />
    public void AdamWStep(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, Tensor? mask, in AdamWHyper hyper,
                          bool maskMoments) =>
        OptimKernels.AdamW(Gpu, P(param), P(expAvg), P(expAvgSq), P(grad), PorNull(mask), hyper.Lr, hyper.Beta1,
                           hyper.Beta2, hyper.Eps, hyper.WeightDecay, hyper.Step, maskMoments, param.Numel);

    /// <inheritdoc />
    public void AdamWStepGroup(IReadOnlyList<AdamWItem> items, bool maskMoments)
    {
        // One launch per parameter (launches are asynchronous: no per-parameter wait to save here).
        foreach (var it in items)
            AdamWStep(it.Param, it.Grad, it.ExpAvg, it.ExpAvgSq, it.Mask, it.Hyper, maskMoments);
    }
}
