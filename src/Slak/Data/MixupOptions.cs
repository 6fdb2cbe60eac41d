// Mixup / CutMix settings with timm's meaning (batch mode): with probability Prob a batch is mixed; when both alphas
// are positive, CutMix is chosen with probability SwitchProb; targets are label-smoothed one-hots mixed by lambda.
namespace Slak.Data;

/// <summary>Mixup/CutMix settings.</summary>
public sealed record MixupOptions
{
    /// <summary>Beta(alpha, alpha) for mixup (0: off).</summary>
    public double MixupAlpha { get; init; }

    /// <summary>Beta(alpha, alpha) for CutMix (0: off).</summary>
    public double CutmixAlpha { get; init; }

    /// <summary>Probability that a batch is mixed at all.</summary>
    public double Prob { get; init; } = 1.0;

    /// <summary>Probability of CutMix instead of mixup when both are on.</summary>
    public double SwitchProb { get; init; } = 0.5;

    /// <summary>True when either mixing is on.</summary>
    public bool Enabled => (MixupAlpha > 0 || CutmixAlpha > 0) && Prob > 0;

    /// <summary>Throws naming a bad value.</summary>
    public void Validate()
    {
        if (!(MixupAlpha >= 0)) throw new ArgumentOutOfRangeException(nameof(MixupAlpha), MixupAlpha, "mixup alpha must be >= 0");
        if (!(CutmixAlpha >= 0)) throw new ArgumentOutOfRangeException(nameof(CutmixAlpha), CutmixAlpha, "cutmix alpha must be >= 0");
        if (!(Prob is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(Prob), Prob, "mix probability must be in [0, 1]");
        if (!(SwitchProb is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(SwitchProb), SwitchProb, "switch probability must be in [0, 1]");
    }
}
