// Loss kernels of the CPU backend (family loss): softmax cross-entropy with soft targets (mixup/cutmix and label
// smoothing produce soft targets).
namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void SoftmaxCrossEntropy(Tensor logits, Tensor targets, Tensor probs, Tensor loss)
    {
        int n = logits.Size(0), k = logits.Size(1);
        var rowLoss = new double[n];
        CpuParallel.For(0, n, logits.Numel, r =>
        {
            var z = S(logits).Slice(r * k, k);
            var t = S(targets).Slice(r * k, k);
            var p = S(probs).Slice(r * k, k);
            float max = float.NegativeInfinity;
            for (int j = 0; j < k; j++) max = MathF.Max(max, z[j]);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(z[j] - max);
            double lse = max + Math.Log(sum), l = 0;
            for (int j = 0; j < k; j++)
            {
                p[j] = (float)Math.Exp(z[j] - lse);
                if (t[j] != 0) l -= t[j] * (z[j] - lse);
            }
            rowLoss[r] = l;
        });
        double total = 0;
        foreach (double l in rowLoss) total += l;
        S(loss)[0] = (float)(total / n);
    }

    /// <inheritdoc />
    public void SoftmaxCrossEntropyBackward(Tensor probs, Tensor targets, Tensor gradLoss, Tensor dlogits)
    {
        int n = probs.Size(0), k = probs.Size(1);
        float scale = S(gradLoss)[0] / n;
        CpuParallel.For(0, n, probs.Numel, r =>
        {
            var p = S(probs).Slice(r * k, k);
            var t = S(targets).Slice(r * k, k);
            var d = S(dlogits).Slice(r * k, k);
            float tsum = 0;
            for (int j = 0; j < k; j++) tsum += t[j];
            for (int j = 0; j < k; j++) d[j] = scale * (p[j] * tsum - t[j]);
        });
    }
}
