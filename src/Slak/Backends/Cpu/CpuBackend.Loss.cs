// Loss and optimizer kernels of the CPU backend: softmax cross-entropy with soft targets (mixup/cutmix and label
// smoothing produce soft targets) and the AdamW step with the sparse-training mask rules.
namespace Slak.Backends.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void SoftmaxCrossEntropy(Tensor logits, Tensor targets, Tensor probs, Tensor loss)
    {
        int n = logits.Size(0), k = logits.Size(1);
        var rowLoss = new double[n];
        CpuParallel.For(0, n, r =>
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
        CpuParallel.For(0, n, r =>
        {
            var p = S(probs).Slice(r * k, k);
            var t = S(targets).Slice(r * k, k);
            var d = S(dlogits).Slice(r * k, k);
            float tsum = 0;
            for (int j = 0; j < k; j++) tsum += t[j];
            for (int j = 0; j < k; j++) d[j] = scale * (p[j] * tsum - t[j]);
        });
    }

    /// <inheritdoc />
    public void AdamWStep(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, Tensor? mask, in AdamWHyper hyper,
                          bool maskMoments)
    {
        var h = hyper;
        float bc1 = 1f - MathF.Pow(h.Beta1, h.Step), bc2Sqrt = MathF.Sqrt(1f - MathF.Pow(h.Beta2, h.Step));
        float stepSize = h.Lr / bc1, decay = 1f - h.Lr * h.WeightDecay;
        bool masked = mask is not null;
        Chunked(param.Numel, (s, n) =>
        {
            var p = S(param).Slice(s, n);
            var g = S(grad).Slice(s, n);
            var m = S(expAvg).Slice(s, n);
            var v = S(expAvgSq).Slice(s, n);
            var k = masked ? S(mask!).Slice(s, n) : default;
            for (int i = 0; i < n; i++)
            {
                float gi = g[i];
                if (masked && maskMoments) gi *= k[i];
                float mi = h.Beta1 * m[i] + (1 - h.Beta1) * gi;
                float vi = h.Beta2 * v[i] + (1 - h.Beta2) * gi * gi;
                if (masked && maskMoments) { mi *= k[i]; vi *= k[i]; }
                m[i] = mi;
                v[i] = vi;
                float pi = p[i] * decay - stepSize * mi / (MathF.Sqrt(vi) / bc2Sqrt + h.Eps);
                p[i] = masked ? pi * k[i] : pi;
            }
        });
    }
}
