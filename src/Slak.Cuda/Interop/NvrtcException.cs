// A failed NVRTC call other than a compile error (compile errors are NvrtcCompileException, which holds the log).
using System.Runtime.CompilerServices;

namespace Slak.Cuda.Interop;

/// <summary>An NVRTC call returned an error.</summary>
public sealed class NvrtcException : Exception
{
    /// <summary>Creates the exception for <paramref name="result"/>.</summary>
    public NvrtcException(NvrtcResult result, string message) : base(message) => Result = result;

    /// <summary>The NVRTC status.</summary>
    public NvrtcResult Result { get; }

    /// <summary>Throws an <see cref="NvrtcException"/> unless <paramref name="result"/> is success.</summary>
    internal static void ThrowIfFailed(NvrtcResult result, [CallerArgumentExpression(nameof(result))] string call = "")
    {
        if (result != NvrtcResult.Success)
        {
            throw new NvrtcException(result, $"{Nvrtc.Api.Describe(result)}, in {call}");
        }
    }
}
