// Maps a Device to the backend that serves it. CPU is always there; CUDA devices (real or emulated) are opened on
// first use through CudaBackend, which explains in its exception why a device is unavailable.
using Slak.Backends.Cpu;

namespace Slak.Backends;

/// <summary>Finds the backend of a device.</summary>
internal static class BackendRegistry
{
    /// <summary>The backend for <paramref name="device"/>.</summary>
    internal static IBackend For(Device device) => device.Type switch
    {
        DeviceType.Cpu => CpuBackend.Instance,
        DeviceType.Cuda or DeviceType.CudaEmu => Cuda.CudaBackend.For(device),
        _ => throw new ArgumentOutOfRangeException(nameof(device), device, "unknown device type"),
    };
}
