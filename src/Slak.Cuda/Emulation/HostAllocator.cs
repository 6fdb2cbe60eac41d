// The emulated device's memory: 64-byte-aligned native host blocks behind a size-bucketed cache, with the same
// statistics as the GPU's caching allocator. Fresh and reused blocks are poisoned (0xFF bytes: NaN as float, -1 as
// int) because device memory is uninitialised on a GPU, and a kernel that reads before writing should fail a test.
// It also knows every live block, so host<->device copies are bounds-checked (a GPU would fault or corrupt).
using System.Runtime.InteropServices;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Emulation;

internal sealed unsafe class HostAllocator : IDisposable
{
    internal const int Alignment = 64;
    private const long SmallGranule = 512;
    private const long LargeThreshold = 1 << 20;
    private const long LargeGranule = 1 << 20;

    private readonly Dictionary<long, Stack<nint>> _free = [];
    private readonly Dictionary<nint, (long Requested, long Capacity)> _live = [];
    private long _inUse, _reserved, _peak, _hits, _misses;
    private bool _disposed;

    internal GpuMemoryStats Stats => new(_inUse, _reserved, _peak, _hits, _misses);

    internal static long RoundUp(long bytes)
    {
        var g = bytes < LargeThreshold ? SmallGranule : LargeGranule;
        return Math.Max(g, (bytes + g - 1) / g * g);
    }

    internal DevicePtr Allocate(long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        var capacity = RoundUp(bytes);
        nint p;
        if (_free.TryGetValue(capacity, out var stack) && stack.Count > 0)
        {
            p = stack.Pop();
            _hits++;
        }
        else
        {
            _misses++;
            p = TryAlloc(capacity);
            if (p == 0)
            {
                EmptyCache();
                p = TryAlloc(capacity);
            }
            if (p == 0)
                throw new GpuOutOfMemoryException(
                    $"cuda-emu: cannot allocate {bytes} bytes (in use {_inUse}, reserved {_reserved} after " +
                    "emptying the cache)");
            _reserved += capacity;
        }
        NativeMemory.Fill((void*)p, (nuint)capacity, 0xFF);
        _live[p] = (bytes, capacity);
        _inUse += capacity;
        _peak = Math.Max(_peak, _inUse);
        return new DevicePtr((ulong)p);
    }

    private static nint TryAlloc(long capacity)
    {
        try
        {
            return (nint)NativeMemory.AlignedAlloc((nuint)capacity, Alignment);
        }
        catch (OutOfMemoryException)
        {
            return 0;
        }
    }

    internal void Free(DevicePtr ptr)
    {
        if (_disposed || ptr.IsNull) return;
        var p = (nint)ptr.Address;
        if (!_live.Remove(p, out var block)) return;  // unknown or double free: ignored, Free never throws
        _inUse -= block.Capacity;
        if (!_free.TryGetValue(block.Capacity, out var stack)) _free[block.Capacity] = stack = new Stack<nint>();
        stack.Push(p);
    }

    internal void EmptyCache()
    {
        foreach (var (capacity, stack) in _free)
        {
            while (stack.Count > 0)
            {
                NativeMemory.AlignedFree((void*)stack.Pop());
                _reserved -= capacity;
            }
        }
        _free.Clear();
    }

    /// <summary>Throws unless [ptr, ptr + bytes) lies inside one live block.</summary>
    internal void CheckRange(DevicePtr ptr, long bytes, string paramName)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (bytes == 0) return;
        var a = ptr.Address;
        if (_live.TryGetValue((nint)a, out var atStart))  // the common case: a copy to the start of a block
        {
            CheckInside(ptr, bytes, a, atStart.Requested, paramName);
            return;
        }
        foreach (var (p, block) in _live)
        {
            var start = (ulong)p;
            if (a >= start && a < start + (ulong)block.Requested)
            {
                CheckInside(ptr, bytes, start, block.Requested, paramName);
                return;
            }
        }
        throw new ArgumentException($"cuda-emu: {ptr} is not inside any live allocation of this device", paramName);
    }

    private static void CheckInside(DevicePtr ptr, long bytes, ulong start, long size, string paramName)
    {
        if (ptr.Address + (ulong)bytes <= start + (ulong)size) return;
        throw new ArgumentOutOfRangeException(paramName,
            $"cuda-emu: {bytes} bytes at {ptr} run past the end of the {size}-byte block at 0x{start:x} " +
            $"(offset {ptr.Address - start})");
    }

    public void Dispose()
    {
        if (_disposed) return;
        EmptyCache();
        foreach (var p in _live.Keys) NativeMemory.AlignedFree((void*)p);
        _live.Clear();
        _inUse = 0;
        _reserved = 0;
        _disposed = true;
    }
}
