// Status codes of cuBLAS (cublas_api.h cublasStatus_t). Values are fixed by the library ABI.
namespace Slak.Cuda.Interop;

/// <summary>A cuBLAS status code (<c>cublasStatus_t</c>).</summary>
public enum CublasStatus
{
    /// <summary><c>CUBLAS_STATUS_SUCCESS</c>.</summary>
    Success = 0,
    /// <summary><c>CUBLAS_STATUS_NOT_INITIALIZED</c>.</summary>
    NotInitialized = 1,
    /// <summary><c>CUBLAS_STATUS_ALLOC_FAILED</c>.</summary>
    AllocFailed = 3,
    /// <summary><c>CUBLAS_STATUS_INVALID_VALUE</c>.</summary>
    InvalidValue = 7,
    /// <summary><c>CUBLAS_STATUS_ARCH_MISMATCH</c>.</summary>
    ArchMismatch = 8,
    /// <summary><c>CUBLAS_STATUS_MAPPING_ERROR</c>.</summary>
    MappingError = 11,
    /// <summary><c>CUBLAS_STATUS_EXECUTION_FAILED</c>.</summary>
    ExecutionFailed = 13,
    /// <summary><c>CUBLAS_STATUS_INTERNAL_ERROR</c>.</summary>
    InternalError = 14,
    /// <summary><c>CUBLAS_STATUS_NOT_SUPPORTED</c>.</summary>
    NotSupported = 15,
    /// <summary><c>CUBLAS_STATUS_LICENSE_ERROR</c>.</summary>
    LicenseError = 16,
}
