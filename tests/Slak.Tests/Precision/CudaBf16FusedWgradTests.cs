// The fused depthwise weight gradient under --precision bf16 on cuda-emu (stages 1-2 and small batches): Bf16Backend
// hands it to the CUDA backend's TryDecomposedDwConvBackwardFilterBf16, which runs the SLAK_DW_BF16=1 instance of
// dwconv_fused_wgrad_kernel (x read as 16-bit and widened exactly on load, dy float32, float32 accumulation and
// outputs) wherever the float32 path runs the fused weight gradient. At every breaker shape of DwConvDecomposedOpTests,
// at densities 1 / 0.6 / 0.1 / 0, outputs poisoned with NaN, every emulator sanitizer on:
//   - where the plan takes the fused weight gradient, the bf16 instance ran once per call and, with x held as a 16-bit
//     block, no widening kernel (bf16_to_f32_kernel) ran and x stayed 16-bit; where it does not (four branches: the
//     per-branch kernels of dwconv.cu, which have no bf16 instance) the bf16 instance did not run;
//   - the gradients equal the rounding path (the float32 kernels on x and dy rounded to bf16) bit for bit, with x held
//     or in float32 storage (a packed 16-bit copy); every pruned tap is exactly 0; and they are within 1e-4 relative +
//     1e-5 of a float64 reference over the rounded operands.
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Precision;

public sealed class CudaBf16FusedWgradTests
{
    private const string Widen = "bf16_to_f32_kernel";

    private static readonly string Bf16Instance =
        EmulatedDevice.InstanceName(DwConvFusedKernels.WgradKernel, [DwConvFusedKernels.Bf16Define]);

    // The breaker shapes of DwConvDecomposedOpTests (n, c, h, w, branches).
    private static readonly object[] Shapes =
    [
        new object[] { 1, 1, 1, 1, "5x3,3x5,3x3" },
        new object[] { 2, 1, 6, 9, "7x3,3x7,3x3" },
        new object[] { 1, 2, 4, 3, "13x5,5x13,5x5" },
        new object[] { 2, 3, 14, 14, "47x5,5x47,5x5" },
        new object[] { 1, 2, 7, 7, "13x5,5x13,5x5" },
        new object[] { 1, 2, 12, 10, "51x7,7x51,7x7" },
        new object[] { 1, 2, 9, 8, "7x7,3x3" },
        new object[] { 2, 2, 5, 6, "3x5,5x3" },
        new object[] { 1, 2, 33, 35, "9x5,5x9,5x5" },
        new object[] { 1, 1, 20, 17, "151x5,5x151,5x5" },
        new object[] { 1, 2, 9, 8, "7x3,3x7,3x3,5x5" },
        new object[] { 1, 1, 40, 37, "31x5,5x31,5x5" },
        new object[] { 1, 2, 1, 40, "5x29,29x5,5x5" },
        new object[] { 1, 1, 40, 24, "11x5,5x11,5x5" },
        new object[] { 1, 1, 60, 9, "51x5,5x51,5x5" },
    ];

