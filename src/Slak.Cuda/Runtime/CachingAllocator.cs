// Size-bucketed caching allocator (the tinygrad LRUAllocator / PyTorch caching-allocator idea): freed blocks go to a
// free list per bucket and are reused by the next request of that bucket, so a training step allocates from the
// driver only in its first iteration. Real releases happen only in EmptyCache/Dispose (or the OOM retry), on the
// caller's thread. FreeDeferred only enqueues (no lock, no CUDA call), so it is safe from a finalizer; the queue is
// drained on the next allocator call.
using System.Collections.Concurrent;

namespace Slak.Cuda.Runtime;

/// <summary>A caching allocator over an <see cref="IDeviceMemorySource"/>. Thread-safe.</summary>
internal sealed class CachingAllocator : IDisposable
{
    private const long SmallLimit = 1L << 20;
    private const long SmallStep = 512;

    private readonly IDeviceMemorySource _source;
    private readonly Lock _lock = new();
    private readonly Dictionary<long, Stack<ulong>> _free = [];
    private readonly Dictionary<ulong, long> _live = [];
    private readonly ConcurrentQueue<ulong> _orphans = new();
    private long _inUse;
    private long _reserved;
    private long _peak;
    private long _hits;
    private long _misses;
    private long _invalidFrees;
    private bool _disposed;

    /// <summary>Creates an allocator drawing from <paramref name="source"/>.</summary>
    public CachingAllocator(IDeviceMemorySource source) =>
        _source = source ?? throw new ArgumentNullException(nameof(source));

    /// <summary>Current statistics.</summary>
    public GpuMemoryStats Stats
    {
        get
        {
            lock (_lock)
            {
                DrainOrphans();
                return new GpuMemoryStats(_inUse, _reserved, _peak, _hits, _misses);
            }
        }
    }

    /// <summary>Frees of pointers this allocator does not own (ignored; a sign of a double free).</summary>
    public long InvalidFrees => Interlocked.Read(ref _invalidFrees);

    /// <summary>The bucket size a request of <paramref name="bytes"/> bytes is served from: multiples of 512 B up
    /// to 1 MiB, then four steps per power of two (at most 25% waste).</summary>
    public static long BucketSize(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes <= SmallLimit)
        {
            return Math.Max(SmallStep, (bytes + SmallStep - 1) / SmallStep * SmallStep);
        }

        int log2 = 63 - (int)long.LeadingZeroCount(bytes);
        long step = 1L << (log2 - 2);
        return checked((bytes + step - 1) / step * step);
    }

    /// <summary>Allocates at least <paramref name="bytes"/> bytes. On out-of-memory: empties the cache and retries
    /// once, then throws <see cref="GpuOutOfMemoryException"/> with requested, free and reserved bytes.</summary>
    public DevicePtr Allocate(long bytes)
    {
        if (bytes < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, $"allocation size must be >= 0, got bytes={bytes}");
        }

        long bucket = BucketSize(bytes);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            DrainOrphans();
            if (_free.TryGetValue(bucket, out Stack<ulong>? stack) && stack.TryPop(out ulong cached))
            {
                _hits++;
                return Track(cached, bucket);
            }

            _misses++;
            if (!_source.TryAllocate(bucket, out ulong address))
            {
                ReleaseCachedLocked();
                if (!_source.TryAllocate(bucket, out address))
                {
                    (long free, long total) = SafeMemoryInfo();
                    throw new GpuOutOfMemoryException(
                        $"out of device memory: requested {bytes} bytes (bucket {bucket}), device has {free} bytes free " +
                        $"of {total}; {_reserved} bytes reserved by this allocator ({_inUse} in use) after emptying " +
                        "its cache and retrying once");
                }
            }

            _reserved += bucket;
            return Track(address, bucket);
        }
    }

    /// <summary>Returns a block to the cache. Never throws and never calls the driver; unknown pointers are
    /// counted in <see cref="InvalidFrees"/> and ignored.</summary>
    public void Free(DevicePtr ptr)
    {
        if (ptr.IsNull)
        {
            return;
        }

        lock (_lock)
        {
            FreeLocked(ptr.Address);
        }
    }

    /// <summary>Queues a block for <see cref="Free"/> without taking a lock: safe from a finalizer.</summary>
    public void FreeDeferred(DevicePtr ptr)
    {
        if (!ptr.IsNull)
        {
            _orphans.Enqueue(ptr.Address);
        }
    }

    /// <summary>Releases every cached (unused) block to the source.</summary>
    public void EmptyCache()
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                DrainOrphans();
                ReleaseCachedLocked();
            }
        }
    }

    /// <summary>Releases every block, cached or live (the device is going away).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            DrainOrphans();
            ReleaseCachedLocked();
            foreach (ulong address in _live.Keys)
            {
                _source.Release(address);
            }

            _live.Clear();
            _inUse = 0;
            _reserved = 0;
            _disposed = true;
        }
    }

    private DevicePtr Track(ulong address, long bucket)
    {
        _live[address] = bucket;
        _inUse += bucket;
        _peak = Math.Max(_peak, _inUse);
        return new DevicePtr(address);
    }

    private void FreeLocked(ulong address)
    {
        if (_disposed || !_live.Remove(address, out long bucket))
        {
            Interlocked.Increment(ref _invalidFrees);
            return;
        }

        _inUse -= bucket;
        if (!_free.TryGetValue(bucket, out Stack<ulong>? stack))
        {
            _free[bucket] = stack = new Stack<ulong>();
        }

        stack.Push(address);
    }

    private void DrainOrphans()
    {
        while (_orphans.TryDequeue(out ulong address))
        {
            FreeLocked(address);
        }
    }

    private void ReleaseCachedLocked()
    {
        foreach ((long bucket, Stack<ulong> stack) in _free)
        {
            while (stack.TryPop(out ulong address))
            {
                _source.Release(address);
                _reserved -= bucket;
            }
        }

        _free.Clear();
    }

    private (long Free, long Total) SafeMemoryInfo()
    {
        try
        {
            return _source.MemoryInfo();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return (-1, -1);
        }
    }
}
