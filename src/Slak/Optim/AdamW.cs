// AdamW as the SLaK recipe uses it (PyTorch semantics: decoupled weight decay, bias correction, betas 0.9/0.999,
// eps 1e-8), with two parameter groups (no decay on 1-D parameters and on any ".bias", slak-facts §3) and an
// optional 0/1 mask per parameter for sparse training. The per-element work is IBackend.AdamWStep, so the same
// optimizer runs on every device; the moments live on the parameter's device and outlive every TensorScope.
using Slak.Backends;

namespace Slak.Optim;

/// <summary>AdamW over named parameters, with per-parameter masks and checkpointable state.</summary>
public sealed class AdamW
{
    private readonly List<AdamWParamState> _states = [];
    private readonly Dictionary<string, AdamWParamState> _byName = new(StringComparer.Ordinal);

    /// <summary>Creates the optimizer. Parameters of rank 1 or named "*.bias" get no weight decay.</summary>
    /// <param name="parameters">Named parameters (e.g. Module.NamedParameters()).</param>
    /// <param name="lr">Initial learning rate (the trainer overwrites <see cref="Lr"/> each step).</param>
    /// <param name="weightDecay">Decoupled weight decay for the decayed group.</param>
    /// <param name="beta1">First-moment decay.</param>
    /// <param name="beta2">Second-moment decay.</param>
    /// <param name="eps">Denominator epsilon.</param>
    public AdamW(IEnumerable<(string Name, Tensor Tensor)> parameters, float lr = 1e-3f, float weightDecay = 0.05f,
                 float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(lr >= 0)) throw new ArgumentOutOfRangeException(nameof(lr), lr, "learning rate must be >= 0");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be >= 0");
        if (!(beta1 is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1)");
        if (!(beta2 is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1)");
        if (!(eps > 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be > 0");
        Lr = lr; WeightDecay = weightDecay; Beta1 = beta1; Beta2 = beta2; Eps = eps;
        foreach (var (name, p) in parameters)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(parameters));
            if (_byName.ContainsKey(name))
                throw new ArgumentException($"parameter name '{name}' appears twice", nameof(parameters));
            var state = new AdamWParamState(name, p, UsesWeightDecay(name, p));
            _states.Add(state);
            _byName.Add(name, state);
        }
    }

    /// <summary>Whether a parameter is in the decayed group: rank >= 2 and not a bias (slak-facts §3).</summary>
    public static bool UsesWeightDecay(string name, Tensor parameter)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(parameter);
        return parameter.Rank > 1 && !name.EndsWith(".bias", StringComparison.Ordinal) && name != "bias";
    }

    /// <summary>Learning rate of the next step.</summary>
    public float Lr { get; set; }

    /// <summary>Weight decay of the decayed group.</summary>
    public float WeightDecay { get; set; }

    /// <summary>First-moment decay.</summary>
    public float Beta1 { get; }

    /// <summary>Second-moment decay.</summary>
    public float Beta2 { get; }

    /// <summary>Denominator epsilon.</summary>
    public float Eps { get; }

    /// <summary>True: masked parameters get masked gradients and moments (our semantics); false: dense gradients
    /// and moments, weights re-zeroed after the step (the reference code's semantics).</summary>
    public bool MaskMoments { get; set; } = true;

    /// <summary>Per-parameter state, in registration order.</summary>
    public IReadOnlyList<AdamWParamState> States => _states;

    /// <summary>The state of the parameter called <paramref name="name"/>.</summary>
    public AdamWParamState this[string name] => _byName.TryGetValue(name, out var s) ? s
        : throw new KeyNotFoundException($"the optimizer has no parameter named '{name}'");

    /// <summary>Sets (or clears with null) the 0/1 mask of a parameter; the tensor is used, not copied.</summary>
    public void SetMask(string name, Tensor? mask)
    {
        var s = this[name];
        if (mask is not null && (!mask.Shape.SequenceEqual(s.Parameter.Shape) || mask.Device != s.Parameter.Device))
            throw new ArgumentException($"mask {mask.Describe()} does not match parameter {s.Parameter.Describe()}", nameof(mask));
        s.Mask = mask;
    }

    /// <summary>One step on every parameter that has a gradient (parameters without one are skipped and keep
    /// their step count, as in PyTorch).</summary>
    public void Step()
    {
        using var untracked = TensorScope.Untracked();
        using var profile = Diagnostics.OpProfiler.Measure("AdamW.Step");
        // One backend call for each run of parameters on the same backend (normally all of them): the CPU backend
        // updates them all in one parallel region.
        var group = new List<AdamWItem>(_states.Count);
        IBackend? backend = null;
        foreach (var s in _states)
        {
            var grad = s.Parameter.Grad;
            if (grad is null) continue;
            s.EnsureMoments();
            s.Step++;
            var hyper = new AdamWHyper(Lr, Beta1, Beta2, Eps, s.Decay ? WeightDecay : 0f, s.Step);
            var be = s.Parameter.Backend;
            if (backend is not null && !ReferenceEquals(be, backend))
            {
                backend.AdamWStepGroup(group, MaskMoments);
                group.Clear();
            }
            backend = be;
            group.Add(new AdamWItem(s.Parameter, grad, s.ExpAvg!, s.ExpAvgSq!, s.Mask, hyper));
        }
        if (group.Count > 0) backend!.AdamWStepGroup(group, MaskMoments);
    }

    /// <summary>Multiplies both moments of <paramref name="name"/> by <paramref name="keep"/> (0/1, same shape):
    /// used when masks change so that pruned positions carry no optimizer state (our semantics).</summary>
    public void MaskState(string name, Tensor keep)
    {
        var s = this[name];
        if (s.ExpAvg is null) return;
        var be = s.Parameter.Backend;
        be.Mul(s.ExpAvg, keep, s.ExpAvg);
        be.Mul(s.ExpAvgSq!, keep, s.ExpAvgSq!);
    }
}
