// Reference losses in float64: soft-target softmax cross-entropy (mean over rows) and label-smoothed targets.
namespace Slak.Tests.Support;

public static partial class Reference
{
    /// <summary>Row-wise softmax of (N, K).</summary>
    public static RefTensor Softmax(RefTensor logits)
    {
        int n = logits.Size(0), k = logits.Size(1);
        var p = new RefTensor(n, k);
        for (int r = 0; r < n; r++)
        {
            double max = double.NegativeInfinity, s = 0;
            for (int j = 0; j < k; j++) max = Math.Max(max, logits[r, j]);
            for (int j = 0; j < k; j++) s += Math.Exp(logits[r, j] - max);
            for (int j = 0; j < k; j++) p[r, j] = Math.Exp(logits[r, j] - max) / s;
        }
        return p;
    }

    /// <summary>mean over rows of -sum_k t[n,k] log softmax(z)[n,k], as a scalar.</summary>
    public static RefTensor SoftTargetCrossEntropy(RefTensor logits, RefTensor targets)
    {
        int n = logits.Size(0), k = logits.Size(1);
        double total = 0;
        for (int r = 0; r < n; r++)
        {
            double max = double.NegativeInfinity, s = 0;
            for (int j = 0; j < k; j++) max = Math.Max(max, logits[r, j]);
            for (int j = 0; j < k; j++) s += Math.Exp(logits[r, j] - max);
            double lse = max + Math.Log(s);
            for (int j = 0; j < k; j++) total -= targets[r, j] * (logits[r, j] - lse);
        }
        return new RefTensor([total / n], []);
    }

    /// <summary>Smoothed one-hot targets: 1 - s + s/K on the label, s/K elsewhere.</summary>
    public static RefTensor SmoothedTargets(int[] labels, int classes, double smoothing)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var t = new RefTensor(labels.Length, classes);
        for (int r = 0; r < labels.Length; r++)
            for (int j = 0; j < classes; j++)
                t[r, j] = (j == labels[r] ? 1 - smoothing : 0) + smoothing / classes;
        return t;
    }
}
