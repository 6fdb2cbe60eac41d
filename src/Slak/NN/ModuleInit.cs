// How a module's parameters come into being: drawn from an explicit SlakRandom (the reference initialization,
// slak-facts §1.6), filled with zeros/constants only (weights that a checkpoint will overwrite, so no random draws
// are wasted), or shape-only placeholders (names and shapes without memory). Every module constructor takes one,
// so no hidden global generator decides a model's weights.
namespace Slak.NN;

/// <summary>What a module constructor does with its parameters.</summary>
public enum InitMode
{
    /// <summary>Reference initialization from the generator (trunc_normal std 0.02 for conv/linear weights).</summary>
    Random,
    /// <summary>Weights zero, norms at their identity values: to be overwritten by a checkpoint.</summary>
    Placeholder,
    /// <summary>No memory at all: names and shapes only.</summary>
    ShapeOnly,
}

/// <summary>Creates parameters and buffers for module constructors.</summary>
public sealed class ModuleInit
{
    private ModuleInit(InitMode mode, SlakRandom? random, Device device)
    {
        Mode = mode;
        Random = random;
        Device = device;
    }

    /// <summary>Reference initialization drawn from <paramref name="random"/>, tensors on <paramref name="device"/>
    /// (CPU when null).</summary>
    public static ModuleInit FromRandom(SlakRandom random, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(random);
        return new ModuleInit(InitMode.Random, random, device ?? Device.Cpu);
    }

    /// <summary>Deterministic placeholder values (no random draws), for models whose weights are loaded next.</summary>
    public static ModuleInit ForLoading(Device? device = null) => new(InitMode.Placeholder, null, device ?? Device.Cpu);

    /// <summary>Shape-only placeholders (no memory).</summary>
    public static ModuleInit ShapeOnly { get; } = new(InitMode.ShapeOnly, null, Device.Cpu);

    /// <summary>The mode.</summary>
    public InitMode Mode { get; }

    /// <summary>The generator (Random mode only).</summary>
    public SlakRandom? Random { get; }

    /// <summary>Device of the created tensors.</summary>
    public Device Device { get; }

    /// <summary>timm's trunc_normal_(std, a=-2, b=2): normal samples redrawn while outside [-2, 2] (absolute
    /// bounds, so at std 0.02 practically never). Zeros in Placeholder mode.</summary>
    public Tensor TruncNormal(int[] shape, float std)
    {
        if (!(std > 0)) throw new ArgumentOutOfRangeException(nameof(std), std, "standard deviation must be > 0");
        if (Mode == InitMode.ShapeOnly) return MetaStorage.Create(shape);
        var data = new float[Shapes.Numel(shape)];
        if (Mode == InitMode.Random)
        {
            var rng = Random!;
            for (int i = 0; i < data.Length; i++)
            {
                float v;
                do v = std * rng.NextNormal(); while (v < -2f || v > 2f);
                data[i] = v;
            }
        }
        return Create(data, shape);
    }

    /// <summary>A tensor filled with <paramref name="value"/> (any mode but ShapeOnly).</summary>
    public Tensor Constant(int[] shape, float value)
    {
        if (Mode == InitMode.ShapeOnly) return MetaStorage.Create(shape);
        var data = new float[Shapes.Numel(shape)];
        if (value != 0f) data.AsSpan().Fill(value);
        return Create(data, shape);
    }

    private Tensor Create(float[] data, int[] shape)
    {
        // Parameters outlive any TensorScope the model happens to be built in.
        using var untracked = TensorScope.Untracked();
        return Tensor.FromArray(data, shape, Device);
    }
}
