// Backing memory of tensors. A storage is reference-counted because zero-copy views (Reshape, Detach) share it;
// the last Release returns the memory deterministically (CPU: to a size-bucketed pool; CUDA: to the caching
// allocator), so no tensor relies on a finalizer to give memory back.
using Slak.Backends;

namespace Slak;

/// <summary>Reference-counted memory holding <see cref="Length"/> float32 elements on one backend.</summary>
internal abstract class Storage
{
    private int _refs = 1;

    /// <summary>Creates a storage of <paramref name="length"/> elements with one reference.</summary>
    protected Storage(long length) => Length = length;

    /// <summary>Number of float32 elements.</summary>
    public long Length { get; }

    /// <summary>The backend that owns this memory.</summary>
    internal abstract IBackend Backend { get; }

    /// <summary>The elements when they live in host memory the caller may address directly (CPU storage); null for
    /// device memory.</summary>
    internal virtual Span<float> HostSpan => default;

    /// <summary>True when <see cref="HostSpan"/> is this storage's memory.</summary>
    internal virtual bool IsHost => false;

    /// <summary>True once the last reference was released.</summary>
    public bool IsReleased => Volatile.Read(ref _refs) <= 0;

    /// <summary>True while exactly one tensor references this storage (no view shares it).</summary>
    internal bool HasOneReference => Volatile.Read(ref _refs) == 1;

    /// <summary>Adds a reference (a new view shares this storage).</summary>
    public void AddRef()
    {
        if (Interlocked.Increment(ref _refs) <= 1)
        {
            Interlocked.Decrement(ref _refs);   // stay released: a failed AddRef must not revive freed memory
            throw new ObjectDisposedException(nameof(Storage), "storage was already released");
        }
    }

    /// <summary>Drops a reference; the last one frees the memory.</summary>
    public void Release()
    {
        int left = Interlocked.Decrement(ref _refs);
        if (left == 0) Free();
        else if (left < 0) Interlocked.Exchange(ref _refs, 0);
    }

    /// <summary>Returns the memory to its allocator.</summary>
    protected abstract void Free();
}
