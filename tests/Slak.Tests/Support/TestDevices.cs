// The devices that backend tests run on. Test bodies are written once (fixtures derived from DeviceTest) and NUnit
// instantiates them per entry of All. Adding a backend is one line in All; a device that cannot be opened on this
// machine (CudaBackend throws NotSupportedException: no GPU, no driver, emulator not built) is reported as ignored
// with the reason, not failed.
using Slak.Backends;
using NUnit.Framework;

namespace Slak.Tests.Support;

/// <summary>Source of devices for backend tests.</summary>
public static class TestDevices
{
    /// <summary>Device names every backend test runs on.</summary>
    public static readonly string[] All =
    [
        "cpu",
        "cuda-emu",      // the CUDA backend over the host emulator (every kernel runs in CI)
        "cuda",          // a real GPU (skipped with the reason when none is present)
    ];

    /// <summary>Parses and opens <paramref name="name"/>; calls Assert.Ignore with the reason when
    /// unavailable.</summary>
    public static Device Open(string name)
    {
        var device = Device.Parse(name);
        try
        {
            _ = BackendRegistry.For(device);
        }
        catch (NotSupportedException ex)
        {
            Assert.Ignore($"device {name} is not available here: {ex.Message}");
        }
        return device;
    }
}
