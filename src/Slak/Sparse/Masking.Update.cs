// The prune/regrow round (slak-facts §2.4-2.5) and the per-step hook. Per masked layer: prune the ceil(p * nz)
// smallest-magnitude live weights (ties broken by index, so the round is deterministic), then regrow at random among
// the inactive positions (our semantics: exactly as many; the reference's: as many in expectation), or exactly as many
// by largest |gradient|. Keys and selections are in SparseSelection, shared with the device implementation. Our semantics zero
// the weights and AdamW moments of every position that was not live-and-kept, so regrown weights start from a clean
// zero state; the reference semantics only re-apply the mask to the weights (moments untouched).
using System.Globalization;
using System.Text;
using Slak.Optim;

namespace Slak.Sparse;

public sealed partial class Masking
{
    private CosineDecay? _decay;

    /// <summary>Sets the total number of optimizer steps, which the prune-rate decay spans.</summary>
    public void SetTotalSteps(long totalSteps) => _decay = new CosineDecay(Options.PruneRate, totalSteps);

    /// <summary>The prune rate after <paramref name="step"/> optimizer steps.</summary>
    public double PruneRateAt(long step) =>
        (_decay ?? throw new InvalidOperationException("call SetTotalSteps before stepping the masking")).ValueAt(step);

    /// <summary>Call after each optimizer step (and before gradients are cleared) with the number of optimizer steps
    /// done so far; runs a prune/regrow round when that count is a multiple of the update frequency.
    /// Returns true when masks changed.</summary>
    public bool AfterOptimizerStep(long step, AdamW? optimizer)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "step counts optimizer steps and starts at 1");
        if (Options.UpdateFrequency == 0 || step % Options.UpdateFrequency != 0) return false;
        double rate = PruneRateAt(step);
        Update(rate, optimizer);
        Log?.Invoke(FormatDensityTable(string.Create(CultureInfo.InvariantCulture, $"step {step}: prune/regrow with rate {rate:F4}")));
        return true;
    }

    /// <summary>One prune/regrow round at rate <paramref name="rate"/> on every masked layer.</summary>
    public void Update(double rate, AdamW? optimizer)
    {
        if (!(rate is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(rate), rate, "prune rate must be in [0, 1]");
        foreach (var layer in _layers) UpdateLayer(layer, rate, optimizer);
    }

    private void UpdateLayer(MaskedLayer layer, double rate, AdamW? optimizer)
    {
        var mask = layer.Host;
        var w = layer.Parameter.ToArray();
        long liveCount = 0;
        foreach (byte b in mask) liveCount += b;
        int numRemove = (int)Math.Ceiling(rate * liveCount);
        if (numRemove == 0) return;
        var keys = new uint[mask.Length];
        for (int i = 0; i < keys.Length; i++) keys[i] = mask[i] != 0 ? SparseSelection.MagnitudeKey(w[i]) : SparseSelection.Ineligible;
        var keep = (byte[])mask.Clone(); // live before and not pruned
        foreach (int i in SparseSelection.SmallestK(keys, numRemove)) keep[i] = 0;
        var grown = (byte[])keep.Clone();
        ulong roundSeed = Random.NextUInt64();
        if (Options.Growth == SparseGrowth.Random) GrowRandom(grown, numRemove, roundSeed);
        else GrowByGradient(layer, grown, numRemove);
        Array.Copy(grown, mask, mask.Length);
        layer.Upload();

        var be = layer.Parameter.Backend;
        if (Options.Semantics == SparseSemantics.Ours)
        {
            using var scope = TensorScope.Begin();
            var keepTensor = Tensor.Empty(layer.Parameter.Shape, layer.Parameter.Device);
            var kf = new float[keep.Length];
            for (int i = 0; i < kf.Length; i++) kf[i] = keep[i];
            be.CopyFromHost(kf, keepTensor);
            be.Mul(layer.Parameter, keepTensor, layer.Parameter);
            optimizer?.MaskState(layer.Name, keepTensor);
        }
        else be.Mul(layer.Parameter, layer.Mask, layer.Parameter);
    }

    /// <summary>Random regrowth among the inactive positions (those just pruned included). Our semantics regrow
    /// exactly <paramref name="removed"/> of them (the smallest random keys), so live counts never drift; the
    /// reference semantics keep each with probability removed / inactive, as the reference code does.</summary>
    private void GrowRandom(byte[] mask, int removed, ulong roundSeed)
    {
        if (Options.Semantics == SparseSemantics.Ours)
        {
            var keys = new uint[mask.Length];
            for (int i = 0; i < keys.Length; i++)
                keys[i] = mask[i] == 0 ? SparseSelection.RandomKey(roundSeed, i) : SparseSelection.Ineligible;
            foreach (int i in SparseSelection.SmallestK(keys, removed)) mask[i] = 1;
            return;
        }
        long zeros = 0;
        foreach (byte b in mask) zeros += 1 - b;
        if (zeros == 0) return;
        double q = (double)removed / zeros;
        for (int i = 0; i < mask.Length; i++)
            if (mask[i] == 0 && SparseSelection.Uniform(SparseSelection.RandomKey(roundSeed, i)) < q) mask[i] = 1;
    }

    private static void GrowByGradient(MaskedLayer layer, byte[] mask, int removed)
    {
        var grad = layer.Parameter.Grad?.ToArray() ?? throw new InvalidOperationException(
            $"gradient growth needs the gradient of '{layer.Name}' (run the update before clearing gradients)");
        var inactive = new List<int>();
        for (int i = 0; i < mask.Length; i++) if (mask[i] == 0) inactive.Add(i);
        inactive.Sort((a, b) =>
        {
            int c = MathF.Abs(grad[b]).CompareTo(MathF.Abs(grad[a]));
            return c != 0 ? c : a.CompareTo(b);
        });
        for (int j = 0; j < Math.Min(removed, inactive.Count); j++) mask[inactive[j]] = 1;
    }

    /// <summary>A table of every masked layer: shape, elements, live count and density, plus the total.</summary>
    public string FormatDensityTable(string title)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{title}: overall density {OverallDensity:F4} ({_layers.Count} masked layers)");
        int width = Math.Max(5, _layers.Count == 0 ? 5 : _layers.Max(l => l.Name.Length));
        sb.AppendLine(CultureInfo.InvariantCulture, $"  {"layer".PadRight(width)}  {"shape",-18} {"numel",10} {"live",10} {"density",8}");
        foreach (var l in _layers)
        {
            string shape = "(" + string.Join(", ", l.Parameter.ShapeArray) + ")";
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {l.Name.PadRight(width)}  {shape,-18} {l.Numel,10} {l.Live,10} {l.Density,8:F4}");
        }
        return sb.ToString().TrimEnd();
    }
}
