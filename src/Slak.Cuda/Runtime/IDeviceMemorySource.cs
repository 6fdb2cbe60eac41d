// The raw memory provider under the caching allocator: cuMemAlloc/cuMemFree on a GPU, the host heap on the
// emulator, a counting fake in tests. Kept tiny so the allocator's policy (buckets, cache, OOM retry) is testable
// without a GPU.
namespace Slak.Cuda.Runtime;

/// <summary>Raw device-memory allocation, as seen by <see cref="CachingAllocator"/>.</summary>
internal interface IDeviceMemorySource
{
    /// <summary>Allocates <paramref name="bytes"/> bytes; returns false (and 0) when the device is out of memory.
    /// Other failures throw.</summary>
    bool TryAllocate(long bytes, out ulong address);

    /// <summary>Releases a block obtained from <see cref="TryAllocate"/>.</summary>
    void Release(ulong address);

    /// <summary>Free and total device memory in bytes, as the driver reports them.</summary>
    (long Free, long Total) MemoryInfo();
}
