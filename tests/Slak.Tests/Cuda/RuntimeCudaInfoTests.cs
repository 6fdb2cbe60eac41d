// Availability and `slak info` on whatever machine runs the tests: without CUDA the reason is one line and the
// report says so; with CUDA the report lists the devices. Device names are validated.
using NUnit.Framework;
using Slak.Cuda.Interop;
using Slak.Cuda.Runtime;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class RuntimeCudaInfoTests
{
    [Test]
    public void AvailabilityReasonIsOneLineAndMatchesTheReport()
    {
        bool available = GpuDevices.IsCudaAvailable(out string reason);
        string report = CudaInfo.Describe();
        TestContext.Out.WriteLine(report);

        Assert.That(reason, Is.Not.Empty.And.Not.Contain("\n"));
        string firstLine = report.Split('\n')[0];
        Assert.That(firstLine, Does.Contain(reason));
        Assert.That(firstLine, Does.Contain(available ? "available" : "unavailable"));
        Assert.That(report, Does.Contain("NVRTC:").And.Contain("cuBLAS:").And.Contain("Driver:").And.Contain("Kernel cache:"));
        if (available)
        {
            Assert.That(report, Does.Contain("Device cuda:0:"));
        }
    }

    [Test]
    public void WithoutCudaOpeningAGpuFailsWithTheReason()
    {
        if (GpuDevices.IsCudaAvailable(out string reason))
        {
            Assert.Ignore($"CUDA is available here ({reason})");
        }

        Exception? e = Assert.Catch(() => GpuDevices.Open("cuda:0").Dispose());
        Assert.That(e, Is.TypeOf<CudaLibraryNotFoundException>().Or.TypeOf<CudaException>());
        if (e is CudaLibraryNotFoundException missing)
        {
            Assert.That(missing.Message, Does.Contain("libcuda.so.1").Or.Contain("nvcuda.dll"));
            Assert.That(reason, Does.Contain("CUDA driver library not found"));
        }
    }

    [TestCase("tpu")]
    [TestCase("cuda:")]
    [TestCase("cuda:-1")]
    [TestCase("cuda:x")]
    [TestCase("")]
    public void UnknownDeviceNamesAreRejected(string spec)
    {
        var e = Assert.Throws<ArgumentException>(() => GpuDevices.Open(spec));
        Assert.That(e!.ParamName, Is.EqualTo("spec"));
        Assert.That(e.Message, Does.Contain($"'{spec}'").And.Contain("cuda-emu"));
    }

    [Test]
    public void GemmArgumentsAreValidatedWithNames()
    {
        var p = new DevicePtr(0x1000);
        var lda = Assert.Throws<ArgumentException>(() => GemmArguments.Validate(false, false, 4, 5, 6, p, 5, p, 5, p, 5));
        Assert.That(lda!.Message, Does.Contain("lda=5").And.Contain("k=6"));
        var ldb = Assert.Throws<ArgumentException>(() => GemmArguments.Validate(false, true, 4, 5, 6, p, 6, p, 5, p, 5));
        Assert.That(ldb!.Message, Does.Contain("ldb=5"));
        var sizes = Assert.Throws<ArgumentException>(() => GemmArguments.Validate(false, false, -1, 5, 6, p, 6, p, 5, p, 5));
        Assert.That(sizes!.Message, Does.Contain("m=-1"));
        var nul = Assert.Throws<ArgumentException>(
            () => GemmArguments.Validate(true, false, 4, 5, 6, DevicePtr.Null, 4, p, 5, p, 5));
        Assert.That(nul!.Message, Does.Contain("a=0x0"));
        Assert.DoesNotThrow(() => GemmArguments.Validate(true, true, 4, 5, 6, p, 4, p, 6, p, 5));
    }
}
