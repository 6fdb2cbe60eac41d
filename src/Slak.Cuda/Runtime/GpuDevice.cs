// The public handle of a GPU (or of the host emulator) for users of the kernel API: what they need to allocate
// DeviceBuffer<T>s, call the kernel entry points (DecomposedDwConv) and time them (Synchronize), and nothing of the
// launch machinery. It wraps the internal device abstraction (IGpuDevice: raw pointers, kernel handles, launches),
// which the library's launchers and the CUDA backend use directly.
namespace Slak.Cuda.Runtime;

/// <summary>An open GPU or the host emulator ("cuda-emu"), from <see cref="GpuDevices.Open"/>: allocate
/// <see cref="DeviceBuffer{T}"/>s on it and pass it to the kernel entry points (<c>Slak.Cuda.Kernels</c>).
/// Dispose it after the buffers allocated on it.</summary>
public sealed class GpuDevice : IDisposable
{
    internal GpuDevice(IGpuDevice inner) => Inner = inner;

    /// <summary>The device the library's launchers run on.</summary>
    internal IGpuDevice Inner { get; }

    /// <summary>Human-readable name, e.g. "NVIDIA H200 (sm_90)" or "cuda-emu (host emulator)".</summary>
    public string Name => Inner.Name;

    /// <summary>True for the host emulator, which runs the same kernels on the CPU (slowly; for testing).</summary>
    public bool IsEmulated => Inner.IsEmulated;

    /// <summary>Device ordinal (0 for the emulator).</summary>
    public int Ordinal => Inner.Ordinal;

    /// <summary>Compute capability (major, minor); the emulator reports (9, 0).</summary>
    public (int Major, int Minor) ComputeCapability => Inner.ComputeCapability;

    /// <summary>Statistics of the device's caching allocator (bytes in use, reserved, peak, cache hits and
    /// misses).</summary>
    public GpuMemoryStats MemoryStats => Inner.MemoryStats;

    /// <summary>Waits until every kernel queued on the device has finished (call it before reading a timer).</summary>
    public void Synchronize() => Inner.Synchronize();

    /// <summary>Returns every cached, unused block of device memory to the driver.</summary>
    public void EmptyCache() => Inner.EmptyCache();

    /// <summary>Closes the device (its context or emulator instance).</summary>
    public void Dispose() => Inner.Dispose();

    /// <inheritdoc/>
    public override string ToString() => Name;
}
