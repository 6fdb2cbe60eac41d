// Exponential moving average of the weights (timm ModelEma, decay d), kept on the host, with the reference's masked
// rule for sparse tensors (slak-facts §2.6): ema = (d*ema + (1-d)*w) * mask, and positions that are live but whose
// ema is exactly 0 (newly active) jump straight to w. Other entries (incl. BN buffers) use the plain rule.
using Slak.NN;
using Slak.Sparse;

namespace Slak.Train;

/// <summary>Weight EMA over a module's state_dict.</summary>
public sealed class ModelEma
{
    private readonly List<(string Name, Tensor Tensor, float[] Ema)> _entries = [];

    /// <summary>Starts the average at the module's current values.</summary>
    public ModelEma(Module module, double decay)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (!(decay is > 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(decay), decay, "EMA decay must be in (0, 1)");
        Decay = decay;
        foreach (var (name, t) in module.StateDict()) _entries.Add((name, t, t.ToArray()));
    }

    /// <summary>The decay.</summary>
    public double Decay { get; }

    /// <summary>Names and averaged values (state_dict order).</summary>
    public IEnumerable<(string Name, float[] Values, int[] Shape)> Entries => _entries.Select(e => (e.Name, e.Ema, e.Tensor.ShapeArray));

    /// <summary>One update from the module's current values.</summary>
    public void Update(Masking? masking)
    {
        float d = (float)Decay, e1 = 1 - d;
        foreach (var (name, t, ema) in _entries)
        {
            var w = t.ToArray();
            var layer = masking?.Find(name);
            if (layer is null)
            {
                for (int i = 0; i < w.Length; i++) ema[i] = d * ema[i] + e1 * w[i];
                continue;
            }
            var mask = layer.MaskBytes();
            for (int i = 0; i < w.Length; i++)
            {
                if (mask[i] == 0) ema[i] = 0;
                else ema[i] = ema[i] == 0 ? w[i] : d * ema[i] + e1 * w[i];
            }
        }
    }

    /// <summary>Replaces the averages (checkpoint restore).</summary>
    public void Load(string name, ReadOnlySpan<float> values)
    {
        var entry = _entries.FirstOrDefault(e => e.Name == name);
        if (entry.Ema is null) throw new ArgumentException($"the EMA has no entry '{name}'", nameof(name));
        if (values.Length != entry.Ema.Length)
            throw new ArgumentException($"EMA entry '{name}' has {entry.Ema.Length} values, got {values.Length}", nameof(values));
        values.CopyTo(entry.Ema);
    }

    /// <summary>Copies the averages into the module and returns the module's previous values (to restore).</summary>
    public List<float[]> SwapIn()
    {
        var saved = new List<float[]>();
        foreach (var (_, t, ema) in _entries)
        {
            saved.Add(t.ToArray());
            t.Backend.CopyFromHost(ema, t);
        }
        return saved;
    }

    /// <summary>Restores values returned by <see cref="SwapIn"/>.</summary>
    public void SwapOut(List<float[]> saved)
    {
        ArgumentNullException.ThrowIfNull(saved);
        for (int i = 0; i < _entries.Count; i++) _entries[i].Tensor.Backend.CopyFromHost(saved[i], _entries[i].Tensor);
    }
}
