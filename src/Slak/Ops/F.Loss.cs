// Classification loss: softmax cross-entropy against soft targets (what mixup/cutmix and label smoothing produce;
// timm's SoftTargetCrossEntropy), mean over the batch, plus the helper that turns hard labels into smoothed targets.
using Slak.Autograd;

namespace Slak;

public static partial class F
{
    /// <summary>mean over rows of -sum_k targets[n,k] * log_softmax(logits)[n,k]; logits and targets (N, K).</summary>
    public static Tensor SoftTargetCrossEntropy(Tensor logits, Tensor targets)
    {
        const string op = nameof(SoftTargetCrossEntropy);
        Check.Rank(logits, 2, op, nameof(logits), "(N, K)");
        Check.SameShape(op, logits, nameof(logits), targets, nameof(targets));
        if (logits.Size(0) == 0 || logits.Size(1) == 0)
            throw new ArgumentException($"{op}: logits {Shapes.Format(logits.Shape)} is empty", nameof(logits));
        var probs = Like(logits);
        var loss = Tensor.Empty([], logits.Device);
        var be = logits.Backend;
        be.SoftmaxCrossEntropy(logits, targets, probs, loss);
        return AutogradEngine.Record(loss, op, [logits], g =>
        {
            var gl = Like(logits);
            be.SoftmaxCrossEntropyBackward(probs, targets, g, gl);
            return [gl];
        });
    }

    /// <summary>Cross-entropy of hard labels with label smoothing (targets: 1 - s + s/K on the label, s/K
    /// elsewhere).</summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> labels, float smoothing = 0f)
    {
        Check.Rank(logits, 2, nameof(CrossEntropy), nameof(logits), "(N, K)");
        if (labels.Length != logits.Size(0))
            throw new ArgumentException($"{nameof(CrossEntropy)}: {labels.Length} labels for logits {Shapes.Format(logits.Shape)} with {logits.Size(0)} rows", nameof(labels));
        var targets = SmoothedTargets(labels, logits.Size(1), smoothing, logits.Device); // kept alive by the graph
        return SoftTargetCrossEntropy(logits, targets);
    }

    /// <summary>One-hot targets (N, K) with label smoothing <paramref name="smoothing"/>.</summary>
    public static Tensor SmoothedTargets(ReadOnlySpan<int> labels, int classes, float smoothing, Device device)
    {
        if (classes < 1)
            throw new ArgumentOutOfRangeException(nameof(classes), classes, $"{nameof(SmoothedTargets)}: classes must be >= 1, got {classes}");
        if (!(smoothing >= 0 && smoothing < 1))
            throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, "label smoothing must be in [0, 1)");
        var t = new float[labels.Length * classes];
        float off = smoothing / classes, on = 1f - smoothing + off;
        for (int n = 0; n < labels.Length; n++)
        {
            if ((uint)labels[n] >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(labels), labels[n], $"label at row {n} must be in [0, {classes})");
            t.AsSpan(n * classes, classes).Fill(off);
            t[n * classes + labels[n]] = on;
        }
        return Tensor.FromArray(t, [labels.Length, classes], device);
    }
}
