// Status codes of cuBLAS (cublas_api.h cublasStatus_t). Values are fixed by the library ABI.
namespace Slak.Cuda.Interop;

/// <summary>A cuBLAS status code (<c>cublasStatus_t</c>).</summary>
public enum CublasStatus
{
    Success = 0,
    NotInitialized = 1,
    AllocFailed = 3,
    InvalidValue = 7,
    ArchMismatch = 8,
    MappingError = 11,
    ExecutionFailed = 13,
    InternalError = 14,
    NotSupported = 15,
    LicenseError = 16,
}
