// SLaK's LayerNorm (models/SLaK.py L237-261): channels_last normalizes the last dimension (the block norm and the
// final norm on the pooled vector); channels_first normalizes the channels of an (N, C, H, W) map per pixel (stem
// and downsampling norms). Biased variance; eps is explicit because SLaK uses 1e-6, not PyTorch's 1e-5.
namespace Slak.NN;

/// <summary>Which dimension a <see cref="LayerNorm"/> normalizes.</summary>
public enum LayerNormFormat
{
    /// <summary>The last dimension (..., C).</summary>
    ChannelsLast,
    /// <summary>Dimension 1 of an (N, C, H, W) tensor, per pixel.</summary>
    ChannelsFirst,
}

/// <summary>Layer normalization with weight (C) = 1 and bias (C) = 0 at init.</summary>
public sealed class LayerNorm : Module
{
    /// <summary>Creates the layer.</summary>
    public LayerNorm(int channels, ModuleInit init, float eps = 1e-6f,
                     LayerNormFormat format = LayerNormFormat.ChannelsLast)
    {
        ArgumentNullException.ThrowIfNull(init);
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), channels, "must be >= 1");
        if (!(eps > 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "must be > 0");
        Channels = channels;
        Eps = eps;
        Format = format;
        Weight = RegisterParameter("weight", init.Constant([channels], 1f));
        Bias = RegisterParameter("bias", init.Constant([channels], 0f));
    }

    /// <summary>Normalized size C.</summary>
    public int Channels { get; }

    /// <summary>Epsilon added to the variance.</summary>
    public float Eps { get; }

    /// <summary>Channels-last or channels-first.</summary>
    public LayerNormFormat Format { get; }

    /// <summary>Scale (C).</summary>
    public Tensor Weight { get; }

    /// <summary>Shift (C).</summary>
    public Tensor Bias { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Format == LayerNormFormat.ChannelsLast
        ? F.LayerNorm(input, Weight, Bias, Eps)
        : F.LayerNormChannelsFirst(input, Weight, Bias, Eps);
}
