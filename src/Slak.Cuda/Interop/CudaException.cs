// A failed CUDA driver call. The message carries the driver's error name and text plus the C# expression that
// made the call (captured by CallerArgumentExpression), so a log line alone says what failed and where.
using System.Runtime.CompilerServices;

namespace Slak.Cuda.Interop;

/// <summary>A CUDA driver API call returned an error.</summary>
public sealed class CudaException : Exception
{
    /// <summary>Creates the exception for <paramref name="result"/> with a full message.</summary>
    public CudaException(CuResult result, string message) : base(message) => Result = result;

    /// <summary>The driver status.</summary>
    public CuResult Result { get; }

    /// <summary>Throws a <see cref="CudaException"/> unless <paramref name="result"/> is success.</summary>
    internal static void ThrowIfFailed(CuResult result, [CallerArgumentExpression(nameof(result))] string call = "")
    {
        if (result != CuResult.Success)
        {
            throw Create(result, call, context: null);
        }
    }

    /// <summary>Builds the exception: "CUDA_ERROR_X: text, in call [context]".</summary>
    internal static CudaException Create(CuResult result, string call, string? context)
    {
        string described;
        try
        {
            described = Driver.Api.Describe(result);
        }
        catch (Exception e) when (e is CudaLibraryNotFoundException or EntryPointNotFoundException)
        {
            described = $"CUresult {(int)result} ({result})";
        }

        string suffix = context is null ? string.Empty : $" [{context}]";
        return new CudaException(result, $"{described}, in {call}{suffix}");
    }
}
