// Enumerations of the CUDA driver API that the bindings take as arguments (values fixed by cuda.h).
namespace Slak.Cuda.Interop;

/// <summary><c>CUdevice_attribute</c> (subset).</summary>
internal enum CuDeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    WarpSize = 10,
    MaxRegistersPerBlock = 12,
    ClockRate = 13,
    MultiprocessorCount = 16,
    PciBusId = 33,
    PciDeviceId = 34,
    MemoryClockRate = 36,
    GlobalMemoryBusWidth = 37,
    L2CacheSize = 38,
    MaxThreadsPerMultiprocessor = 39,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MaxSharedMemoryPerMultiprocessor = 81,
    MaxSharedMemoryPerBlockOptin = 97,
}

/// <summary><c>CUfunction_attribute</c>.</summary>
internal enum CuFunctionAttribute
{
    MaxThreadsPerBlock = 0,
    SharedSizeBytes = 1,
    ConstSizeBytes = 2,
    LocalSizeBytes = 3,
    NumRegs = 4,
    PtxVersion = 5,
    BinaryVersion = 6,
    CacheModeCa = 7,
    MaxDynamicSharedSizeBytes = 8,
    PreferredSharedMemoryCarveout = 9,
}

/// <summary>Flag values for streams, events and pinned host memory.</summary>
internal static class CuFlags
{
    public const uint StreamDefault = 0;
    public const uint StreamNonBlocking = 1;
    public const uint EventDefault = 0;
    public const uint EventBlockingSync = 1;
    public const uint EventDisableTiming = 2;
    public const uint MemHostAllocPortable = 1;
    public const uint MemHostAllocDeviceMap = 2;
    public const uint MemHostAllocWriteCombined = 4;
}
