// Per-kernel resource usage as reported by ptxas (-Xptxas -v): what decides occupancy and whether a kernel
// touches local memory (spills, stack frame), which the compile-all test forbids by default.
namespace Slak.Cuda.Compilation;

/// <summary>ptxas resource usage of one kernel entry for one architecture.</summary>
/// <param name="Kernel">Entry name (unmangled for extern "C").</param>
/// <param name="Architecture">"sm_80", "sm_90", ...</param>
/// <param name="Registers">Registers per thread.</param>
/// <param name="SharedBytes">Static shared memory per block (dynamic shared memory is not included).</param>
/// <param name="StackFrameBytes">Per-thread stack frame (local memory) in bytes.</param>
/// <param name="SpillStoreBytes">Bytes of register spill stores.</param>
/// <param name="SpillLoadBytes">Bytes of register spill loads.</param>
/// <param name="ConstantBytes">Bytes of cmem[0] (kernel parameters and constants), 0 when not reported.</param>
internal sealed record KernelResources(string Kernel, string Architecture, int Registers, int SharedBytes,
                                     int StackFrameBytes, int SpillStoreBytes, int SpillLoadBytes, int ConstantBytes)
{
    /// <summary>True when the kernel uses local memory for spills or a stack frame.</summary>
    public bool UsesLocalMemory => StackFrameBytes > 0 || SpillStoreBytes > 0 || SpillLoadBytes > 0;
}
