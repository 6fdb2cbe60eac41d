// The validation hold-out of a training set (issue 21 item 4: model selection never looks at the test set). A
// stratified part of every class is held out with a fixed split seed that does not depend on the run's --seed, so
// every seed of a comparison sees the same validation images; both parts keep the original order.
namespace Slak.Data;

/// <summary>Stratified train/validation split of an in-memory data set.</summary>
public static class ValidationSplit
{
    /// <summary>The seed of every hold-out (fixed: independent of the training seed).</summary>
    public const ulong SplitSeed = 0x5EED_0F_5A11_D001UL;

    /// <summary>Indices of the held-out images, sorted ascending: <c>ceil(fraction x count)</c> images in all,
    /// shared among the classes in proportion to their sizes (floors first, then the largest remainders, ties to the
    /// lower class; a class keeps at least one training image), each class's share drawn by a shuffle seeded with
    /// <see cref="SplitSeed"/> and the class.</summary>
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
        int n = labels.Count;
        int total = (int)Math.Ceiling(fraction * n - 1e-9);
        var take = new int[classCount];
        var remainder = new double[classCount];
        for (int k = 0; k < classCount; k++)
        {
            double share = (double)total * byClass[k].Count / Math.Max(1, n);
            take[k] = Math.Min((int)Math.Floor(share), Math.Max(0, byClass[k].Count - 1));
            remainder[k] = share - Math.Floor(share);
        }
        int missing = total - take.Sum();
        foreach (int k in Enumerable.Range(0, classCount).OrderByDescending(k => remainder[k]).ThenBy(k => k).ToList())
        {
            if (missing <= 0) break;
            if (take[k] < byClass[k].Count - 1) { take[k]++; missing--; }
        }
        var held = new List<int>();
        for (int k = 0; k < classCount; k++)
        {
            var members = byClass[k];
            if (take[k] == 0) continue;
            var rng = new SlakRandom(BatchLoader.SeedFor(SplitSeed, k, members.Count));
            for (int i = members.Count - 1; i > 0; i--)
            {
                int j = rng.NextInt(i + 1);
                (members[i], members[j]) = (members[j], members[i]);
            }
            held.AddRange(members.Take(take[k]));
        }
        if (held.Count == 0)
            throw new ArgumentException(FormattableString.Invariant(
                $"a validation fraction of {fraction} of {labels.Count} training images holds out no image (every class has a single image); give a val/ folder"), nameof(fraction));
        held.Sort();
        return held.ToArray();
    }

    /// <summary>Splits <paramref name="data"/> into the images kept for training and the held-out validation
    /// images (<see cref="HeldOutIndices"/>), both in their original order.</summary>
    public static (ImageDataset Train, ImageDataset Val) Split(ImageDataset data, double fraction)
    {
        var (train, val) = Split((IImageSource)data, fraction);
        return ((ImageDataset)train, (ImageDataset)val);
    }

    /// <summary>Splits any image source (see <see cref="Split(ImageDataset, double)"/>).</summary>
    public static (IImageSource Train, IImageSource Val) Split(IImageSource data, double fraction)
    {
        ArgumentNullException.ThrowIfNull(data);
        var labels = new int[data.Count];
        for (int i = 0; i < labels.Length; i++) labels[i] = data.LabelAt(i);
        var held = HeldOutIndices(labels, data.ClassCount, fraction);
        var isHeld = new bool[data.Count];
        foreach (int i in held) isHeld[i] = true;
        var kept = Enumerable.Range(0, data.Count).Where(i => !isHeld[i]).ToArray();
        return (data.Subset(kept), data.Subset(held));
    }
}
