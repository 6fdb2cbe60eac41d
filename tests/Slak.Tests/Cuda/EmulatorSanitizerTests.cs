// The sanitizers of the emulated device (EmulatedDevice.Checks), each shown catching a deliberately broken kernel of
// tests/kernels/emu_broken.cu: a missing __syncthreads changes the output when the block's threads run in reverse or
// shuffled order; an uninitialised static __shared__ reads as NaN; a read or write past the end of an allocation
// faults on its guard page and comes back as an EmulatorException naming kernel, block, thread and address; two
// threads writing one shared word between barriers are a reported race; an output the kernel left unwritten is a
// reported error. Each test sets the device's checks itself, whatever SLAK_EMU_CHECKS says.
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using static Slak.Tests.Cuda.EmulatorTestSupport;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed unsafe class EmulatorSanitizerTests : EmulatedDeviceFixture
{
    [SetUp]
    public void NoChecks() => Emu.Checks = EmulatorChecks.None;

    // Runs a (float* out, const float* in, int n) kernel on fresh buffers and returns the raw bits of `out`.
    private uint[] RunUnary(string kernel, float[] input, int block)
    {
        var n = input.Length;
        var din = Upload<float>(Emu, input);
        var dout = Poisoned(Emu, n);
        ulong o = dout.Address, i = din.Address;
        var count = n;
        Launch(Emu, kernel, (n + block - 1) / block, block, 0, (nint)(&o), (nint)(&i), (nint)(&count));
        var bits = Download<uint>(Emu, dout, n);
        Emu.Free(din);
        Emu.Free(dout);
        return bits;
    }

    private static float[] Ramp(int n) => Enumerable.Range(0, n).Select(i => 0.5f * i - 7f).ToArray();

    [Test]
    public void MissingSyncthreadsChangesTheOutputWhenTheScheduleIsPermuted()
    {
        var seed = (ulong)NewSeed();
        var input = Ramp(256);
        var (inOrder, reversed, shuffled) =
            RunInThreeOrders(Emu, () => RunUnary("broken_missing_sync_kernel", input, 64), seed);
        TestContext.Out.WriteLine($"seed {seed}: in order vs reversed {FirstDifference(inOrder, reversed)}, " +
                                  $"vs shuffled {FirstDifference(inOrder, shuffled)}");
        Assert.That(FirstDifference(inOrder, reversed), Is.Not.Null,
            "reversing the threads of a block must change the output of a kernel that lacks a __syncthreads");
        // The same kernel with its barrier is bit-identical in every order (and right).
        AssertScheduleIndependent(Emu, () => RunUnary("fixed_missing_sync_kernel", input, 64), seed, "fixed kernel");
        var fixedOut = RunUnary("fixed_missing_sync_kernel", input, 64);
        for (var i = 0; i < input.Length; i++)
            Assert.That(BitConverter.UInt32BitsToSingle(fixedOut[i]), Is.EqualTo(input[i / 64 * 64 + (i + 1) % 64]),
                $"element {i}");
    }

    [Test]
    public void ExecutionModelSelfTestIsScheduleIndependent()
    {
        var seed = (ulong)NewSeed();
        AssertScheduleIndependent(Emu, () => RunUnary("selftest_block_reverse_kernel", Ramp(1000), 256), seed,
            $"selftest_block_reverse_kernel seed={seed}");
    }

    [Test]
    public void ShuffledScheduleErrorsNameTheSeed()
    {
        Emu.Checks = EmulatorChecks.ShuffleSchedule;
        Emu.ScheduleSeed = 12345;
        var p = Poisoned(Emu, 300);
        ulong o = p.Address;
        int count = 300, fault = 170, mode = 0;
        var ex = LaunchFails<EmulatorException>(Emu, "selftest_fault_kernel", 3, 128, 0,
            (nint)(&o), (nint)(&count), (nint)(&fault), (nint)(&mode));
        Assert.That(ex.Message, Does.Contain("block (1,0,0) thread (42,0,0)").And.Contain("shuffled, seed 12345"));
        Emu.Free(p);
    }

    [Test]
    public void StaticSharedIsPoisonedBeforeEveryBlock()
    {
        const int blocks = 3;
        var input = Enumerable.Repeat(1f, 64 * blocks).ToArray();
        uint[] Run()
        {
            var din = Upload<float>(Emu, input);
            var dout = Poisoned(Emu, input.Length, 0);
            ulong o = dout.Address, i = din.Address;
            Launch(Emu, "broken_uninitialised_static_shared_kernel", blocks, 64, 0, (nint)(&o), (nint)(&i));
            var bits = Download<uint>(Emu, dout, input.Length);
            Emu.Free(din);
            Emu.Free(dout);
            return bits;
        }

        // (Without the check the accumulator keeps whatever the previous block or launch left: the result depends on
        // history, zeros in a fresh process, and the bug can pass a test.)
        Emu.Checks = EmulatorChecks.PoisonStaticShared;
        var poisoned = Run();
        Assert.That(poisoned, Has.All.EqualTo(0xFFFFFFFFu), "poison (0xFF bytes) + 1 keeps the poison's NaN bits");
    }

    [Test]
    public void PoisonedStaticSharedInAnOutputIsReportedWithKernelAndAddress()
    {
        Emu.Checks = EmulatorChecks.PoisonStaticShared | EmulatorChecks.UnwrittenOutputs;
        var din = Upload<float>(Emu, Enumerable.Repeat(1f, 64).ToArray());
        var dout = Emu.Allocate(64 * 4);
        var args = new KernelArgs();
        args.AddOutput(dout, 64 * 4);
        args.Add(din);
        EmulatorException? ex = null;
        try
        {
            args.Launch(Emu, "broken_uninitialised_static_shared_kernel", 1, 64);
        }
        catch (EmulatorException e)
        {
            ex = e;
        }
        Assert.That(ex, Is.Not.Null, "the poisoned output must be reported");
        TestContext.Out.WriteLine(ex!.Message);
        Assert.That(ex.KernelName, Is.EqualTo("broken_uninitialised_static_shared_kernel"));
        Assert.That(ex.Message, Does.Contain("output argument 0").And.Contain("64 of 64 words")
            .And.Contain($"0x{dout.Address:x}"));
        Emu.Free(din);
        Emu.Free(dout);
    }

    [Test]
    public void UnwrittenPartOfADeclaredOutputIsReported()
    {
        Emu.Checks = EmulatorChecks.UnwrittenOutputs;
        var dout = Emu.Allocate(64 * 4);
        var args = new KernelArgs();
        args.AddOutput(dout, 64 * 4);
        EmulatorException? ex = null;
        try
        {
            args.Launch(Emu, "probe_bounded_kernel", 1, 32);
        }
        catch (EmulatorException e)
        {
            ex = e;
        }
        Assert.That(ex, Is.Not.Null, "the unwritten half must be reported");
        Assert.That(ex!.Message, Does.Contain("32 of 64 words").And.Contain("first at word 32")
            .And.Contain($"0x{dout.Address + 128:x}"));
        // Fully written: no error.
        var full = new KernelArgs();
        full.AddOutput(dout, 64 * 4);
        full.Launch(Emu, "probe_bounded_kernel", 2, 32);
        Emu.Free(dout);
    }

    [TestCase("broken_read_past_end_kernel")]
    [TestCase("broken_write_past_end_kernel")]
    public void AccessPastTheEndFaultsWithKernelBlockThreadAndAddress(string kernel)
    {
        Emu.Checks = EmulatorChecks.BoundsCheck;  // allocations from now on end at a guard page
        const int n = 100;                          // 400 bytes: a multiple of 16, so the guard starts right after
        var din = Upload<float>(Emu, Ramp(n));
        var dout = Poisoned(Emu, n);
        ulong o = dout.Address, i = din.Address;
        var count = n;
        var ex = LaunchFails<EmulatorException>(Emu, kernel, 2, 64, 0, (nint)(&o), (nint)(&i), (nint)(&count));
        TestContext.Out.WriteLine(ex.Message);
        var target = kernel.Contains("read") ? din : dout;
        Assert.That(ex.KernelName, Is.EqualTo(kernel));
        Assert.That(ex.Message, Does.Contain("invalid memory access")
            .And.Contain("block (1,0,0) thread (35,0,0)")  // element 99 of 100: in[100] / out[100]
            .And.Contain($"0x{target.Address + 400:x}")
            .And.Contain($"0 bytes past the end of the 400-byte allocation at 0x{target.Address:x}"));

        // The process and the device survive: the same launch within bounds works.
        count = n - 1;
        Launch(Emu, kernel, 2, 64, 0, (nint)(&o), (nint)(&i), (nint)(&count));
        Emu.Free(din);
        Emu.Free(dout);
    }

    [Test]
    public void ManagedNullReferenceStillWorksAfterAKernelFault()
    {
        // The emulator's SIGSEGV handler chains to the .NET runtime's, which turns managed faults into exceptions.
        Emu.Checks = EmulatorChecks.BoundsCheck;
        var din = Upload<float>(Emu, Ramp(16));
        var dout = Poisoned(Emu, 16);
        ulong o = dout.Address, i = din.Address;
        var count = 16;
        LaunchFails<EmulatorException>(Emu, "broken_read_past_end_kernel", 1, 32, 0, (nint)(&o), (nint)(&i),
                                       (nint)(&count));
        Assert.Throws<NullReferenceException>(() => NullLength(null));
        Emu.Free(din);
        Emu.Free(dout);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static int NullLength(int[]? array) => array!.Length;

    [Test]
    public void SharedMemoryWriteWriteRaceIsReported()
    {
        Emu.Checks = EmulatorChecks.SharedRaces;
        var dout = Poisoned(Emu, 128);
        ulong o = dout.Address;
        var ex = LaunchFails<EmulatorException>(Emu, "broken_shared_race_kernel", 2, 64, 0, (nint)(&o));
        TestContext.Out.WriteLine(ex.Message);
        Assert.That(ex.Message, Does.Contain("broken_shared_race_kernel").And.Contain("shared-memory race")
            .And.Contain("static shared memory, offset").And.Contain("thread (0,0,0)")
            .And.Contain("thread (32,0,0)").And.Contain("block (0,0,0)").And.Contain("address 0x"));

        // Without the check the race goes unnoticed (the last writer wins, silently).
        Emu.Checks = EmulatorChecks.None;
        Launch(Emu, "broken_shared_race_kernel", 2, 64, 0, (nint)(&o));
        Emu.Free(dout);
    }

    [Test]
    public void RaceCheckAcceptsBarriersWarpSynchronousCodeAndSharedAtomics()
    {
        Emu.Checks = EmulatorChecks.SharedRaces | EmulatorChecks.ShuffleSchedule | EmulatorChecks.PoisonStaticShared;
        const int blocks = 3;
        var seed = NewSeed();
        var rng = new Random(seed);
        var x = Enumerable.Range(0, 64 * blocks).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var din = Upload<float>(Emu, x);
        var dout = Poisoned(Emu, 2 * blocks);
        ulong o = dout.Address, i = din.Address;
        Launch(Emu, "clean_shared_kernel", blocks, 64, 0, (nint)(&o), (nint)(&i));
        var got = Download<float>(Emu, dout, 2 * blocks);
        var want = new double[2 * blocks];
        for (var b = 0; b < blocks; b++)
        {
            var row = x.AsSpan(64 * b, 64).ToArray();
            want[2 * b] = row.Sum(v => (double)v);
            want[2 * b + 1] = row.Count(v => v > 0);
        }
        AssertClose(got, want, 1e-5, 1e-5, $"clean_shared_kernel seed={seed}");
        Emu.Free(din);
        Emu.Free(dout);
    }

    [Test]
    public void ChecksParseFromTheEnvironmentSyntax()
    {
        Assert.That(EmulatorCheckSettings.Parse("shuffle, static-shared,bounds"),
            Is.EqualTo(EmulatorChecks.ShuffleSchedule | EmulatorChecks.PoisonStaticShared |
                       EmulatorChecks.BoundsCheck));
        Assert.That(EmulatorCheckSettings.Parse("ci"), Is.EqualTo(EmulatorChecks.Ci));
        Assert.That(EmulatorCheckSettings.Parse(""), Is.EqualTo(EmulatorChecks.None));
        var ex = Assert.Throws<ArgumentException>(() => EmulatorCheckSettings.Parse("shuffle,bogus"))!;
        Assert.That(ex.Message, Does.Contain("'bogus'"));
    }
}
