// A failed cuBLAS call, with the status name, cuBLAS's own text when the library provides it, and the call.
using System.Runtime.CompilerServices;

namespace Slak.Cuda.Interop;

/// <summary>A cuBLAS call returned an error.</summary>
public sealed class CublasException : Exception
{
    /// <summary>Creates the exception for <paramref name="status"/>.</summary>
    public CublasException(CublasStatus status, string message) : base(message) => Status = status;

    /// <summary>The cuBLAS status.</summary>
    public CublasStatus Status { get; }

    /// <summary>Throws a <see cref="CublasException"/> unless <paramref name="status"/> is success.</summary>
    internal static void ThrowIfFailed(CublasStatus status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != CublasStatus.Success)
        {
            throw new CublasException(status, $"{Cublas.Api.Describe(status)}, in {call}");
        }
    }
}
