// Resolving --device: "auto" takes the first CUDA GPU when the CUDA backend can open one, else the CPU, and says why.
using Slak.Backends;

namespace Slak.Cli.Training;

/// <summary>Device selection for the CLI.</summary>
internal static class DeviceChoice
{
    /// <summary>The device for <paramref name="spec"/> (auto, cpu, cuda, cuda:N, cuda-emu), with a note for
    /// auto.</summary>
    public static (Device Device, string? Note) Resolve(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!string.Equals(spec.Trim(), "auto", StringComparison.OrdinalIgnoreCase))
        {
            var d = Device.Parse(spec);
            BackendRegistry.For(d);
            return (d, null);
        }
        try
        {
            BackendRegistry.For(Device.Cuda0);
            return (Device.Cuda0, null);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            string reason = e.Message.Split('\n')[0];
            return (Device.Cpu, $"device auto: using the CPU ({reason})");
        }
    }
}
