// The validation hold-out of a training set (issue 21 item 4: model selection never looks at the test set). A
// stratified part of every class is held out with a fixed split seed that does not depend on the run's --seed, so
// every seed of a comparison sees the same validation images; both parts keep the original order.
namespace Slak.Data;

/// <summary>Stratified train/validation split of an in-memory data set.</summary>
public static class ValidationSplit
{
    /// <summary>The seed of every hold-out (fixed: independent of the training seed).</summary>
    public const ulong SplitSeed = 0x5EED_0F_5A11_D001UL;

    /// <summary>Indices of the held-out images: per class, <c>round(fraction x class count)</c> images (at most
    /// all but one), drawn by a shuffle seeded with <see cref="SplitSeed"/> and the class; sorted ascending.</summary>
    /// <exception cref="ArgumentException">The fraction is outside (0, 1) or holds out no image.</exception>
    public static int[] HeldOutIndices(IReadOnlyList<int> labels, int classCount, double fraction)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (!(fraction is > 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the validation fraction must be in (0, 1)");
        var byClass = new List<int>[classCount];
        for (int k = 0; k < classCount; k++) byClass[k] = [];
        for (int i = 0; i < labels.Count; i++)
        {
            if ((uint)labels[i] >= (uint)classCount)
                throw new ArgumentException($"label {i} is {labels[i]}, outside [0, {classCount})", nameof(labels));
            byClass[labels[i]].Add(i);
        }
        var held = new List<int>();
        for (int k = 0; k < classCount; k++)
        {
            var members = byClass[k];
            int take = Math.Min(members.Count - 1, (int)Math.Round(fraction * members.Count, MidpointRounding.AwayFromZero));
            if (take <= 0) continue;
            var rng = new SlakRandom(BatchLoader.SeedFor(SplitSeed, k, members.Count));
            for (int i = members.Count - 1; i > 0; i--)
            {
                int j = rng.NextInt(i + 1);
                (members[i], members[j]) = (members[j], members[i]);
            }
            held.AddRange(members.Take(take));
        }
        if (held.Count == 0)
            throw new ArgumentException(FormattableString.Invariant(
                $"a validation fraction of {fraction} of {labels.Count} training images holds out no image; give a larger --val-split or a val/ folder"), nameof(fraction));
        held.Sort();
        return held.ToArray();
    }

    /// <summary>Splits <paramref name="data"/> into the images kept for training and the held-out validation
    /// images (<see cref="HeldOutIndices"/>), both in their original order.</summary>
    public static (ImageDataset Train, ImageDataset Val) Split(ImageDataset data, double fraction)
    {
        ArgumentNullException.ThrowIfNull(data);
        var held = HeldOutIndices(data.Labels, data.ClassCount, fraction);
        var isHeld = new bool[data.Count];
        foreach (int i in held) isHeld[i] = true;
        var kept = Enumerable.Range(0, data.Count).Where(i => !isHeld[i]).ToArray();
        return (data.Select(kept), data.Select(held));
    }
}
