// timm's DropPath (per-sample stochastic depth) as a module, so Train()/Eval() reach it. Its generator is set by the
// owning model (one shared, checkpointable SlakRandom), never a hidden global one.
namespace Slak.NN;

/// <summary>Per-sample stochastic depth with drop probability <see cref="Rate"/>; identity in evaluation.</summary>
public sealed class DropPath : Module
{
    /// <summary>Creates the layer.</summary>
    public DropPath(float rate)
    {
        if (!(rate >= 0 && rate < 1))
            throw new ArgumentOutOfRangeException(nameof(rate), rate, "drop path rate must be in [0, 1)");
        Rate = rate;
    }

    /// <summary>Drop probability.</summary>
    public float Rate { get; }

    /// <summary>Generator for the per-sample draws (required in training when Rate > 0).</summary>
    public SlakRandom? Random { get; set; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        if (!Training || Rate == 0f) return input;
        var rng = Random ?? throw new InvalidOperationException(
            $"DropPath(rate {Rate}) in training needs a generator: set Random (SlakModel does this for its blocks)");
        return F.DropPath(input, Rate, true, rng);
    }

    /// <summary>The per-sample factors this layer would multiply a batch of <paramref name="n"/> by (the same draws
    /// as <see cref="Forward"/>), for a fused operator that applies them itself; null when nothing is dropped
    /// (evaluation or rate 0).</summary>
    internal Tensor? SampleScale(int n, Device device)
    {
        if (!Training || Rate == 0f) return null;
        var rng = Random ?? throw new InvalidOperationException(
            $"DropPath(rate {Rate}) in training needs a generator: set Random (SlakModel does this for its blocks)");
        return F.DropPathScale(n, Rate, true, rng, device);
    }
}
