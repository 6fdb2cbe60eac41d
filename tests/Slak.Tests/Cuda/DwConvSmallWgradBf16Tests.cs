// The bf16 instance of the small-map weight gradient (dwconv_small_wgrad.cu with SLAK_DW_BF16=1, registered in the
// emulator test library by CMakeLists.txt): x is read as a 16-bit bf16 block (the activation Bf16Backend holds as bf16
// on CUDA) and widened on load; dy, masks and the accumulation stay float32. Widening is exact and the arithmetic
// order is the float32 instance's, so on the emulator with every sanitizer on it must equal, bit for bit, the float32
// instance run on the widened copy, and the float64 reference of the bf16-rounded x within the float32 kernel's
// tolerance; at densities 1 / 0.6 / 0.1 / 0 every pruned tap is exactly 0.
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class DwConvSmallWgradBf16Tests
{
    // The bf16 instances of the emulator test library: SLaK-T's stage 4 and a dense pair; batches not multiples of 32,
    // more than one chunk (128 images a chunk at 7x7).
    [TestCase(133, 2, 7, "13x5,5x13,5x5")]
    [TestCase(45, 3, 7, "7x7,3x3")]
    [KernelParity(DwConvSmallWgradKernels.KernelName)]
    public void Bf16InstanceEqualsTheFloat32InstanceOnTheWidenedCopy(int n, int c, int hw, string branchList)
    {
        (int Kh, int Kw)[] ks =
            [.. branchList.Split(',').Select(s => s.Split('x')).Select(p =>
                (int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture),
                 int.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture)))];
        int nb = ks.Length, plane = hw * hw;
        var spec = DwConvSmallWgradKernels.Bf16Specialization(hw, hw, ks);
        string instance = EmulatedDevice.InstanceName(DwConvSmallWgradKernels.KernelName, spec);
        string f32Instance = EmulatedDevice.InstanceName(DwConvSmallWgradKernels.KernelName,
                                                         DwConvSmallWgradKernels.Specialization(hw, hw, ks));
        Assert.That(EmulatedDevice.HasInstance(DwConvSmallWgradKernels.KernelName, spec), Is.True, instance);
        var rng = TestRandom.ForCurrentTest();
        using var dev = EmulatedDevice.Open();
        dev.Checks = EmulatorChecks.All;
        Assert.That(DwConvSmallWgradKernels.AvailableBf16(dev, hw, hw, ks), Is.True, instance);
        var x = rng.NormalArray((long)n * c * plane);
        var xRounded = x.Select(ReducedFloat.RoundBf16).ToArray();
        var xBits = x.Select(ReducedFloat.ToBf16Bits).ToArray();
        var dys = ks.Select(_ => rng.NormalArray((long)n * c * plane)).ToArray();
        var xb = EmulatorTestSupport.Upload<ushort>(dev, xBits);
        var xw = EmulatorTestSupport.Upload<float>(dev, xRounded); // the widened copy the float32 path reads
        var dyd = dys.Select(d => EmulatorTestSupport.Upload<float>(dev, d)).ToArray();
        var want = ks.Select((k, b) => Reference.DepthwiseWeightGrad(xRounded, dys[b], n, c, hw, hw, k.Kh, k.Kw)).ToArray();
        foreach (double density in new[] { 1.0, 0.6, 0.1, 0.0 })
        {
            var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, density)).ToArray();
            var md = masks.Select(m => EmulatorTestSupport.Upload<float>(dev, m)).ToArray();
            var br = ks.Select((k, b) => new DwConvFusedBranch(DevicePtr.Null, md[b], k.Kh, k.Kw)).ToArray();
            float[][] Run(bool bf16)
            {
                var dws = ks.Select(k => EmulatorTestSupport.Poisoned(dev, c * k.Kh * k.Kw)).ToArray();
                string ran = bf16 ? instance : f32Instance;
                long before = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(ran);
                if (bf16) DwConvSmallWgradKernels.BackwardFilterBf16(dev, dws, xb, dyd, br, n, c, hw, hw);
                else DwConvSmallWgradKernels.BackwardFilter(dev, dws, xw, dyd, br, n, c, hw, hw);
                Assert.That(EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(ran) - before, Is.EqualTo(1),
                            rng.Ctx($"{ran} ran once"));
                var got = dws.Select((p, b) => EmulatorTestSupport.Download<float>(dev, p, c * ks[b].Kh * ks[b].Kw)).ToArray();
                foreach (var p in dws) dev.Free(p);
                return got;
            }
            var got = Run(bf16: true);
            var widened = Run(bf16: false);
            string what = $"x ({n},{c},{hw},{hw}) bf16, branches {branchList}, density {density}";
            for (int b = 0; b < nb; b++)
            {
                var expected = (double[])want[b].Clone();
                for (int i = 0; i < expected.Length; i++)
                    if (masks[b][i] == 0f)
                    {
                        Assert.That(BitConverter.SingleToInt32Bits(got[b][i]), Is.Zero, rng.Ctx($"pruned tap {i} of branch {b}, {what}"));
                        expected[i] = 0;
                    }
                Assert.That(got[b].Select(BitConverter.SingleToInt32Bits),
                            Is.EqualTo(widened[b].Select(BitConverter.SingleToInt32Bits)),
                            rng.Ctx($"branch {b}: bf16 instance vs the float32 instance on the widened copy, {what}"));
                EmulatorTestSupport.AssertClose(got[b], expected, 1e-4, 1e-5, rng.Ctx($"branch {b} vs float64, {what}"));
            }
            foreach (var p in md) dev.Free(p);
        }
        dev.Free(xb);
        dev.Free(xw);
        foreach (var p in dyd) dev.Free(p);
    }
}
