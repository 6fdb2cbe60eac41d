// The emulated device's memory: native host mappings behind a size-bucketed cache, with the same statistics as the
// GPU's caching allocator. Every block is an anonymous mapping reserved lazily (MAP_NORESERVE: a page is committed
// when first touched, so production-size tensors fit as long as a run touches a part of them) between two
// inaccessible guard pages. With bounds checks on, an allocation is placed against the guard page after it (its end
// 16-byte aligned), so that a kernel reading or writing past its end faults, and the emulator reports the fault as
// an EmulatorException; otherwise it starts at the page. Fresh and reused blocks are poisoned (0xFF bytes: NaN as
// float, -1 as int) because device memory is uninitialised on a GPU, and a kernel that reads before writing should
// fail a test; lazy mode skips the poisoning (it would commit every page). It also knows every live block, so
// host<->device copies are bounds-checked (a GPU would fault or corrupt).
using System.Runtime.InteropServices;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Emulation;

internal sealed unsafe class HostAllocator : IDisposable
{
    /// <summary>Alignment of an allocation's end when placed against its guard page (float4 loads need 16).</summary>
    internal const int EndAlignment = 16;
    private const long SmallGranule = 512;
    private const long LargeThreshold = 1 << 20;
    private const long LargeGranule = 1 << 20;
    private static readonly long s_page = Environment.SystemPageSize;

    private readonly Dictionary<long, Stack<nint>> _free = [];
    private readonly Dictionary<nint, Block> _live = [];
    private long _inUse, _reserved, _peak, _hits, _misses;
    private bool _disposed;

    /// <summary>One live allocation: the pointer handed out lies in [Start, Start + Mapped).</summary>
    private readonly record struct Block(long Requested, long Capacity, nint Start);

    /// <summary>Place new allocations against the guard page after them.</summary>
    internal bool GuardEnd { get; set; }

    /// <summary>Skip the poisoning of fresh and reused blocks (pages are committed only when written).</summary>
    internal bool Lazy { get; set; }

    internal GpuMemoryStats Stats => new(_inUse, _reserved, _peak, _hits, _misses);

    internal static long RoundUp(long bytes)
    {
        var g = bytes < LargeThreshold ? SmallGranule : LargeGranule;
        return Math.Max(g, (bytes + g - 1) / g * g);
    }

    private static long Mapped(long capacity) => (capacity + s_page - 1) / s_page * s_page;

    internal DevicePtr Allocate(long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        var capacity = RoundUp(bytes);
        nint start;
        if (_free.TryGetValue(capacity, out var stack) && stack.Count > 0)
        {
            start = stack.Pop();
            _hits++;
        }
        else
        {
            _misses++;
            start = EmuNative.Library.Map((ulong)Mapped(capacity));
            if (start == 0)
            {
                EmptyCache();
                start = EmuNative.Library.Map((ulong)Mapped(capacity));
            }
            if (start == 0)
                throw new GpuOutOfMemoryException(
                    $"cuda-emu: cannot map {bytes} bytes (in use {_inUse}, reserved {_reserved} after emptying the " +
                    "cache)");
            _reserved += capacity;
        }
        var placed = Math.Max(EndAlignment, (bytes + EndAlignment - 1) / EndAlignment * EndAlignment);
        var p = GuardEnd ? start + (nint)(Mapped(capacity) - placed) : start;
        if (!Lazy) NativeMemory.Fill((void*)start, (nuint)Mapped(capacity), 0xFF);
        _live[p] = new Block(bytes, capacity, start);
        _inUse += capacity;
        _peak = Math.Max(_peak, _inUse);
        return new DevicePtr((ulong)p);
    }

    internal void Free(DevicePtr ptr)
    {
        if (_disposed || ptr.IsNull) return;
        var p = (nint)ptr.Address;
        if (!_live.Remove(p, out var block)) return;  // unknown or double free: ignored, Free never throws
        _inUse -= block.Capacity;
        if (!_free.TryGetValue(block.Capacity, out var stack)) _free[block.Capacity] = stack = new Stack<nint>();
        stack.Push(block.Start);
    }

    internal void EmptyCache()
    {
        foreach (var (capacity, stack) in _free)
        {
            while (stack.Count > 0)
            {
                EmuNative.Library.Unmap(stack.Pop(), (ulong)Mapped(capacity));
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

    /// <summary>Where <paramref name="address"/> lies relative to the live allocations (for fault messages), or
    /// null when it is near none of them.</summary>
    internal string? Describe(ulong address)
    {
        foreach (var (p, block) in _live)
        {
            var begin = (ulong)p;
            var end = begin + (ulong)block.Requested;
            var mapBegin = (ulong)block.Start - (ulong)s_page;              // with the guard page before
            var mapEnd = (ulong)block.Start + (ulong)(Mapped(block.Capacity) + s_page);  // ... and after
            if (address < mapBegin || address >= mapEnd) continue;
            if (address >= end)
                return $"{address - end} bytes past the end of the {block.Requested}-byte allocation at 0x{begin:x}";
            if (address < begin)
                return $"{begin - address} bytes before the start of the {block.Requested}-byte allocation at " +
                       $"0x{begin:x}";
            return $"offset {address - begin} of the {block.Requested}-byte allocation at 0x{begin:x}";
        }
        return null;
    }

    public void Dispose()
    {
        if (_disposed) return;
        EmptyCache();
        foreach (var block in _live.Values) EmuNative.Library.Unmap(block.Start, (ulong)Mapped(block.Capacity));
        _live.Clear();
        _inUse = 0;
        _reserved = 0;
        _disposed = true;
    }
}
