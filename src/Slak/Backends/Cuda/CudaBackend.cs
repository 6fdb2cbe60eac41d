// PLACEHOLDER until the CUDA backend lands (issue 4): every CUDA device request fails with a clear message.
namespace Slak.Backends.Cuda;

/// <summary>The CUDA backend (not built yet).</summary>
public static class CudaBackend
{
    /// <summary>Always throws: the CUDA backend is not part of this build yet.</summary>
    public static IBackend For(Device device) =>
        throw new NotSupportedException($"device {device}: the CUDA backend is not available in this build");
}
