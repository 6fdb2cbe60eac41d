// The exception an allocation on a device throws when the memory is not there even after the caching allocator
// returned its unused blocks to the driver (DeviceBuffer<T>, tensors on cuda).
namespace Slak.Cuda.Runtime;

/// <summary>Device memory could not be allocated even after emptying the cache.</summary>
public sealed class GpuOutOfMemoryException(string message) : Exception(message);
