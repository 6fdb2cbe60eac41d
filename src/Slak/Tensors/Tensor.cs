// The tensor: a shape over a contiguous run of a reference-counted storage, on one device, plus the autograd
// bookkeeping (RequiresGrad, Grad, and the node that produced it). Every operator returns a fresh tensor and never
// disposes its inputs. Views (Reshape, Detach, batch slices) share storage; Dispose drops one reference.
using Slak.Autograd;
using Slak.Backends;

namespace Slak;

/// <summary>A dense, contiguous, row-major float32 tensor on a device, with autograd support.</summary>
public sealed partial class Tensor : IDisposable
{
    private readonly int[] _shape;
    private Storage? _storage;
    private bool _requiresGrad;

    internal Tensor(Storage storage, long offset, int[] shape)
    {
        _storage = storage;
        Offset = offset;
        _shape = shape;
        Numel = Shapes.Numel(shape);
        if (offset < 0 || offset + Numel > storage.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), offset,
                $"view [{offset}, {offset + Numel}) exceeds storage of {storage.Length} elements");
        TensorScope.Track(this);
    }

    /// <summary>Shape (dimension sizes, outermost first).</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>A copy of the shape as an array.</summary>
    public int[] ShapeArray => (int[])_shape.Clone();

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements.</summary>
    public long Numel { get; }

    /// <summary>Element type (always <see cref="DType.Float32"/>).</summary>
    public DType DType => DType.Float32;

    /// <summary>Device holding the data.</summary>
    public Device Device => Storage.Backend.Device;

    /// <summary>Backend that runs operators on this tensor.</summary>
    internal IBackend Backend => MixedPrecision.Apply( // the bf16 decorator under --precision bf16 (Bf16Backend)
        Diagnostics.OpProfiler.Enabled ? ProfilingBackend.Wrap(Storage.Backend) : Storage.Backend);

    /// <summary>Optional name (parameters carry their state_dict key).</summary>
    public string? Name { get; set; }

    /// <summary>First element of this tensor inside <see cref="Storage"/>.</summary>
    internal long Offset { get; private set; }

    /// <summary>The backing storage; throws once the tensor was disposed.</summary>
    internal Storage Storage => _storage ?? throw new ObjectDisposedException(Describe(), "tensor was disposed");

    /// <summary>True once <see cref="Dispose"/> ran.</summary>
    public bool IsDisposed => _storage is null;

    /// <summary>Size of dimension <paramref name="dim"/> (negative counts from the end).</summary>
    public int Size(int dim) => _shape[Shapes.NormalizeDim(dim, Rank, nameof(dim))];

    // ---- autograd ------------------------------------------------------------------------------------------

    /// <summary>Whether gradients flow to this tensor. Settable on leaves only (parameters, inputs).</summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (GradFn is not null && !value)
                throw new InvalidOperationException(
                    $"RequiresGrad can only be cleared on leaf tensors; {Describe()} was produced by {GradFn.Op} (use Detach())");
            _requiresGrad = value;
        }
    }

    /// <summary>Accumulated gradient of a leaf after <see cref="Backward()"/> (null until the first one).</summary>
    public Tensor? Grad { get; set; }

    /// <summary>The graph node that produced this tensor (null for leaves).</summary>
    internal GradNode? GradFn { get; set; }

    /// <summary>Which output of <see cref="GradFn"/> this tensor is (0 for single-output operators).</summary>
    internal int GradOutputIndex { get; set; }

    /// <summary>True when this tensor was not produced by a recorded operator.</summary>
    public bool IsLeaf => GradFn is null;

    /// <summary>Back-propagates from this scalar: accumulates d(this)/d(leaf) into every leaf's <see cref="Grad"/>
    /// and frees the graph (a second call through the same graph throws).</summary>
    public void Backward() => AutogradEngine.Backward(this);

    /// <summary>Back-propagates from this tensor with <paramref name="gradient"/> = d(loss)/d(this) (shaped like this
    /// tensor, on its device), as PyTorch's <c>tensor.backward(gradient)</c>: accumulates into every leaf's
    /// <see cref="Grad"/> and frees the graph.</summary>
    public void Backward(Tensor gradient)
    {
        ArgumentNullException.ThrowIfNull(gradient);
        AutogradEngine.Backward(this, gradient);
    }

    /// <summary>Zeroes (drops) the gradient.</summary>
    public void ZeroGrad()
    {
        Grad?.Dispose();
        Grad = null;
    }

    // ---- data access ---------------------------------------------------------------------------------------

    /// <summary>The elements as a span (CPU tensors only).</summary>
    public Span<float> Data
    {
        get
        {
            var storage = Storage;
            if (!storage.IsHost)
                throw new InvalidOperationException($"Data is only available on cpu tensors; {Describe()} is on {Device} (use ToArray() or To(Device.Cpu))");
            return storage.HostSpan.Slice(checked((int)Offset), checked((int)Numel));
        }
    }

    /// <summary>Copies the elements to a new host array (any device).</summary>
    public float[] ToArray()
    {
        var result = new float[Numel];
        Backend.CopyToHost(this, result);
        return result;
    }

    /// <summary>The value of a one-element tensor.</summary>
    public float Item()
    {
        if (Numel != 1)
            throw new InvalidOperationException($"Item() needs exactly one element; {Describe()} has {Numel}");
        Span<float> one = stackalloc float[1];
        Backend.CopyToHost(this, one);
        return one[0];
    }

    /// <summary>This tensor on <paramref name="device"/> (itself when already there; otherwise a copy without grad
    /// history).</summary>
    public Tensor To(Device device)
    {
        if (device == Device) return this;
        var host = Device.IsCpu ? this : null;
        float[] data = host is null ? ToArray() : Data.ToArray();
        var result = FromArray(data, _shape, device);
        return result;
    }

    /// <summary>A view sharing this tensor's storage, cut off from the graph.</summary>
    public Tensor Detach()
    {
        Storage.AddRef();
        return new Tensor(Storage, Offset, _shape);
    }

    /// <summary>Rows [start, start+count) along dimension 0, as a view sharing storage (no grad history).</summary>
    public Tensor SliceBatch(int start, int count)
    {
        if (Rank == 0) throw new InvalidOperationException("cannot slice a scalar");
        if (start < 0 || count < 0 || start + count > _shape[0])
            throw new ArgumentOutOfRangeException(nameof(start),
                $"batch slice [{start}, {start + count}) is outside dimension 0 of size {_shape[0]}");
        long row = _shape[0] == 0 ? 0 : Numel / _shape[0];
        var shape = ShapeArray;
        shape[0] = count;
        Storage.AddRef();
        return new Tensor(Storage, Offset + start * row, shape);
    }

    /// <summary>Moves this tensor's data to <paramref name="device"/> in place (the object stays the same, so
    /// modules and optimizers keep their references). Leaves only; the gradient moves along.</summary>
    public void MoveTo(Device device)
    {
        if (device == Device) return;
        if (GradFn is not null)
            throw new InvalidOperationException($"MoveTo is for leaf tensors (parameters, buffers); {Describe()} was produced by {GradFn.Op}");
        float[] data = ToArray();
        var storage = BackendRegistry.For(device).Allocate(Numel);
        var old = Interlocked.Exchange(ref _storage, storage);
        Offset = 0;
        Backend.CopyFromHost(data, this);
        old?.Release();
        Grad?.MoveTo(device);
    }

    /// <summary>Drops this tensor's reference to its storage, and its gradient (idempotent).</summary>
    public void Dispose()
    {
        var s = Interlocked.Exchange(ref _storage, null);
        s?.Release();
        GradFn = null;
        Grad?.Dispose();
        Grad = null;
    }

    /// <summary>Short description: shape and device (and name).</summary>
    public string Describe() => $"Tensor{(Name is null ? "" : $" '{Name}'")}({Shapes.Format(_shape)}, {(_storage is null ? "disposed" : Device.ToString())})";

    /// <inheritdoc />
    public override string ToString() => Describe();
}
