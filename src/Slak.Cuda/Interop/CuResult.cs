// Status codes of the CUDA driver API (cuda.h CUresult), the subset worth naming plus the numeric fallback.
// Values are fixed by the driver ABI; names follow cuda.h without the CUDA_ prefix, in .NET casing.
namespace Slak.Cuda.Interop;

/// <summary>A CUDA driver API status code (<c>CUresult</c>).</summary>
public enum CuResult
{
    /// <summary><c>CUDA_SUCCESS</c>.</summary>
    Success = 0,
    /// <summary><c>CUDA_ERROR_INVALID_VALUE</c>.</summary>
    ErrorInvalidValue = 1,
    /// <summary><c>CUDA_ERROR_OUT_OF_MEMORY</c>.</summary>
    ErrorOutOfMemory = 2,
    /// <summary><c>CUDA_ERROR_NOT_INITIALIZED</c>.</summary>
    ErrorNotInitialized = 3,
    /// <summary><c>CUDA_ERROR_DEINITIALIZED</c>.</summary>
    ErrorDeinitialized = 4,
    /// <summary><c>CUDA_ERROR_PROFILER_DISABLED</c>.</summary>
    ErrorProfilerDisabled = 5,
    /// <summary><c>CUDA_ERROR_STUB_LIBRARY</c>.</summary>
    ErrorStubLibrary = 34,
    /// <summary><c>CUDA_ERROR_DEVICE_UNAVAILABLE</c>.</summary>
    ErrorDeviceUnavailable = 46,
    /// <summary><c>CUDA_ERROR_NO_DEVICE</c>.</summary>
    ErrorNoDevice = 100,
    /// <summary><c>CUDA_ERROR_INVALID_DEVICE</c>.</summary>
    ErrorInvalidDevice = 101,
    /// <summary><c>CUDA_ERROR_DEVICE_NOT_LICENSED</c>.</summary>
    ErrorDeviceNotLicensed = 102,
    /// <summary><c>CUDA_ERROR_INVALID_IMAGE</c>.</summary>
    ErrorInvalidImage = 200,
    /// <summary><c>CUDA_ERROR_INVALID_CONTEXT</c>.</summary>
    ErrorInvalidContext = 201,
    /// <summary><c>CUDA_ERROR_CONTEXT_ALREADY_CURRENT</c>.</summary>
    ErrorContextAlreadyCurrent = 202,
    /// <summary><c>CUDA_ERROR_MAP_FAILED</c>.</summary>
    ErrorMapFailed = 205,
    /// <summary><c>CUDA_ERROR_UNMAP_FAILED</c>.</summary>
    ErrorUnmapFailed = 206,
    /// <summary><c>CUDA_ERROR_ARRAY_IS_MAPPED</c>.</summary>
    ErrorArrayIsMapped = 207,
    /// <summary><c>CUDA_ERROR_ALREADY_MAPPED</c>.</summary>
    ErrorAlreadyMapped = 208,
    /// <summary><c>CUDA_ERROR_NO_BINARY_FOR_GPU</c>.</summary>
    ErrorNoBinaryForGpu = 209,
    /// <summary><c>CUDA_ERROR_ALREADY_ACQUIRED</c>.</summary>
    ErrorAlreadyAcquired = 210,
    /// <summary><c>CUDA_ERROR_NOT_MAPPED</c>.</summary>
    ErrorNotMapped = 211,
    /// <summary><c>CUDA_ERROR_UNSUPPORTED_LIMIT</c>.</summary>
    ErrorUnsupportedLimit = 215,
    /// <summary><c>CUDA_ERROR_CONTEXT_ALREADY_IN_USE</c>.</summary>
    ErrorContextAlreadyInUse = 216,
    /// <summary><c>CUDA_ERROR_INVALID_PTX</c>.</summary>
    ErrorInvalidPtx = 218,
    /// <summary><c>CUDA_ERROR_INVALID_GRAPHICS_CONTEXT</c>.</summary>
    ErrorInvalidGraphicsContext = 219,
    /// <summary><c>CUDA_ERROR_NVLINK_UNCORRECTABLE</c>.</summary>
    ErrorNvlinkUncorrectable = 220,
    /// <summary><c>CUDA_ERROR_JIT_COMPILER_NOT_FOUND</c>.</summary>
    ErrorJitCompilerNotFound = 221,
    /// <summary><c>CUDA_ERROR_UNSUPPORTED_PTX_VERSION</c>.</summary>
    ErrorUnsupportedPtxVersion = 222,
    /// <summary><c>CUDA_ERROR_JIT_COMPILATION_DISABLED</c>.</summary>
    ErrorJitCompilationDisabled = 223,
    /// <summary><c>CUDA_ERROR_INVALID_SOURCE</c>.</summary>
    ErrorInvalidSource = 300,
    /// <summary><c>CUDA_ERROR_FILE_NOT_FOUND</c>.</summary>
    ErrorFileNotFound = 301,
    /// <summary><c>CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND</c>.</summary>
    ErrorSharedObjectSymbolNotFound = 302,
    /// <summary><c>CUDA_ERROR_SHARED_OBJECT_INIT_FAILED</c>.</summary>
    ErrorSharedObjectInitFailed = 303,
    /// <summary><c>CUDA_ERROR_OPERATING_SYSTEM</c>.</summary>
    ErrorOperatingSystem = 304,
    /// <summary><c>CUDA_ERROR_INVALID_HANDLE</c>.</summary>
    ErrorInvalidHandle = 400,
    /// <summary><c>CUDA_ERROR_ILLEGAL_STATE</c>.</summary>
    ErrorIllegalState = 401,
    /// <summary><c>CUDA_ERROR_NOT_FOUND</c>.</summary>
    ErrorNotFound = 500,
    /// <summary><c>CUDA_ERROR_NOT_READY</c>.</summary>
    ErrorNotReady = 600,
    /// <summary><c>CUDA_ERROR_ILLEGAL_ADDRESS</c>.</summary>
    ErrorIllegalAddress = 700,
    /// <summary><c>CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES</c>.</summary>
    ErrorLaunchOutOfResources = 701,
    /// <summary><c>CUDA_ERROR_LAUNCH_TIMEOUT</c>.</summary>
    ErrorLaunchTimeout = 702,
    /// <summary><c>CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING</c>.</summary>
    ErrorLaunchIncompatibleTexturing = 703,
    /// <summary><c>CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED</c>.</summary>
    ErrorPeerAccessAlreadyEnabled = 704,
    /// <summary><c>CUDA_ERROR_PEER_ACCESS_NOT_ENABLED</c>.</summary>
    ErrorPeerAccessNotEnabled = 705,
    /// <summary><c>CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE</c>.</summary>
    ErrorPrimaryContextActive = 708,
    /// <summary><c>CUDA_ERROR_CONTEXT_IS_DESTROYED</c>.</summary>
    ErrorContextIsDestroyed = 709,
    /// <summary><c>CUDA_ERROR_ASSERT</c>.</summary>
    ErrorAssert = 710,
    /// <summary><c>CUDA_ERROR_TOO_MANY_PEERS</c>.</summary>
    ErrorTooManyPeers = 711,
    /// <summary><c>CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED</c>.</summary>
    ErrorHostMemoryAlreadyRegistered = 712,
    /// <summary><c>CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED</c>.</summary>
    ErrorHostMemoryNotRegistered = 713,
    /// <summary><c>CUDA_ERROR_HARDWARE_STACK_ERROR</c>.</summary>
    ErrorHardwareStackError = 714,
    /// <summary><c>CUDA_ERROR_ILLEGAL_INSTRUCTION</c>.</summary>
    ErrorIllegalInstruction = 715,
    /// <summary><c>CUDA_ERROR_MISALIGNED_ADDRESS</c>.</summary>
    ErrorMisalignedAddress = 716,
    /// <summary><c>CUDA_ERROR_INVALID_ADDRESS_SPACE</c>.</summary>
    ErrorInvalidAddressSpace = 717,
    /// <summary><c>CUDA_ERROR_INVALID_PC</c>.</summary>
    ErrorInvalidPc = 718,
    /// <summary><c>CUDA_ERROR_LAUNCH_FAILED</c>.</summary>
    ErrorLaunchFailed = 719,
    /// <summary><c>CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE</c>.</summary>
    ErrorCooperativeLaunchTooLarge = 720,
    /// <summary><c>CUDA_ERROR_NOT_PERMITTED</c>.</summary>
    ErrorNotPermitted = 800,
    /// <summary><c>CUDA_ERROR_NOT_SUPPORTED</c>.</summary>
    ErrorNotSupported = 801,
    /// <summary><c>CUDA_ERROR_SYSTEM_NOT_READY</c>.</summary>
    ErrorSystemNotReady = 802,
    /// <summary><c>CUDA_ERROR_SYSTEM_DRIVER_MISMATCH</c>.</summary>
    ErrorSystemDriverMismatch = 803,
    /// <summary><c>CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE</c>.</summary>
    ErrorCompatNotSupportedOnDevice = 804,
    /// <summary><c>CUDA_ERROR_UNKNOWN</c>.</summary>
    ErrorUnknown = 999,
}
