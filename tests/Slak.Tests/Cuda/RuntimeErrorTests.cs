// Error messages of the bindings: the driver error (name and text, or the number when libcuda is absent), the
// C# call expression captured by CallerArgumentExpression, and the context of the failing operation.
using NUnit.Framework;
using Slak.Cuda.Interop;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class RuntimeErrorTests
{
    [Test]
    public void CudaExceptionNamesErrorCallAndContext()
    {
        var e = Assert.Throws<CudaException>(() => CudaException.ThrowIfFailed(FakeCall(CuResult.ErrorOutOfMemory)));

        Assert.That(e!.Result, Is.EqualTo(CuResult.ErrorOutOfMemory));
        Assert.That(e.Message, Does.Contain("FakeCall(CuResult.ErrorOutOfMemory)"), "the call expression");
        Assert.That(e.Message, Does.Contain("CUDA_ERROR_OUT_OF_MEMORY").Or.Contain("CUresult 2 (ErrorOutOfMemory)"));

        CudaException launch = CudaException.Create(CuResult.ErrorIllegalAddress, "cuLaunchKernel", "kernel 'k' grid=(1,1,1)");
        Assert.That(launch.Message, Does.Contain("cuLaunchKernel").And.Contain("[kernel 'k' grid=(1,1,1)]"));
        Assert.DoesNotThrow(() => CudaException.ThrowIfFailed(CuResult.Success));
    }

    [Test]
    public void NvrtcExceptionUsesNvrtcErrorString()
    {
        NvrtcTestSupport.RequireNvrtc();
        var e = Assert.Throws<NvrtcException>(() => NvrtcException.ThrowIfFailed(NvrtcResult.ErrorInvalidOption));
        Assert.That(e!.Message, Does.Contain("NVRTC_ERROR_INVALID_OPTION").And.Contain("NvrtcResult.ErrorInvalidOption"));
    }

    private static CuResult FakeCall(CuResult result) => result;
}
