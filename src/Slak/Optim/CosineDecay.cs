// The prune-rate decay of the reference (sparse_core.CosineDecay wrapping CosineAnnealingLR, slak-facts §2.1):
// p(t) = eta_min + (p0 - eta_min) (1 + cos(pi t / T)) / 2, stepped once per optimizer step. Past T we hold eta_min
// (the reference never goes past T; PyTorch's periodic continuation would climb back, which no one wants).
namespace Slak.Optim;

/// <summary>Cosine decay of the prune/regrow rate.</summary>
public sealed class CosineDecay
{
    /// <summary>Creates the decay.</summary>
    /// <param name="initial">p0.</param>
    /// <param name="totalSteps">T (the run's optimizer steps).</param>
    /// <param name="minimum">eta_min (0.005 in the reference).</param>
    public CosineDecay(double initial, long totalSteps, double minimum = 0.005)
    {
        if (!(initial is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(initial), initial, "prune rate must be in [0, 1]");
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "total steps must be >= 1");
        if (!(minimum is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(minimum), minimum, "minimum rate must be in [0, 1]");
        Initial = initial; TotalSteps = totalSteps; Minimum = minimum;
    }

    /// <summary>p0.</summary>
    public double Initial { get; }

    /// <summary>T.</summary>
    public long TotalSteps { get; }

    /// <summary>eta_min.</summary>
    public double Minimum { get; }

    /// <summary>p(t) for step t >= 0.</summary>
    public double ValueAt(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "step must be >= 0");
        long t = Math.Min(step, TotalSteps);
        return Minimum + (Initial - Minimum) * (1 + Math.Cos(Math.PI * t / TotalSteps)) / 2;
    }
}
