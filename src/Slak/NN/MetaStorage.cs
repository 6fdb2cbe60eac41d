// Shape-only placeholder storage: lets a model be built with its real parameter names and shapes without allocating
// or initializing a single weight (slak_base has 158 M of them), for state_dict key checks, summaries and MAC counts.
// It reports the CPU backend so that Device and Describe() work, but holds no memory: any kernel touching it fails.
using Slak.Backends;

namespace Slak.NN;

/// <summary>Storage that has a length and no memory (see <see cref="ModuleInit.ShapeOnly"/>).</summary>
internal sealed class MetaStorage : Storage
{
    public MetaStorage(long length) : base(length)
    {
    }

    /// <inheritdoc />
    internal override IBackend Backend => BackendRegistry.For(Device.Cpu);

    /// <summary>True when <paramref name="tensor"/> is a shape-only placeholder.</summary>
    public static bool IsMeta(Tensor tensor) => tensor.Storage is MetaStorage;

    /// <summary>A placeholder tensor of the given shape.</summary>
    public static Tensor Create(int[] shape) => new(new MetaStorage(Shapes.Numel(shape)), 0, shape);

    /// <inheritdoc />
    protected override void Free()
    {
    }
}
