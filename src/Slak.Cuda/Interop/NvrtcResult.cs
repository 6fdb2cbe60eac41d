// Status codes of NVRTC (nvrtc.h nvrtcResult). Values are fixed by the library ABI.
namespace Slak.Cuda.Interop;

/// <summary>An NVRTC status code (<c>nvrtcResult</c>).</summary>
public enum NvrtcResult
{
    /// <summary><c>NVRTC_SUCCESS</c>.</summary>
    Success = 0,
    /// <summary><c>NVRTC_ERROR_OUT_OF_MEMORY</c>.</summary>
    ErrorOutOfMemory = 1,
    /// <summary><c>NVRTC_ERROR_PROGRAM_CREATION_FAILURE</c>.</summary>
    ErrorProgramCreationFailure = 2,
    /// <summary><c>NVRTC_ERROR_INVALID_INPUT</c>.</summary>
    ErrorInvalidInput = 3,
    /// <summary><c>NVRTC_ERROR_INVALID_PROGRAM</c>.</summary>
    ErrorInvalidProgram = 4,
    /// <summary><c>NVRTC_ERROR_INVALID_OPTION</c>.</summary>
    ErrorInvalidOption = 5,
    /// <summary><c>NVRTC_ERROR_COMPILATION</c>.</summary>
    ErrorCompilation = 6,
    /// <summary><c>NVRTC_ERROR_BUILTIN_OPERATION_FAILURE</c>.</summary>
    ErrorBuiltinOperationFailure = 7,
    /// <summary><c>NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION</c>.</summary>
    ErrorNoNameExpressionsAfterCompilation = 8,
    /// <summary><c>NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION</c>.</summary>
    ErrorNoLoweredNamesBeforeCompilation = 9,
    /// <summary><c>NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID</c>.</summary>
    ErrorNameExpressionNotValid = 10,
    /// <summary><c>NVRTC_ERROR_INTERNAL_ERROR</c>.</summary>
    ErrorInternalError = 11,
}
