// The error of a kernel run by the host emulator (__trap, a failed device assertion, a deadlock, misuse of a warp
// intrinsic, an invalid launch configuration caught by the emulator).
namespace Slak.Cuda.Emulation;

/// <summary>A kernel launch on the emulated device failed; the message names the kernel, block and thread.</summary>
public sealed class EmulatorException(string kernelName, string message) : Exception(message)
{
    /// <summary>The <c>extern "C"</c> name of the kernel that failed.</summary>
    public string KernelName { get; } = kernelName;
}
