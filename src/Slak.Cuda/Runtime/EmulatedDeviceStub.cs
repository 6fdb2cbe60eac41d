// STUB (cuda-runtime branch only): stands in for Slak.Cuda.Emulation.EmulatedDevice.Open(), which the emulator
// work provides. When both branches are merged, GpuDevices.OpenEmulator should call EmulatedDevice.Open() directly
// and this file should be deleted.
namespace Slak.Cuda.Runtime;

/// <summary>Placeholder for the host emulator's factory until the emulator is merged.</summary>
internal static class EmulatedDeviceStub
{
    /// <summary>Always throws: the emulator is not part of this build.</summary>
    public static IGpuDevice Open() =>
        throw new NotSupportedException("cuda-emu: the host emulator (Slak.Cuda.Emulation) is not part of this build");
}
