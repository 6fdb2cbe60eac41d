// The model's constructor arguments, exactly as the reference SLaK() takes them (models/SLaK.py), which is also the
// schema of config.json: in_chans, num_classes, depths, dims, drop_path_rate, layer_scale_init_value,
// head_init_scale, kernel_size ([K1, K2, K3, K4, N]), width_factor, Decom, bn. Checkpoints do not record the
// architecture (reference issues #16, #19), so this file travels next to the weights. dims are the BASE widths;
// the model applies width_factor by truncation, int(d * width_factor), like the reference.
namespace Slak.Models;

/// <summary>Architecture of a SLaK / ConvNeXt / RepLKNet-style model (the reference constructor arguments).</summary>
public sealed partial record ModelConfig
{
    /// <summary>Input channels (JSON in_chans).</summary>
    public int InChans { get; init; } = 3;

    /// <summary>Classes of the head (JSON num_classes).</summary>
    public int NumClasses { get; init; } = 1000;

    /// <summary>Blocks per stage, 4 values (JSON depths).</summary>
    public IReadOnlyList<int> Depths { get; init; } = [3, 3, 9, 3];

    /// <summary>Base widths per stage before width_factor, 4 values (JSON dims).</summary>
    public IReadOnlyList<int> Dims { get; init; } = [96, 192, 384, 768];

    /// <summary>Largest stochastic-depth rate, reached by the last block (JSON drop_path_rate).</summary>
    public double DropPathRate { get; init; }

    /// <summary>Initial layer scale; &lt;= 0 means no gamma (JSON layer_scale_init_value).</summary>
    public double LayerScaleInitValue { get; init; } = 1e-6;

    /// <summary>Multiplier of the head's initial weight and bias (JSON head_init_scale).</summary>
    public double HeadInitScale { get; init; } = 1.0;

    /// <summary>[K1, K2, K3, K4, N]: stage kernels and the small kernel (JSON kernel_size).</summary>
    public IReadOnlyList<int> KernelSize { get; init; } = [51, 49, 47, 13, 5];

    /// <summary>Width multiplier applied by truncation (JSON width_factor).</summary>
    public double WidthFactor { get; init; } = 1.0;

    /// <summary>Decomposed K x N + N x K kernels (true) or dense K x K (false) (JSON Decom; null reads as false,
    /// like the reference default None).</summary>
    public bool Decom { get; init; }

    /// <summary>BatchNorm after each depthwise branch (JSON bn).</summary>
    public bool Bn { get; init; } = true;

    /// <summary>Stage widths after the width factor: int(dims[i] * width_factor).</summary>
    public int[] StageWidths() => [.. Dims.Select(d => (int)(d * WidthFactor))];

    /// <summary>Total number of blocks.</summary>
    public int TotalBlocks => Depths.Sum();

    /// <summary>The small kernel N.</summary>
    public int SmallKernel => KernelSize[4];

