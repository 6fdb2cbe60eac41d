// Status codes of NVRTC (nvrtc.h nvrtcResult). Values are fixed by the library ABI.
namespace Slak.Cuda.Interop;

/// <summary>An NVRTC status code (<c>nvrtcResult</c>).</summary>
public enum NvrtcResult
{
    Success = 0,
    ErrorOutOfMemory = 1,
    ErrorProgramCreationFailure = 2,
    ErrorInvalidInput = 3,
    ErrorInvalidProgram = 4,
    ErrorInvalidOption = 5,
    ErrorCompilation = 6,
    ErrorBuiltinOperationFailure = 7,
    ErrorNoNameExpressionsAfterCompilation = 8,
    ErrorNoLoweredNamesBeforeCompilation = 9,
    ErrorNameExpressionNotValid = 10,
    ErrorInternalError = 11,
}
