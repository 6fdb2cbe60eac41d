// Dynamic sparse training (slak-facts §2): a 0/1 mask on every 2-D and 4-D parameter, initial layer densities by
// SNIP / ERK / uniform with random (Bernoulli) masks, layers that come out nearly dense dropped from masking, and a
// prune/regrow round every UpdateFrequency optimizer steps (Masking.Update.cs). Initial masks are drawn on the host
// (once per run) and uploaded; rounds then edit them on their device, in tensors whose identity never changes, so
// the optimizer and the depthwise modules can hold them.
// All randomness comes from one SlakRandom whose state is checkpointed, so runs are deterministic for a seed.
using Slak.Optim;

namespace Slak.Sparse;

/// <summary>Masks, their initialisation and the prune/regrow schedule.</summary>
public sealed partial class Masking
{
    private readonly List<(string Name, Tensor Parameter)> _candidates;
    private readonly List<MaskedLayer> _layers = [];

    /// <summary>Creates the masking for the rank-2 and rank-4 parameters of <paramref name="parameters"/>
    /// (call <see cref="Initialize"/> or <see cref="LoadMasks"/> next).</summary>
    public Masking(IEnumerable<(string Name, Tensor Tensor)> parameters, SparseOptions options, SlakRandom random)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(random);
        options.Validate();
        Options = options;
        Random = random;
        _candidates = parameters.Where(p => p.Tensor.Rank is 2 or 4).ToList();
        if (_candidates.Count == 0)
            throw new ArgumentException("no parameter of rank 2 or 4 to sparsify", nameof(parameters));
        foreach (var (name, p) in _candidates)
        {
            // The prune/regrow round ranks positions by 32-bit indices (SparseSelection's keys).
            if (p.Numel > uint.MaxValue)
                throw new ArgumentException($"parameter '{name}' {p.Describe()} has {p.Numel} elements; masking supports at most 2^32 - 1 per parameter", nameof(parameters));
        }
    }

    /// <summary>The options.</summary>
    public SparseOptions Options { get; }

    /// <summary>The generator used for masks and random regrowth (checkpointed by the trainer).</summary>
    public SlakRandom Random { get; }

    /// <summary>Masked layers (after initialisation), in parameter order.</summary>
    public IReadOnlyList<MaskedLayer> Layers => _layers;

    /// <summary>Names and parameters eligible for masking (rank 2 or 4), in parameter order.</summary>
    public IReadOnlyList<(string Name, Tensor Parameter)> Candidates => _candidates;

    /// <summary>Receives log lines (density tables); null: silent.</summary>
    public Action<string>? Log { get; set; }

    /// <summary>Called with (parameter name, mask or null) whenever a layer's mask tensor is created or dropped, so
    /// that modules which can skip pruned taps (depthwise convolutions) get it.</summary>
    public Action<string, Tensor?>? MaskBinder { get; set; }

    /// <summary>The masked layer for a parameter name, or null when that parameter is dense.</summary>
    public MaskedLayer? Find(string name) => _layers.FirstOrDefault(l => l.Name == name);

    /// <summary>Live fraction over all candidate parameters (dense ones count fully).</summary>
    public double OverallDensity
    {
        get
        {
            double live = 0, total = 0;
            foreach (var (name, p) in _candidates)
            {
                total += p.Numel;
                live += Find(name)?.Live ?? p.Numel;
            }
            return total == 0 ? 1 : live / total;
        }
    }

    /// <summary>Draws the initial masks. For <see cref="SparseInit.Snip"/>, <paramref name="gradients"/> must hold
    /// each candidate's gradient of one batch's cross-entropy (host copies, by name).</summary>
    public void Initialize(IReadOnlyDictionary<string, float[]>? gradients = null)
    {
        if (_layers.Count > 0) throw new InvalidOperationException("masks are already initialised");
        var densities = Options.Init switch
        {
            SparseInit.Uniform => _candidates.Select(_ => Options.Density).ToArray(),
            SparseInit.Erk => ErkDensities(_candidates.Select(c => c.Parameter.ShapeArray).ToList(), Options.Density),
            SparseInit.Snip => SnipDensities(SnipScores(gradients ?? throw new ArgumentNullException(nameof(gradients),
                "snip initialisation needs one batch of gradients"))),
            _ => throw new ArgumentOutOfRangeException(nameof(Options), Options.Init, "unknown sparse init"),
        };
        for (int i = 0; i < _candidates.Count; i++)
        {
            var (name, p) = _candidates[i];
            var host = new byte[p.Numel];
            double d = densities[i];
            for (int j = 0; j < host.Length; j++) host[j] = Random.NextDouble() < d ? (byte)1 : (byte)0;
            long live = 0;
            foreach (byte b in host) live += b;
            if (live >= Options.DenseThreshold * host.Length) continue;
            AddLayer(name, p, host);
        }
        ApplyToWeights();
        Log?.Invoke(FormatDensityTable("initial masks"));
    }

    /// <summary>Restores masks saved by a checkpoint (name -> 0/1 bytes); candidates absent from
    /// <paramref name="masks"/> stay dense.</summary>
    public void LoadMasks(IReadOnlyDictionary<string, byte[]> masks)
    {
        ArgumentNullException.ThrowIfNull(masks);
        if (_layers.Count > 0) throw new InvalidOperationException("masks are already initialised");
        foreach (var key in masks.Keys)
            if (!_candidates.Any(c => c.Name == key))
                throw new ArgumentException($"checkpoint has a mask for '{key}', which is not a rank-2/4 parameter of this model", nameof(masks));
        foreach (var (name, p) in _candidates)
        {
            if (!masks.TryGetValue(name, out var bytes)) continue;
            if (bytes.Length != p.Numel)
                throw new ArgumentException($"mask '{name}' has {bytes.Length} elements, parameter {p.Describe()} has {p.Numel}", nameof(masks));
            var host = new byte[bytes.Length];
            for (int i = 0; i < host.Length; i++)
                host[i] = bytes[i] switch
                {
                    0 => 0, 1 => 1,
                    _ => throw new ArgumentException($"mask '{name}' holds {bytes[i]} at {i}; masks must be 0 or 1", nameof(masks)),
                };
            AddLayer(name, p, host);
        }
    }

    /// <summary>Gives the masks to the optimizer and selects its semantics (masked moments for ours).</summary>
    public void Attach(AdamW optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        optimizer.MaskMoments = Options.Semantics == SparseSemantics.Ours;
        foreach (var l in _layers) optimizer.SetMask(l.Name, l.Mask);
    }

    /// <summary>Weight *= mask for every masked layer.</summary>
    public void ApplyToWeights()
    {
        foreach (var l in _layers) l.Parameter.Backend.Mul(l.Parameter, l.Mask, l.Parameter);
    }

    private void AddLayer(string name, Tensor p, byte[] host)
    {
        Tensor mask;
        using (TensorScope.Untracked()) mask = Tensor.Empty(p.Shape, p.Device);
        var layer = new MaskedLayer(name, p, mask, 0);
        layer.Upload(host);
        _layers.Add(layer);
        MaskBinder?.Invoke(name, mask);
    }

    /// <summary>|w * g| per element for every candidate (SNIP's connection sensitivity).</summary>
    private List<float[]> SnipScores(IReadOnlyDictionary<string, float[]> gradients)
    {
        var scores = new List<float[]>();
        foreach (var (name, p) in _candidates)
        {
            if (!gradients.TryGetValue(name, out var g))
                throw new ArgumentException($"snip needs the gradient of '{name}'", nameof(gradients));
            if (g.Length != p.Numel)
                throw new ArgumentException($"gradient of '{name}' has {g.Length} elements, parameter has {p.Numel}", nameof(gradients));
            var w = p.ToArray();
            var s = new float[w.Length];
            for (int i = 0; i < s.Length; i++) s[i] = MathF.Abs(w[i] * g[i]);
            scores.Add(s);
        }
        return scores;
    }

    /// <summary>SNIP layer densities (slak-facts §2.3): keep k = int(total * density) scores globally; a layer's
    /// density is the fraction of its scores strictly above the k-th largest score.</summary>
    public double[] SnipDensities(IReadOnlyList<float[]> scores)
    {
        ArgumentNullException.ThrowIfNull(scores);
        long total = scores.Sum(s => (long)s.Length);
        var all = new float[total];
        long at = 0;
        foreach (var s in scores) { s.CopyTo(all, at); at += s.Length; }
        Array.Sort(all);
        long k = (long)(total * Options.Density);
        float threshold = k <= 0 ? float.PositiveInfinity : all[total - k];
        return scores.Select(s => s.Length == 0 ? 1.0 : (double)s.Count(v => v > threshold) / s.Length).ToArray();
    }

    /// <summary>ERK layer densities (slak-facts §2.3, erk_power_scale 1), forcing layers dense while
    /// eps * raw > 1 as the reference does.</summary>
    public static double[] ErkDensities(IReadOnlyList<int[]> shapes, double density)
    {
        ArgumentNullException.ThrowIfNull(shapes);
        if (!(density is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(density), density, "density must be in (0, 1]");
        var dense = new HashSet<int>();
        var raw = new double[shapes.Count];
        double eps;
        while (true)
        {
            double divisor = 0, rhs = 0, maxRaw = 0;
            for (int i = 0; i < shapes.Count; i++)
            {
                double n = shapes[i].Aggregate(1.0, (a, d) => a * d);
                if (dense.Contains(i)) { rhs -= n * (1 - density); continue; }
                rhs += n * density;
                raw[i] = shapes[i].Sum() / n;
                divisor += raw[i] * n;
                maxRaw = Math.Max(maxRaw, raw[i]);
            }
            if (divisor <= 0) { eps = 0; break; }
            eps = rhs / divisor;
            if (maxRaw * eps <= 1) break;
            for (int i = 0; i < shapes.Count; i++)
                if (!dense.Contains(i) && raw[i] == maxRaw) dense.Add(i);
        }
        return Enumerable.Range(0, shapes.Count).Select(i => dense.Contains(i) ? 1.0 : eps * raw[i]).ToArray();
    }
}