    /// <summary>Throws an ArgumentException naming the JSON key and the value when the configuration cannot build
    /// a model.</summary>
    public ModelConfig Validate()
    {
        if (InChans < 1) throw Bad("in_chans", $"must be >= 1, got {InChans}");
        if (NumClasses < 1) throw Bad("num_classes", $"must be >= 1, got {NumClasses}");
        if (Depths is null || Depths.Count != 4) throw Bad("depths", $"must have 4 values, got {Describe(Depths)}");
        if (Depths.Any(d => d < 0)) throw Bad("depths", $"values must be >= 0, got {Describe(Depths)}");
        if (Dims is null || Dims.Count != 4) throw Bad("dims", $"must have 4 values, got {Describe(Dims)}");
        if (Dims.Any(d => d < 1)) throw Bad("dims", $"values must be >= 1, got {Describe(Dims)}");
        if (!double.IsFinite(WidthFactor) || WidthFactor <= 0)
            throw Bad("width_factor", $"must be a positive number, got {WidthFactor}");
        var widths = StageWidths();
        if (widths.Any(w => w < 1))
            throw Bad("width_factor",
                      $"{WidthFactor} truncates dims {Describe(Dims)} to {Describe(widths)}; " +
                      "every width must stay >= 1");
        if (KernelSize is null || KernelSize.Count != 5)
            throw Bad("kernel_size", $"must have 5 values [K1, K2, K3, K4, N], got {Describe(KernelSize)}");
        for (int i = 0; i < 4; i++)
        {
            int k = KernelSize[i];
            if (k < 1 || k % 2 == 0)
                throw Bad("kernel_size",
                          $"value {i} (K{i + 1}) must be odd and >= 1 for 'same' padding, got {k} in " +
                          Describe(KernelSize));
        }
        // N only shapes a kernel when it is used: by the decomposed branches, or by small_conv where N < K. The
        // ConvNeXt baseline passes N = 100 (even, larger than every K) precisely to switch the small branch off.
        int n = KernelSize[4];
        if (n < 1) throw Bad("kernel_size", $"value 4 (N) must be >= 1, got {n} in {Describe(KernelSize)}");
        if (n % 2 == 0 && (Decom || KernelSize.Take(4).Any(k => n < k)))
            throw Bad("kernel_size", "value 4 (N) must be odd for 'same' padding when it is used (Decom, or N < K), " +
                      $"got {n} in {Describe(KernelSize)}");
        if (!double.IsFinite(DropPathRate) || DropPathRate < 0 || DropPathRate >= 1)
            throw Bad("drop_path_rate", $"must be in [0, 1), got {DropPathRate}");
        if (!double.IsFinite(LayerScaleInitValue))
            throw Bad("layer_scale_init_value", $"must be finite, got {LayerScaleInitValue}");
        if (!double.IsFinite(HeadInitScale)) throw Bad("head_init_scale", $"must be finite, got {HeadInitScale}");
        return this;
    }

    /// <summary>Spatial sizes after the stem and each downsampling for an input of <paramref name="height"/> x
    /// <paramref name="width"/> (stem 4x4/4, then three 2x2/2, floor like PyTorch); throws when a stage would be
    /// empty.</summary>
    public (int H, int W)[] StageSizes(int height, int width)
    {
        var sizes = new (int H, int W)[4];
        int h = height / 4, w = width / 4;
        for (int i = 0; i < 4; i++)
        {
            if (i > 0) { h /= 2; w /= 2; }
            if (h < 1 || w < 1)
                throw new ArgumentException(
                    $"input {height}x{width} is too small: stage {i + 1} would be {h}x{w} (the network downsamples " +
                        $"by 4, 2, 2, 2, so inputs need at least 32x32)",
                    nameof(height));
            sizes[i] = (h, w);
        }
        return sizes;
    }

    private static string Describe<T>(IEnumerable<T>? values) =>
        values is null ? "null" : "[" + string.Join(", ", values) + "]";

    private static ArgumentException Bad(string key, string message) =>
        new($"model config: {key} {message}", key);

    /// <summary>Field-by-field equality (the lists by value).</summary>
    public bool Equals(ModelConfig? other) =>
        other is not null && InChans == other.InChans && NumClasses == other.NumClasses
        && Depths.SequenceEqual(other.Depths) && Dims.SequenceEqual(other.Dims)
        && DropPathRate.Equals(other.DropPathRate) && LayerScaleInitValue.Equals(other.LayerScaleInitValue)
        && HeadInitScale.Equals(other.HeadInitScale) && KernelSize.SequenceEqual(other.KernelSize)
        && WidthFactor.Equals(other.WidthFactor) && Decom == other.Decom && Bn == other.Bn;

    /// <inheritdoc />
    public override int GetHashCode() =>
        HashCode.Combine(InChans, NumClasses, Depths.Sum(), Dims.Sum(), KernelSize.Sum(), WidthFactor, Decom, Bn);

    /// <inheritdoc />
    public override string ToString() =>
        $"in_chans={InChans} num_classes={NumClasses} depths={Describe(Depths)} dims={Describe(Dims)} " +
            $"drop_path_rate={DropPathRate} " +
        $"layer_scale_init_value={LayerScaleInitValue} head_init_scale={HeadInitScale} " +
            $"kernel_size={Describe(KernelSize)} " +
        $"width_factor={WidthFactor} Decom={Decom} bn={Bn}";
}
