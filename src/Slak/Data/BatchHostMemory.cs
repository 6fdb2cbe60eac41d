// Host memory that a loader assembles batch images in (issue 21 item 3). For a CUDA GPU the images are written
// straight into page-locked host memory (cuMemHostAlloc through Slak.Cuda's PinnedBuffer), so the host-to-device copy
// reads pinned memory (no staging copy by the driver). A fixed pool bounds the pinned memory: BufferCount buffers of
// one full batch each, allocated once; a batch returns its buffer when it is disposed (the trainer and the evaluator
// dispose each batch right after its upload). When the pool is empty, because a consumer keeps its batches, the batch
// gets an ordinary array instead (counted in Fallbacks): nothing ever waits on the pool. On the CPU and on the
// emulator (whose "device" memory is ordinary host memory) the pool holds ordinary native memory: reusing the same few
// buffers spares a fresh, zeroed, page-faulted allocation per batch (128 images of 224x224 are 77 MB;
// loader-vs-torchvision measured the fresh arrays at about 40 % of the loader's CPU time).
using System.Runtime.InteropServices;
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Runtime;

namespace Slak.Data;

/// <summary>A fixed pool of host buffers, each holding the images of one batch.</summary>
public sealed class BatchHostMemory : IDisposable
{
    private readonly Stack<HostBlock> _free = new();
    private readonly List<HostBlock> _all = [];
    private readonly object _lock = new();
    private int _fallbacks;
    private bool _disposed;

    /// <summary>A pool of <paramref name="count"/> buffers of <paramref name="floatsPerBuffer"/> floats, each from
    /// <paramref name="allocate"/> (bytes in, block out); <paramref name="pageLocked"/> says what the
    /// blocks are.</summary>
    internal BatchHostMemory(int count, long floatsPerBuffer, Func<long, HostBlock> allocate, bool pageLocked)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(floatsPerBuffer, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(floatsPerBuffer, (long)Array.MaxLength);
        ArgumentNullException.ThrowIfNull(allocate);
        (BufferCount, FloatsPerBuffer, IsPageLocked) = (count, floatsPerBuffer, pageLocked);
        try
        {
            for (int i = 0; i < count; i++)
            {
                var block = allocate(floatsPerBuffer * sizeof(float));
                _all.Add(block);
                _free.Push(block);
            }
        }
        catch
        {
            foreach (var b in _all) b.Owner.Dispose();
            throw;
        }
    }

    /// <summary>Page-locked buffers for batches uploaded to <paramref name="device"/>: a pool of
    /// <paramref name="count"/> buffers of <paramref name="floatsPerBuffer"/> floats when the device is a CUDA GPU,
    /// else null (ordinary arrays: the CPU, and the emulator, whose device memory is host memory).</summary>
    public static BatchHostMemory? PageLocked(Device device, int count, long floatsPerBuffer)
    {
        if (device.Type != DeviceType.Cuda) return null;
        if (BackendRegistry.For(device) is not CudaBackend { Gpu: CudaDriverDevice gpu }) return null;
        return new BatchHostMemory(count, floatsPerBuffer, bytes =>
        {
            var pinned = gpu.AllocatePinned(bytes);
            return new HostBlock(pinned.Address, pinned);
        }, pageLocked: true);
    }

    /// <summary>A pool of <paramref name="count"/> buffers of <paramref name="floatsPerBuffer"/> floats of ordinary
    /// (pageable) native memory, 64-byte aligned.</summary>
    public static BatchHostMemory Native(int count, long floatsPerBuffer) => new(count, floatsPerBuffer, bytes =>
    {
        var block = new NativeBuffer(bytes);
        return new HostBlock(block.Address, block);
    }, pageLocked: false);

    /// <summary>The pool a loader feeding <paramref name="device"/> should assemble its batches in: page-locked memory
    /// for a CUDA GPU (<see cref="PageLocked"/>), else ordinary native memory (<see cref="Native"/>).</summary>
    public static BatchHostMemory ForDevice(Device device, int count, long floatsPerBuffer) =>
        PageLocked(device, count, floatsPerBuffer) ?? Native(count, floatsPerBuffer);

    /// <summary>Buffers in the pool.</summary>
    public int BufferCount { get; }

    /// <summary>Floats per buffer (one full batch).</summary>
    public long FloatsPerBuffer { get; }

    /// <summary>True when the buffers are page-locked (pinned) host memory.</summary>
    public bool IsPageLocked { get; }

    /// <summary>Batches that found the pool empty (or needed more than a buffer holds) and used an ordinary
    /// array.</summary>
    public int Fallbacks => Volatile.Read(ref _fallbacks);

    /// <summary>Buffers now free.</summary>
    public int FreeBuffers
    {
        get
        {
            lock (_lock) return _free.Count;
        }
    }

    /// <summary>A buffer of at least <paramref name="floats"/> floats from the pool, or null (the pool is empty, or
    /// the request is larger than a buffer): the caller then uses an ordinary array.</summary>
    internal HostBlock? TryRent(long floats)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (floats <= FloatsPerBuffer && _free.Count > 0) return _free.Pop();
        }
        Interlocked.Increment(ref _fallbacks);
        return null;
    }

    /// <summary>Gives <paramref name="block"/> back (ignored once the pool is disposed).</summary>
    internal void Return(HostBlock block)
    {
        lock (_lock)
        {
            if (!_disposed) _free.Push(block);
        }
    }

    /// <summary>True once the memory is freed: blocks of this pool must not be read any more.</summary>
    internal bool IsDisposed
    {
        get
        {
            lock (_lock) return _disposed;
        }
    }

    /// <summary>Frees every buffer. Batches still holding one must not be read afterwards (they throw).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _free.Clear();
        }
        foreach (var b in _all) b.Owner.Dispose();
    }
}

/// <summary>One host buffer of a <see cref="BatchHostMemory"/>: its address and what frees it.</summary>
/// <param name="Address">Start of the memory (at least 16-byte aligned).</param>
/// <param name="Owner">Frees the memory.</param>
internal sealed record HostBlock(nint Address, IDisposable Owner);

/// <summary>Native memory freed once, on the first Dispose.</summary>
internal sealed unsafe class NativeBuffer : IDisposable
{
    private nint _address;

    /// <summary>Allocates <paramref name="bytes"/> bytes, 64-byte aligned.</summary>
    public NativeBuffer(long bytes) => _address = (nint)NativeMemory.AlignedAlloc((nuint)bytes, 64);

    /// <summary>Start of the memory.</summary>
    public nint Address => _address;

    /// <inheritdoc />
    public void Dispose()
    {
        nint address = Interlocked.Exchange(ref _address, 0);
        if (address != 0) NativeMemory.AlignedFree((void*)address);
    }
}
