// The computed columns of kernel-model (bench/Slak.Bench/KernelModel/DwConvModel.cs): shared-memory bank conflicts of
// an access pattern (32-bit loads: one request of 32 lanes; 128-bit loads: four requests of 8 lanes) and sm_90
// occupancy, on cases worked out by hand; and the weight gradient's strides at SLaK-T's stages are conflict-free.
using NUnit.Framework;
using Slak.Bench.KernelModel;

namespace Slak.Tests.KernelModel;

[TestFixture]
public sealed class DwConvModelTests
{
    [Test]
    public void BankConflictsOfSimpleStrides()
    {
        Assert.That(DwConvModel.Conflict(l => l), Is.EqualTo(1), "consecutive words");
        Assert.That(DwConvModel.Conflict(l => 33L * l), Is.EqualTo(1), "odd stride");
        Assert.That(DwConvModel.Conflict(l => 2L * l), Is.EqualTo(2), "stride 2: two lanes per bank");
        Assert.That(DwConvModel.Conflict(l => 32L * l), Is.EqualTo(32), "stride 32: one bank");
        Assert.That(DwConvModel.Conflict(_ => 7), Is.EqualTo(1), "one address: a broadcast");
        Assert.That(DwConvModel.Conflict(l => 4L * l, words: 4), Is.EqualTo(1), "consecutive float4");
        Assert.That(DwConvModel.Conflict(l => 12L * l, words: 4), Is.EqualTo(1), "float4 lines 4 mod 8 floats apart");
        Assert.That(DwConvModel.Conflict(l => 8L * l, words: 4), Is.EqualTo(2), "float4 lines 8 floats apart");
        Assert.That(DwConvModel.Conflict(l => 106L * (l / 5) + l % 5), Is.EqualTo(2),
                    "the live-tap weight gradient's 51x5 taps in a 106-float row stride");
    }

    [Test]
    public void OccupancyFromRegistersThreadsAndSharedMemory()
    {
        Assert.That(DwConvModel.Occupancy(32, 256, 0), Is.EqualTo(1.0), "8 blocks of 8 warps");
        Assert.That(DwConvModel.Occupancy(119, 256, 40_000), Is.EqualTo(0.25), "120 registers: 2 blocks of 256 threads");
        Assert.That(DwConvModel.Occupancy(40, 128, 38_320), Is.EqualTo(5 * 4 / 64.0), "shared memory: 5 blocks of 4 warps");
    }

    [Test]
    public void TheWeightGradientsStridesAreConflictFreeAtSlakTinyStages()
    {
        foreach (var st in DwConvModel.SlakTiny)
            Assert.That(DwConvModel.WgradConflicts(st, 128), Is.EqualTo(1), st.Name);
    }
}
