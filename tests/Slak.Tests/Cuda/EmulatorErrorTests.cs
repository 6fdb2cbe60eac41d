// Errors of the emulated device come back as exceptions that name the kernel (and block/thread where it applies),
// never as a crash of the test host: unknown kernels, oversized blocks, wrong argument counts, __trap, failed device
// assertions, warp intrinsics waiting for a returned lane, deadlocks; the device keeps working afterwards.
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using static Slak.Tests.Cuda.EmulatorTestSupport;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed unsafe class EmulatorErrorTests : EmulatedDeviceFixture
{
    [Test]
    public void UnknownKernelIsAnArgumentError()
    {
        var ex = Assert.Throws<ArgumentException>(() => Emu.GetKernel("no_such_kernel"))!;
        Assert.That(ex.Message, Does.Contain("no_such_kernel"));
        Assert.That(ex.ParamName, Is.EqualTo("name"));
    }

    [Test]
    public void OversizedBlockIsRejectedWithItsDimensions()
    {
        var p = Poisoned(Emu, 16);
        ulong o = p.Address;
        var v = 1f;
        var n = 16L;
        var ex = Catch<ArgumentException>("fill_kernel", 1, new Dim3(64, 32), [(nint)(&o), (nint)(&v), (nint)(&n)]);
        Assert.That(ex.Message, Does.Contain("fill_kernel").And.Contain("(64,32,1)").And.Contain("2048"));
        Emu.Free(p);
    }

    [Test]
    public void WrongArgumentCountIsRejected()
    {
        var p = Poisoned(Emu, 16);
        ulong o = p.Address;
        var ex = Catch<ArgumentException>("fill_kernel", 1, 32, [(nint)(&o)]);
        Assert.That(ex.Message, Does.Contain("takes 3 arguments, got 1"));
        Emu.Free(p);
    }

    [TestCase(0, "__trap()")]
    [TestCase(1, "device assertion `i != fault_index` failed")]
    public void TrapAndDeviceAssertNameKernelBlockAndThread(int useAssert, string expected)
    {
        const int n = 300;
        var p = Poisoned(Emu, n);
        ulong o = p.Address;
        int count = n, fault = 170, mode = useAssert;
        var ex = Catch<EmulatorException>("selftest_fault_kernel", 3, 128,
            [(nint)(&o), (nint)(&count), (nint)(&fault), (nint)(&mode)]);
        Assert.That(ex.KernelName, Is.EqualTo("selftest_fault_kernel"));
        Assert.That(ex.Message, Does.Contain(expected).And.Contain("block (1,0,0) thread (42,0,0)"));
        AssertDeviceStillWorks();
        Emu.Free(p);
    }

    [TestCase(0, "returned from the kernel")]  // either order of arrival is reported
    [TestCase(1, "deadlock")]
    public void WarpMisuseIsReported(int mode, string expected)
    {
        var p = Poisoned(Emu, 32);
        ulong o = p.Address;
        var m = mode;
        var ex = Catch<EmulatorException>("selftest_misuse_kernel", 1, 32, [(nint)(&o), (nint)(&m)]);
        Assert.That(ex.Message, Does.Contain(expected));
        AssertDeviceStillWorks();
        Emu.Free(p);
    }

    [Test]
    public void OutOfRangeCopiesAreRejected()
    {
        var p = Emu.Allocate(64);
        var big = new byte[65];
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Emu.CopyToDevice(big, p))!;
        Assert.That(ex.Message, Does.Contain("65 bytes"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Emu.CopyToHost(p.Offset(32), new byte[33]));
        Assert.Throws<ArgumentException>(() => Emu.CopyToHost(new DevicePtr(8), new byte[4]));
        Emu.Free(p);
    }

    // Launches and returns the exception of type T it must throw (lambdas cannot capture the argument locals).
    private T Catch<T>(string kernel, Dim3 grid, Dim3 block, ReadOnlySpan<nint> args) where T : Exception
    {
        try
        {
            Launch(Emu, kernel, grid, block, 0, args);
        }
        catch (T ex)
        {
            TestContext.Out.WriteLine($"{typeof(T).Name}: {ex.Message}");
            return ex;
        }
        Assert.Fail($"launching {kernel} should have thrown {typeof(T).Name}");
        return null!;
    }

    private void AssertDeviceStillWorks()
    {
        var q = Poisoned(Emu, 100);
        ElementwiseKernels.Fill(Emu, q, 3f, 100);
        Assert.That(Download<float>(Emu, q, 100), Is.All.EqualTo(3f), "a launch after a failed one");
        Emu.Free(q);
    }
}
