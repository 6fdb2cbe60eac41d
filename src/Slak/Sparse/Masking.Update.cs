// The prune/regrow round (slak-facts §2.4-2.5) and the per-step hook. Per masked layer: prune the ceil(p * nz)
// smallest-magnitude live weights (ties broken by index, so the round is deterministic), then regrow at random among
// the inactive positions (our semantics: exactly as many; the reference's: as many in expectation), or exactly as many
// by largest |gradient|. The round runs on the parameter's backend (IBackend.SparsePruneRegrow: CUDA kernels on a
// GPU, host loops on the CPU), with the keys and selections of SparseSelection; only the round seed goes down and
// the new live count comes back. Our semantics zero the weights and AdamW moments of every position that was not
// live-and-kept, so regrown weights start from a clean zero state; the reference semantics only re-apply the mask to
// the weights (moments untouched).
using System.Globalization;
using System.Text;
using Slak.Backends;
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

    /// <summary>Receives the full density table after every prune/regrow round (a verbose log; null: not built).
    /// <see cref="Masking.Log"/> gets one summary line per round.</summary>
    public Action<string>? RoundTableLog { get; set; }

    /// <summary>Call after each optimizer step (and before gradients are cleared) with the number of optimizer steps
    /// done so far; runs a prune/regrow round when that count is a multiple of the update frequency.
    /// Returns true when masks changed.</summary>
    public bool AfterOptimizerStep(long step, AdamW? optimizer)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "step counts optimizer steps and starts at 1");
        if (Options.UpdateFrequency == 0 || step % Options.UpdateFrequency != 0) return false;
        double rate = PruneRateAt(step);
        long liveBefore = _layers.Sum(l => l.Live);
        long pruned = _layers.Sum(l => (long)Math.Ceiling(rate * l.Live));
        Update(rate, optimizer);
        long regrown = _layers.Sum(l => l.Live) - (liveBefore - pruned);
        string title = string.Create(CultureInfo.InvariantCulture, $"step {step}: prune/regrow with rate {rate:F4}");
        Log?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"{title}: {pruned:N0} weights pruned, {regrown:N0} regrown in {_layers.Count} layers, overall density {OverallDensity:F4}"));
        RoundTableLog?.Invoke(FormatDensityTable(title));
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
        long numRemove = (long)Math.Ceiling(rate * layer.Live);
        if (numRemove == 0) return;
        var growth = Options.Growth == SparseGrowth.Gradient ? SparseRegrowth.Gradient
            : Options.Semantics == SparseSemantics.Ours ? SparseRegrowth.RandomExact : SparseRegrowth.RandomBernoulli;
        Tensor? grad = null;
        if (growth == SparseRegrowth.Gradient)
            grad = layer.Parameter.Grad ?? throw new InvalidOperationException(
                $"gradient growth needs the gradient of '{layer.Name}' (run the update before clearing gradients)");
        ulong roundSeed = Random.NextUInt64();

        var be = layer.Parameter.Backend;
        using var scope = TensorScope.Begin();
        var keep = Tensor.Empty(layer.Parameter.Shape, layer.Parameter.Device); // live before and not pruned
        layer.MaskChanged(be.SparsePruneRegrow(layer.Parameter, layer.Mask, grad, keep, numRemove, growth, roundSeed));
        if (Options.Semantics == SparseSemantics.Ours)
        {
            be.Mul(layer.Parameter, keep, layer.Parameter);
            optimizer?.MaskState(layer.Name, keep);
        }
        else be.Mul(layer.Parameter, layer.Mask, layer.Parameter);
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