    [TestCaseSource(nameof(Shapes))]
    [KernelParity(DwConvFusedKernels.WgradKernel)]
    public void FusedWeightGradientReadsBf16XAndEqualsTheRoundingPathBitForBit(int n, int c, int h, int w,
                                                                                string branchList)
    {
        if (!CudaBackend.IsAvailable(Device.CudaEmu, out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
        var cuda = (CudaBackend)BackendRegistry.For(Device.CudaEmu);
        Assert.That(EmulatedDevice.RegisteredKernels, Does.Contain(Bf16Instance), "libslak_emu's bf16 instance");
        (int Kh, int Kw)[] ks =
            [.. branchList.Split(',').Select(s => s.Split('x')).Select(p =>
                (int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture),
                 int.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture)))];
        var branches = ks.Select(k => new DwConvFusedBranch(DevicePtr.Null, DevicePtr.Null, k.Kh, k.Kw)).ToArray();
        bool fused = ks.Length <= DwConvFusedKernels.MaxBranches &&
                     DwConvFusedKernels.WeightGradPlan(cuda.Gpu, branches, n, c, h, w).KernelChoice == PlanKernel.DwConvFusedWgrad;
        if (ks.Length <= DwConvFusedKernels.MaxBranches)
            Assert.That(DwConvFusedKernels.BackwardFilterBf16Applies(cuda.Gpu, branches, n, c, h, w), Is.EqualTo(fused),
                        "the bf16 weight gradient applies exactly where the fused one runs");
        var rng = TestRandom.ForCurrentTest();
        int[] shape = [n, c, h, w];
        long count = (long)n * c * h * w;
        var x = rng.NormalArray(count);
        var xr = x.Select(ReducedFloat.RoundBf16).ToArray();
        var dys = ks.Select(_ => rng.NormalArray(count)).ToArray();
        var dyr = dys.Select(d => d.Select(ReducedFloat.RoundBf16).ToArray()).ToArray();
        var bf16 = Bf16Backend.Wrap(cuda);
        var emu = (EmulatedDevice)cuda.Gpu;
        var checks = emu.Checks;
        emu.Checks = EmulatorChecks.All;
        try
        {
            foreach (double density in new[] { 1.0, 0.6, 0.1, 0.0 })
            {
                var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, density)).ToArray();
                string what = $"x ({n},{c},{h},{w}), branches {branchList}, density {density}";
                float[][] Run(IBackend backend, float[] xValues, float[][] dyValues, bool hold, out bool stayed16)
                {
                    using var xt = Tensor.FromArray(xValues, shape, Device.CudaEmu);
                    if (hold) ((IBf16KernelBackend)cuda).StoreBf16(xt);
                    var dyt = dyValues.Select(d => (Tensor?)Tensor.FromArray(d, shape, Device.CudaEmu)).ToArray();
                    var mt = ks.Select((k, b) => (Tensor?)Tensor.FromArray(masks[b], [c, 1, k.Kh, k.Kw], Device.CudaEmu))
                               .ToArray();
                    var dws = ks.Select(k => (Tensor?)Tensor.Full([c, 1, k.Kh, k.Kw], float.NaN, Device.CudaEmu)).ToArray();
                    backend.DecomposedDwConvBackwardFilter(xt, dyt, mt, dws);
                    stayed16 = hold && ((CudaStorage)xt.Storage).IsBf16;
                    var got = dws.Select(t => t!.ToArray()).ToArray();
                    foreach (var t in dyt.Concat(mt).Concat(dws)) t!.Dispose();
                    return got;
                }

                long ranBefore = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(Bf16Instance);
                long widenBefore = EmulatedDevice.LaunchCounts.GetValueOrDefault(Widen);
                var held = Run(bf16, x, dys, hold: true, out bool stayed);
                long ran = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(Bf16Instance) - ranBefore;
                long widened = EmulatedDevice.LaunchCounts.GetValueOrDefault(Widen) - widenBefore;
                ranBefore = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(Bf16Instance);
                var packed = Run(bf16, x, dys, hold: false, out _);
                long ranPacked = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(Bf16Instance) - ranBefore;
                if (fused)
                {
                    Assert.That(ran, Is.EqualTo(1), rng.Ctx($"{Bf16Instance} ran on the held x, {what}"));
                    Assert.That(ranPacked, Is.EqualTo(1), rng.Ctx($"{Bf16Instance} ran on the packed copy, {what}"));
                    Assert.That(widened, Is.Zero, rng.Ctx($"no widened copy of x, {what}"));
                    Assert.That(stayed, Is.True, rng.Ctx($"x stays 16-bit, {what}"));
                }
                else
                {
                    Assert.That(ran + ranPacked, Is.Zero, rng.Ctx($"no bf16 instance where the plan is not fused, {what}"));
                }

                // The rounding path by hand: the float32 kernels on the rounded operands. The float32 path takes the
                // strip weight gradient where its plan and an emulator instance take the shape (33x35, 40x37, 40x24
                // here), the bf16 path always the fused kernel: the comparison is with the fused float32 kernel.
                float[][] rounding;
                using (StripKernelsOff.WeightGradient())
                    rounding = Run(cuda, xr, dyr, hold: false, out _);
                for (int b = 0; b < ks.Length; b++)
                {
                    var want = Reference.DepthwiseWeightGrad(xr, dyr[b], n, c, h, w, ks[b].Kh, ks[b].Kw);
                    for (int i = 0; i < want.Length; i++)
                        if (masks[b][i] == 0f)
                        {
                            Assert.That(BitConverter.SingleToInt32Bits(held[b][i]), Is.Zero,
                                        rng.Ctx($"pruned tap {i} of branch {b}, {what}"));
                            want[i] = 0;
                        }
                    Assert.That(held[b].Select(BitConverter.SingleToInt32Bits),
                                Is.EqualTo(rounding[b].Select(BitConverter.SingleToInt32Bits)),
                                rng.Ctx($"branch {b}: held x vs the rounding path, {what}"));
                    Assert.That(packed[b].Select(BitConverter.SingleToInt32Bits),
                                Is.EqualTo(rounding[b].Select(BitConverter.SingleToInt32Bits)),
                                rng.Ctx($"branch {b}: packed x vs the rounding path, {what}"));
                    Expect.AllClose(held[b], want, 1e-5, 1e-4, rng.Ctx($"branch {b} vs float64, {what}"));
                }
            }
        }
        finally { emu.Checks = checks; }
    }
}
