// The emulated device the emulator's own test fixtures share: opened once per fixture, disposed after its last test.
using NUnit.Framework;
using Slak.Cuda.Emulation;

namespace Slak.Tests.Cuda;

/// <summary>Base of the fixtures that launch tests/kernels or cuda/kernels on one
/// <see cref="EmulatedDevice"/>.</summary>
public abstract class EmulatedDeviceFixture
{
    /// <summary>The fixture's device (open from the first test to the last).</summary>
    private protected EmulatedDevice Emu { get; private set; } = null!;

    [OneTimeSetUp]
    public void OpenDevice() => Emu = EmulatedDevice.Open();

    [OneTimeTearDown]
    public void CloseDevice() => Emu.Dispose();
}
