// Launch checks of the emulated device that a GPU also makes (or that decide whether a GPU launch is valid): every
// argument's size against the kernel's parameter type, static + dynamic shared memory against the per-block limit
// (48 KiB unless the launch opts in, which the CUDA device does above 48 KiB of dynamic memory; 227 KiB at most),
// and the block size against the kernel's __launch_bounds__. Kernels from tests/kernels.
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using static Slak.Tests.Cuda.EmulatorTestSupport;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed unsafe class EmulatorLaunchCheckTests : EmulatedDeviceFixture
{
    [Test]
    public void ArgumentsOfTheRightSizesRun()
    {
        var dout = Emu.Allocate(8);
        var args = new KernelArgs();
        args.Add(dout);
        args.Add(1);
        args.Add(2L);
        args.Add(3.5f);
        args.Launch(Emu, "probe_arg_sizes_kernel", 1, 32);
        Assert.That(Download<double>(Emu, dout, 1)[0], Is.EqualTo(6.5));
        Emu.Free(dout);
    }

    [TestCase(1, "argument 1 has 8 bytes but the kernel's parameter 1 has 4 bytes")]   // long for int
    [TestCase(2, "argument 2 has 4 bytes but the kernel's parameter 2 has 8 bytes")]   // int for long long
    [TestCase(3, "argument 3 has 8 bytes but the kernel's parameter 3 has 4 bytes")]   // double for float
    public void ArgumentOfTheWrongSizeIsRejected(int wrong, string expected)
    {
        var dout = Emu.Allocate(8);
        var args = new KernelArgs();
        args.Add(dout);
        if (wrong == 1) args.Add(1L); else args.Add(1);
        if (wrong == 2) args.Add(2); else args.Add(2L);
        if (wrong == 3) args.Add(3.5); else args.Add(3.5f);
        EmulatorException? ex = null;
        try
        {
            args.Launch(Emu, "probe_arg_sizes_kernel", 1, 32);
        }
        catch (EmulatorException e)
        {
            ex = e;
        }
        Assert.That(ex, Is.Not.Null, "a value of the wrong type must be rejected");
        Assert.That(ex!.Message, Does.Contain("probe_arg_sizes_kernel").And.Contain(expected));
        Emu.Free(dout);
    }

    private void LaunchSharedProbe(DevicePtr dout, int dynamicBytes)
    {
        ulong o = dout.Address;
        Launch(Emu, "probe_static_plus_dynamic_kernel", 1, 32, dynamicBytes, (nint)(&o));
    }

    private EmulatorException SharedProbeFails(DevicePtr dout, int dynamicBytes)
    {
        ulong o = dout.Address;
        return LaunchFails<EmulatorException>(Emu, "probe_static_plus_dynamic_kernel", 1, 32, dynamicBytes,
                                              (nint)(&o));
    }

    [Test]
    public void StaticPlusDynamicSharedMemoryMustFitThePerBlockLimit()
    {
        var dout = Poisoned(Emu, 1);
        // 16 bytes static + 48 KiB dynamic: over the default 48 KiB, and 48 KiB dynamic is no opt-in (the fused
        // weight gradient's budget at K = 51 of issue 19).
        var ex = SharedProbeFails(dout, 48 * 1024);
        Assert.That(ex.Message, Does.Contain("probe_static_plus_dynamic_kernel")
            .And.Contain("16 bytes of static shared memory").And.Contain("+ 49152 dynamic = 49168 bytes")
            .And.Contain("limit of 49152 bytes"));
        LaunchSharedProbe(dout, 48 * 1024 - 16);  // exactly the limit
        Assert.That(Download<float>(Emu, dout, 1)[0], Is.EqualTo(1f));
        LaunchSharedProbe(dout, 64 * 1024);       // opted in: up to 227 KiB
        ex = SharedProbeFails(dout, 227 * 1024);
        Assert.That(ex.Message, Does.Contain("limit of 232448 bytes"));
        Emu.Free(dout);
    }

    [Test]
    public void BlockOverLaunchBoundsIsRejected()
    {
        var dout = Poisoned(Emu, 256);
        ulong o = dout.Address;
        var ex = LaunchFails<EmulatorException>(Emu, "probe_bounded_kernel", 1, 256, 0, (nint)(&o));
        Assert.That(ex.Message, Does.Contain("probe_bounded_kernel").And.Contain("256 threads")
            .And.Contain("__launch_bounds__(128)"));
        Launch(Emu, "probe_bounded_kernel", 2, 128, 0, (nint)(&o));
        Assert.That(Download<float>(Emu, dout, 256), Has.All.EqualTo(1f));
        Emu.Free(dout);
    }
}
