// Which collective a job uses (CollectiveChoice): NCCL on device buffers only when every rank is on cuda and NCCL
// loads everywhere; a mixed job or one where NCCL is missing on some rank falls back to MPI on host buffers on every
// rank, naming the ranks and the reason; the answers are agreed over the (here simulated) MPI job.
using NUnit.Framework;
using Slak.Distributed;
using static Slak.Distributed.CollectiveChoice;

namespace Slak.Tests.Distributed;

public class CollectiveChoiceTests
{
    [Test]
    public void EachRanksCapability()
    {
        Assert.That(Local(Device.Cuda0, () => true, fakeNccl: false), Is.EqualTo(Capability.Device));
        Assert.That(Local(Device.Cuda0, () => false, fakeNccl: false), Is.EqualTo(Capability.NoNccl));
        Assert.That(Local(Device.Cpu, () => throw new AssertionException("NCCL is not probed off cuda"), fakeNccl: true), Is.EqualTo(Capability.NotCuda));
        Assert.That(Local(Device.CudaEmu, () => true, fakeNccl: false), Is.EqualTo(Capability.NotCuda), "cuda-emu has no NCCL");
        Assert.That(Local(Device.CudaEmu, () => false, fakeNccl: true), Is.EqualTo(Capability.Device), "cuda-emu with the stand-in");
    }

    [Test]
    public void AllCudaWithNccl_UsesDevice_MixedOrMissingFallsBackNamingTheRanks()
    {
        Assert.That(UseDevice([Capability.Device, Capability.Device, Capability.Device], out string why), Is.True);
        Assert.That(why, Is.Empty);
        Assert.That(UseDevice([Capability.Device, Capability.NotCuda], out why), Is.False);
        Assert.That(why, Is.EqualTo("rank 1 is not on a cuda device"));
        Assert.That(UseDevice([Capability.NoNccl, Capability.Device, Capability.NoNccl], out why), Is.False);
        Assert.That(why, Is.EqualTo("NCCL does not load on ranks 0, 2 (slak info shows the probes)"));
        Assert.That(UseDevice([Capability.NotCuda, Capability.NotCuda, Capability.NoNccl], out why), Is.False);
        Assert.That(why, Does.StartWith("ranks 0, 1 are not on a cuda device; NCCL does not load on rank 2"));
    }

    [Test]
    public void TheRanksAnswersAreAgreedOverMpi()
    {
        // This process is rank 1 of 3; ranks 0 and 2 (simulated) answer Device and NoNccl.
        var fake = new FakeCollectives(1, 3) { Others = (values, _) => [0, 0, (int)Capability.NoNccl] };
        var all = Gather(fake, Capability.Device);
        Assert.That(all, Is.EqualTo(new[] { Capability.Device, Capability.Device, Capability.NoNccl }));
        Assert.That(fake.Calls, Is.EqualTo(new[] { "choosing the collective (NCCL or MPI)" }));
        Assert.That(UseDevice(all, out _), Is.False, "one rank without NCCL: every rank uses MPI");
    }
}

public class RankDeviceTests
{
    [TestCase("cuda", 1, 2, "cuda:1")]
    [TestCase("auto", 3, 4, "cuda:3")]
    [TestCase("cuda:0", 1, 2, "cuda:0")]   // explicit: kept
    [TestCase("cuda", 0, 1, "cuda:0")]     // one rank on the machine
    public void SeveralRanksOnOneMachine_TakeTheGpuOfTheirLocalRank(string spec, int localRank, int localSize, string expected) =>
        Assert.That(Slak.Cli.Training.DataParallelStart.RankDevice(spec, Device.Cuda0, localRank, localSize).ToString(), Is.EqualTo(expected));

    [Test]
    public void CpuAndEmulatorRanksKeepTheirDevice()
    {
        Assert.That(Slak.Cli.Training.DataParallelStart.RankDevice("cpu", Device.Cpu, 1, 2), Is.EqualTo(Device.Cpu));
        Assert.That(Slak.Cli.Training.DataParallelStart.RankDevice("auto", Device.Cpu, 1, 2), Is.EqualTo(Device.Cpu), "auto without a GPU");
        Assert.That(Slak.Cli.Training.DataParallelStart.RankDevice("cuda-emu", Device.CudaEmu, 1, 2), Is.EqualTo(Device.CudaEmu));
    }
}
