// The kernel-level contract every backend implements: CpuBackend (C#, vectorized, multi-threaded) and CudaBackend
// (cuda/ kernels on a GPU or on the host emulator). Operators in Slak.F allocate outputs, validate shapes, call
// these methods and record autograd nodes; backends never see the graph. All tensors are contiguous float32 and on
// this backend's device; outputs are fully overwritten unless a method says it accumulates.
namespace Slak.Backends;

/// <summary>Kernels of one device. Shapes are validated by the caller (Slak.F); backends may assume them.</summary>
internal partial interface IBackend
{
    /// <summary>The device these kernels run on.</summary>
    Device Device { get; }

    // ---- memory ----------------------------------------------------------------------------------------------

    /// <summary>Allocates storage for <paramref name="length"/> float32 elements (contents undefined).</summary>
    Storage Allocate(long length);

    /// <summary>dst = src (host to device).</summary>
    void CopyFromHost(ReadOnlySpan<float> source, Tensor destination);

    /// <summary>dst = src (device to host; waits for pending work).</summary>
    void CopyToHost(Tensor source, Span<float> destination);

    /// <summary>dst = src (same device, same element count).</summary>
    void Copy(Tensor source, Tensor destination);

    /// <summary>Every element of <paramref name="destination"/> = <paramref name="value"/>.</summary>
    void Fill(Tensor destination, float value);

    /// <summary>Every element of <paramref name="destination"/> = scale * scalar (a one-element tensor; no host
    /// sync).</summary>
    void FillFromScalar(Tensor destination, Tensor scalar, float scale);

    // ---- element-wise ----------------------------------------------------------------------------------------

    /// <summary>y = a + b (same element count; y may alias a or b).</summary>
    void Add(Tensor a, Tensor b, Tensor y);

    /// <summary>y += alpha * x (accumulates).</summary>
    void AddScaled(Tensor y, Tensor x, float alpha);

    /// <summary>y = a * b element-wise (y may alias a or b).</summary>
    void Mul(Tensor a, Tensor b, Tensor y);

    /// <summary>y = alpha * x (y may alias x).</summary>
    void Scale(Tensor x, float alpha, Tensor y);

    /// <summary>y = GELU(x), exact (erf) form.</summary>
    void Gelu(Tensor x, Tensor y);

    /// <summary>dx = dy * GELU'(x).</summary>
    void GeluBackward(Tensor x, Tensor dy, Tensor dx);

    /// <summary>y[..., c] = x[..., c] * gamma[c] (layer scale on a channels-last tensor).</summary>
    void MulLastDim(Tensor x, Tensor gamma, Tensor y);

    /// <summary>dx[..., c] = dy[..., c] * gamma[c]; dgamma[c] = sum over rows of x * dy (when not null).</summary>
    void MulLastDimBackward(Tensor x, Tensor gamma, Tensor dy, Tensor? dx, Tensor? dgamma);

    /// <summary>y[n, ...] = x[n, ...] * rowScale[n] (per-sample scaling: DropPath forward and backward).</summary>
    void MulRows(Tensor x, Tensor rowScale, Tensor y);

    /// <summary>y[..., c] += bias[c] (in place on y).</summary>
    void AddBiasLastDim(Tensor y, Tensor bias);

    /// <summary>y[n, c, ...] += bias[c] (in place on y, channels first: (N, C, H, W)).</summary>
    void AddBiasChannels(Tensor y, Tensor bias);

    /// <summary>db[c] = sum over all rows of dy[..., c] (overwrites db).</summary>
    void SumToLastDim(Tensor dy, Tensor db);

    /// <summary>y = x with dimensions permuted: y.shape[i] = x.shape[perm[i]].</summary>
    void Permute(Tensor x, ReadOnlySpan<int> perm, Tensor y);

    /// <summary>y (one element) = sum of all elements of x.</summary>
    void SumAll(Tensor x, Tensor y);

    /// <summary>y (one element) = sum of squares of all elements of x.</summary>
    void SumSquares(Tensor x, Tensor y);

    /// <summary>(N, C, H, W) -> (N, C) mean over H and W.</summary>
    void GlobalAvgPool(Tensor x, Tensor y);

    /// <summary>dx[n, c, h, w] = dy[n, c] / (H * W).</summary>
    void GlobalAvgPoolBackward(Tensor dy, Tensor dx);

    // ---- matrix multiply and convolutions ----------------------------------------------------------------

