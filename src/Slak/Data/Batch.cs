// One prepared batch on the host: normalised (possibly mixed) images, hard labels and soft targets. The images are an
// ordinary array, or a buffer of the loader's BatchHostMemory (page-locked memory for a CUDA GPU) that goes back to
// the pool when the batch is disposed; ImageSpan reads either, Images is always an array (a copy for a pooled batch).
namespace Slak.Data;

/// <summary>A host-side batch.</summary>
public sealed unsafe class Batch : IDisposable
{
    private readonly float[]? _array;
    private readonly BatchHostMemory? _pool;
    private HostBlock? _block;
    private readonly int _length;

    /// <summary>A batch whose images are the array <paramref name="images"/>.</summary>
    /// <param name="index">Batch index within the epoch.</param>
    /// <param name="images">(N, C, H, W) values.</param>
    /// <param name="shape">The image tensor shape.</param>
    /// <param name="labels">Hard labels (N).</param>
    /// <param name="targets">Soft targets (N, K): smoothed one-hots, mixed when mixup/cutmix applied.</param>
    /// <param name="classCount">K.</param>
    public Batch(int index, float[] images, int[] shape, int[] labels, float[] targets, int classCount)
    {
        ArgumentNullException.ThrowIfNull(images);
        (Index, _array, _length, Shape, Labels, Targets, ClassCount) = (index, images, images.Length, shape, labels, targets, classCount);
    }

    /// <summary>A batch whose <paramref name="length"/> image values are in <paramref name="block"/> of
    /// <paramref name="pool"/>.</summary>
    internal Batch(int index, BatchHostMemory pool, HostBlock block, int length, int[] shape, int[] labels, float[] targets, int classCount)
    {
        (Index, _pool, _block, _length, Shape, Labels, Targets, ClassCount) = (index, pool, block, length, shape, labels, targets, classCount);
    }

    /// <summary>Batch index within the epoch.</summary>
    public int Index { get; }

    /// <summary>The image tensor shape.</summary>
    public int[] Shape { get; }

    /// <summary>Hard labels (N).</summary>
    public int[] Labels { get; }

    /// <summary>Soft targets (N, K): smoothed one-hots, mixed when mixup/cutmix applied.</summary>
    public float[] Targets { get; }

    /// <summary>K.</summary>
    public int ClassCount { get; }

    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;

    /// <summary>True when the images are in page-locked host memory.</summary>
    public bool IsPageLocked => _pool is { IsPageLocked: true } && _block is not null;

    /// <summary>True when the images are in a buffer of a <see cref="BatchHostMemory"/> pool.</summary>
    internal bool IsPooled => _pool is not null;

    /// <summary>The (N, C, H, W) values where they are (no copy). Throws once a pooled batch is disposed.</summary>
    public ReadOnlySpan<float> ImageSpan => _array ?? (ReadOnlySpan<float>)PooledSpan();

    /// <summary>The (N, C, H, W) values as an array: the batch's own, or a copy of a pooled batch's buffer.</summary>
    public float[] Images => _array ?? PooledSpan().ToArray();

    // The pooled buffer, checked: a disposed batch or a freed pool is an error, never a read of freed memory.
    private Span<float> PooledSpan()
    {
        var block = _block;
        ObjectDisposedException.ThrowIf(block is null || _pool!.IsDisposed, this);
        return new Span<float>((void*)block.Address, _length);
    }

    /// <summary>Gives a pooled buffer back to its pool (nothing for an array batch). Never throws.</summary>
    public void Dispose()
    {
        var block = Interlocked.Exchange(ref _block, null);
        if (block is not null) _pool!.Return(block);
    }
}
