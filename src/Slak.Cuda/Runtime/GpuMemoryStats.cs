// What a device's caching allocator reports (GpuDevice.MemoryStats): part of the kernel API, for users who size
// their buffers or watch the cache.
namespace Slak.Cuda.Runtime;

/// <summary>Caching-allocator statistics of one device.</summary>
/// <param name="InUseBytes">Bytes in blocks handed out and not freed.</param>
/// <param name="ReservedBytes">Bytes held from the driver (in use plus cached).</param>
/// <param name="PeakInUseBytes">The largest <paramref name="InUseBytes"/> so far.</param>
/// <param name="CacheHits">Allocations served from the cache.</param>
/// <param name="CacheMisses">Allocations that went to the driver.</param>
public readonly record struct GpuMemoryStats(long InUseBytes, long ReservedBytes, long PeakInUseBytes,
                                             long CacheHits, long CacheMisses);