    /// <summary>Row-major C(m, n) = alpha * op(A) * op(B) + beta * C over contiguous tensors; op(A) is (m, k)
    /// (A stored (k, m) when transposed), op(B) is (k, n) (B stored (n, k) when transposed).</summary>
    void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, Tensor b, float beta, Tensor c);

    /// <summary>Dense conv: x (N, Cin, H, W), w (Cout, Cin, Kh, Kw), bias (Cout) or null, y (N, Cout,
    /// OH, OW).</summary>
    void Conv2dForward(Tensor x, Tensor w, Tensor? bias, Tensor y, int strideH, int strideW, int padH, int padW);

    /// <summary>dx = gradient of the dense conv w.r.t. its input (overwrites dx).</summary>
    void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int strideH, int strideW, int padH, int padW);

    /// <summary>dw (and dbias when not null) = gradients w.r.t. weight and bias (overwrite).</summary>
    void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor? dbias, int strideH, int strideW, int padH, int padW);

    // ---- normalization -------------------------------------------------------------------------------------

    /// <summary>LayerNorm over the last dimension (biased variance); saves per-row mean and 1/std.</summary>
    void LayerNormLastDim(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd);

    /// <summary>Backward of <see cref="LayerNormLastDim"/>; dx overwritten, dweight/dbias overwritten.</summary>
    void LayerNormLastDimBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                  Tensor dx, Tensor dweight, Tensor dbias);

    /// <summary>LayerNorm over C of an (N, C, H, W) tensor, per pixel; saves mean and 1/std of shape (N,
    /// H, W).</summary>
    void LayerNormChannelsFirst(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd);

    /// <summary>Backward of <see cref="LayerNormChannelsFirst"/>.</summary>
    void LayerNormChannelsFirstBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                        Tensor dx, Tensor dweight, Tensor dbias);

    /// <summary>Training BatchNorm2d: batch statistics over (N, H, W) per channel; saves mean and 1/std (C) and
    /// updates running mean and (unbiased) running variance with <paramref name="momentum"/>.</summary>
    void BatchNormTrain(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                        float momentum, float eps, Tensor y, Tensor saveMean, Tensor saveInvStd);

    /// <summary>Evaluation BatchNorm2d with running statistics.</summary>
    void BatchNormEval(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, float eps, Tensor y);

    /// <summary>Backward of training BatchNorm2d (dx, dweight, dbias overwritten).</summary>
    void BatchNormBackward(Tensor x, Tensor weight, Tensor saveMean, Tensor saveInvStd, Tensor dy,
                           Tensor dx, Tensor dweight, Tensor dbias);

    // ---- loss ----------------------------------------------------------------------------------------------

    /// <summary>Per row n of logits (N, K): probs = softmax, loss (one element) = mean over rows of
    /// -sum_k targets[n,k] * log softmax[n,k].</summary>
    void SoftmaxCrossEntropy(Tensor logits, Tensor targets, Tensor probs, Tensor loss);

    /// <summary>dlogits = gradLoss * (probs - targets) / N (gradLoss a one-element tensor).</summary>
    void SoftmaxCrossEntropyBackward(Tensor probs, Tensor targets, Tensor gradLoss, Tensor dlogits);

    // ---- optimizer -------------------------------------------------------------------------------------------

    /// <summary>One AdamW step on a parameter (PyTorch semantics: decoupled decay, bias correction). With a mask
    /// and <paramref name="maskMoments"/> (our sparse semantics) the gradient is read as grad * mask and both moments
    /// are multiplied by the mask; without <paramref name="maskMoments"/> (the reference code's semantics) gradient
    /// and moments stay dense. Either way the updated weight is multiplied by the mask.</summary>
    void AdamWStep(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, Tensor? mask, in AdamWHyper hyper,
                   bool maskMoments);

    /// <summary>One AdamW step on each of several parameters: the result of <see cref="AdamWStep"/> on each in turn,
    /// bit for bit. A backend may run them together (the CPU backend: one parallel region for all of them, instead of
    /// a fork/join per parameter, most of which are small).</summary>
    void AdamWStepGroup(IReadOnlyList<AdamWItem> items, bool maskMoments);
}

/// <summary>One parameter of <see cref="IBackend.AdamWStepGroup"/>: its tensors and its step's
/// hyper-parameters.</summary>
internal readonly record struct AdamWItem(Tensor Param, Tensor Grad, Tensor ExpAvg, Tensor ExpAvgSq, Tensor? Mask,
                                          AdamWHyper Hyper);

/// <summary>Hyper-parameters of one AdamW step (step is 1-based, after increment).</summary>
internal readonly record struct AdamWHyper(float Lr, float Beta1, float Beta2, float Eps, float WeightDecay, long Step);
