// The norm section of kernel-model (bench/Slak.Bench/KernelModel/NormModel.cs) on hand-worked cases: the bytes of the
// warp-per-row LayerNorm at SLaK-T stage 1, and the modeled time equal to the HBM floor for a launch that keeps every
// saturating warp busy, slower in proportion when it keeps fewer.
using NUnit.Framework;
using Slak.Bench.KernelModel;

namespace Slak.Tests.KernelModel;

public sealed class NormModelTests
{
    [Test]
    public void StageOneLayerNormRowsMovesTheTensorTwiceForwardAndThriceBackward()
    {
        const double rows = 128.0 * 56 * 56, t = 4 * rows * 124, stat = 4 * rows;
        var fwd = NormModel.Launches(128).Single(l => l.Stage == 1 && l.Op == "LN rows fwd");
        Assert.That(fwd.Kernel, Is.EqualTo("layernorm_rows128_fwd_kernel"));
        Assert.That(fwd.Bytes, Is.EqualTo(2 * t + 2 * stat));
        Assert.That(fwd.IdealBytes, Is.EqualTo(2 * t));
        Assert.That(fwd.LanesBusy, Is.EqualTo(31.0 / 32));
        var bwd = NormModel.Launches(128).Where(l => l.Stage == 1 && l.Op == "LN rows bwd").ToList();
        Assert.That(bwd.Select(l => l.Kernel), Is.EqualTo(new[] { "layernorm_rows128_bwd_kernel", "layernorm_param_finalize_kernel" }));
        Assert.That(bwd.Sum(l => l.IdealBytes), Is.EqualTo(3 * t));
    }

    [Test]
    public void ModeledTimeIsTheFloorWhenEnoughWarpsAreBusyAndScalesWithFewer()
    {
        double floorMs = 1e3 * 4.8e9 / DwConvModel.HbmBytesPerSecond;
        double full = DwConvModel.Sms * NormModel.SaturatingWarpsPerSm;
        var busy = new NormModel.Launch("x", 1, "k", 4.8e9, 4.8e9, full, 1, 256);
        Assert.That(NormModel.ModeledMs(busy, 0), Is.EqualTo(floorMs).Within(1e-12));
        Assert.That(NormModel.ModeledMs(busy with { Warps = full / 4 }, 0), Is.EqualTo(4 * floorMs).Within(1e-9));
        Assert.That(NormModel.ModeledMs(busy with { LanesBusy = 0.5 }, 0), Is.EqualTo(2 * floorMs).Within(1e-9));
    }
}
