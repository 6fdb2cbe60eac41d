// What the depthwise weight-gradient kernel tests on the emulator share: DwConvFusedKernels.BackwardFilter called on
// an emulated device at densities 1 / 0.6 / 0.1 / 0 (masked) and unmasked, twice per case into outputs poisoned with
// NaN, against the float64 reference (Reference.DepthwiseWeightGrad; pruned taps exactly 0), asserting that the
// kernel's instances ran once per call and that the two runs agree bit for bit.
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

internal static class DwConvWgradSweep
{
    /// <summary>Runs the sweep on <paramref name="dev"/> for an N x C x H x W input with branches
    /// <paramref name="branchList"/>: every call must launch each of <paramref name="instances"/> once and
    /// <paramref name="notRun"/> (a kernel name, when given) never; <paramref name="check"/> (when given) sees each
    /// case's branches before its calls.</summary>
    public static void MatchesFloat64Reference(EmulatedDevice dev, TestRandom rng, int n, int c, int h, int w,
                                               string branchList, IReadOnlyList<string> instances, string? notRun = null,
                                               Action<DwConvFusedBranch[]>? check = null)
    {
        var ks = BranchShapes.Parse(branchList);
        long plane = (long)h * w;
        var x = rng.NormalArray(n * c * plane);
        var dys = ks.Select(_ => rng.NormalArray(n * c * plane)).ToArray();
        var xd = EmulatorTestSupport.Upload<float>(dev, x);
        var dyd = dys.Select(d => EmulatorTestSupport.Upload<float>(dev, d)).ToArray();
        var want = ks.Select((k, b) => Reference.DepthwiseWeightGrad(x, dys[b], n, c, h, w, k.Kh, k.Kw)).ToArray();
        foreach (double density in new[] { 1.0, 0.6, 0.1, 0.0 })
            foreach (bool masked in new[] { true, false })
            {
                if (!masked && density != 1.0) continue;
                var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, density)).ToArray();
                var md = masks.Select(m => masked ? EmulatorTestSupport.Upload<float>(dev, m) : DevicePtr.Null).ToArray();
                var br = ks.Select((k, b) => new DwConvFusedBranch(DevicePtr.Null, md[b], k.Kh, k.Kw)).ToArray();
                check?.Invoke(br);
                float[][] Run()
                {
                    var dws = ks.Select(k => EmulatorTestSupport.Poisoned(dev, c * k.Kh * k.Kw)).ToArray();
                    var before = instances.Select(i => EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(i)).ToArray();
                    long notRunBefore = notRun is null ? 0 : EmulatedDevice.LaunchCounts.GetValueOrDefault(notRun);
                    DwConvFusedKernels.BackwardFilter(dev, dws, xd, dyd, br, n, c, h, w);
                    for (int i = 0; i < instances.Count; i++)
                        Assert.That(EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instances[i]) - before[i], Is.EqualTo(1),
                                    rng.Ctx($"{instances[i]} ran once"));
                    if (notRun is not null)
                        Assert.That(EmulatedDevice.LaunchCounts.GetValueOrDefault(notRun) - notRunBefore, Is.Zero,
                                    rng.Ctx($"{notRun} does not run"));
                    var got = dws.Select((p, b) => EmulatorTestSupport.Download<float>(dev, p, c * ks[b].Kh * ks[b].Kw)).ToArray();
                    foreach (var p in dws) dev.Free(p);
                    return got;
                }
                var first = Run();
                var second = Run();
                string what = $"x ({n},{c},{h},{w}) branches {branchList} density {density} masked {masked}";
                for (int b = 0; b < ks.Length; b++)
                {
                    var expected = (double[])want[b].Clone();
                    if (masked)
                        for (int i = 0; i < expected.Length; i++)
                            if (masks[b][i] == 0f)
                            {
                                Assert.That(first[b][i], Is.EqualTo(0f), rng.Ctx($"pruned tap {i} of branch {b}, {what}"));
                                expected[i] = 0;
                            }
                    EmulatorTestSupport.AssertClose(first[b], expected, 1e-4, 1e-5, rng.Ctx($"branch {b}, {what}"));
                    Assert.That(second[b].Select(BitConverter.SingleToInt32Bits),
                                Is.EqualTo(first[b].Select(BitConverter.SingleToInt32Bits)),
                                rng.Ctx($"branch {b} bit-identical in two runs, {what}"));
                }
                foreach (var p in md) if (!p.IsNull) dev.Free(p);
            }
        dev.Free(xd);
        foreach (var p in dyd) dev.Free(p);
    }
}
