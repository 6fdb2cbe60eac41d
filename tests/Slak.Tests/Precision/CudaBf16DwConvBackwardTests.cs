// The depthwise weight gradient under --precision bf16 on cuda-emu with x held as a 16-bit block
// (CudaStorage.StoreAsBf16): Bf16Backend hands it to the CUDA backend's TryDecomposedDwConvBackwardFilterBf16, which
// runs the SLAK_DW_BF16=1 instance of dwconv_small_wgrad.cu on the block itself. Checked at small-map shapes with the
// emulator's bf16 instances (CMakeLists.txt), at densities 1 / 0.6 / 0.1 / 0 with every sanitizer on:
//   - the bf16 instance ran once and no widening kernel (bf16_to_f32_kernel) ran: x's widened copy is gone, and x stays
//     16-bit; with the per-branch kernels forced (no bf16 instance) the same call widens x once (the float32 fallback);
//     with the small-map weight gradient switched off the fused one's bf16 instance runs instead
//     (CudaBf16FusedWgradTests);
//   - with x in float32 storage the same instance runs on a packed 16-bit copy (half the bytes of the rounded float32
//     copy the rounding path makes), with the same result;
//   - the gradients equal, bit for bit, the float32 kernels (the float32 instance) on the rounded operands (the
//     rounding path), every pruned tap is exactly 0, and they agree with Bf16Backend on the CPU (the same rounding
//     points, another summation order: 1e-4 relative + N x 2^-24 for N products) and with a float64 reference of the
//     rounded operands (1e-4 relative + 1e-5).
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Cuda;
using Slak.Tests.Support;

namespace Slak.Tests.Precision;

public sealed class CudaBf16DwConvBackwardTests
{
    private const string Widen = "bf16_to_f32_kernel";

    [TestCase(45, 3, 7, "7x7,3x3")]
    [TestCase(133, 2, 7, "13x5,5x13,5x5")]
    [KernelParity(DwConvSmallWgradKernels.KernelName)]
    public void WeightGradientReadsTheHeldBf16InputWithoutAWidenedCopy(int n, int c, int hw, string branchList)
    {
        if (!CudaBackend.IsAvailable(Device.CudaEmu, out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
        var cuda = (CudaBackend)BackendRegistry.For(Device.CudaEmu);
        (int Kh, int Kw)[] ks =
            [.. branchList.Split(',').Select(s => s.Split('x')).Select(p =>
                (int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture),
                 int.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture)))];
        string instance = EmulatedDevice.InstanceName(DwConvSmallWgradKernels.KernelName,
                                                      DwConvSmallWgradKernels.Bf16Specialization(hw, hw, ks));
        Assert.That(EmulatedDevice.RegisteredKernels, Does.Contain(instance), "the emulator test library's bf16 instance");
        var rng = TestRandom.ForCurrentTest();
        int[] shape = [n, c, hw, hw];
        var x = rng.NormalArray((long)n * c * hw * hw);
        var xr = x.Select(ReducedFloat.RoundBf16).ToArray();
        var dys = ks.Select(_ => rng.NormalArray((long)n * c * hw * hw)).ToArray();
        var bf16 = Bf16Backend.Wrap(cuda);
        var checks = ((EmulatedDevice)cuda.Gpu).Checks;
        ((EmulatedDevice)cuda.Gpu).Checks = EmulatorChecks.All;
        try
        {
            foreach (double density in new[] { 1.0, 0.6, 0.1, 0.0 })
            {
                var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, density)).ToArray();
                string what = $"x ({n},{c},{hw},{hw}), branches {branchList}, density {density}";
                float[][] Run(IBackend backend, Device device, float[] xValues, float[][] dyValues, bool hold,
                              out bool stayed16)
                {
                    using var xt = Tensor.FromArray(xValues, shape, device);
                    if (hold) ((IBf16KernelBackend)cuda).StoreBf16(xt);
                    var dyt = dyValues.Select(d => (Tensor?)Tensor.FromArray(d, shape, device)).ToArray();
                    var mt = ks.Select((k, b) => (Tensor?)Tensor.FromArray(masks[b], [c, 1, k.Kh, k.Kw], device)).ToArray();
                    var dws = ks.Select(k => (Tensor?)Tensor.Full([c, 1, k.Kh, k.Kw], float.NaN, device)).ToArray();
                    backend.DecomposedDwConvBackwardFilter(xt, dyt, mt, dws);
                    stayed16 = hold && ((CudaStorage)xt.Storage).IsBf16;
                    var got = dws.Select(t => t!.ToArray()).ToArray();
                    foreach (var t in dyt.Concat(mt).Concat(dws)) t!.Dispose();
                    return got;
                }
                long widenBefore = EmulatedDevice.LaunchCounts.GetValueOrDefault(Widen);
                long ranBefore = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instance);
                var got = Run(bf16, Device.CudaEmu, x, dys, hold: true, out bool stayed);
                Assert.That(EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instance) - ranBefore, Is.EqualTo(1),
                            rng.Ctx($"{instance} ran once, {what}"));
                Assert.That(EmulatedDevice.LaunchCounts.GetValueOrDefault(Widen) - widenBefore, Is.Zero,
                            rng.Ctx($"no widened copy of x, {what}"));
                Assert.That(stayed, Is.True, rng.Ctx($"x stays 16-bit, {what}"));

                // x in float32 storage: the kernel reads a packed 16-bit copy; the same numbers.
                ranBefore = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instance);
                var packed = Run(bf16, Device.CudaEmu, x, dys, hold: false, out _);
                Assert.That(EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instance) - ranBefore, Is.EqualTo(1),
                            rng.Ctx($"{instance} ran on the packed copy, {what}"));
                // The rounding path by hand: the float32 kernels (the float32 instance) on the rounded operands.
                var dyr = dys.Select(d => d.Select(ReducedFloat.RoundBf16).ToArray()).ToArray();
                var rounding = Run(cuda, Device.CudaEmu, xr, dyr, hold: false, out _);
                var onCpu = Run(Bf16Backend.Wrap(BackendRegistry.For(Device.Cpu)), Device.Cpu, x, dys, hold: false, out _);
                for (int b = 0; b < ks.Length; b++)
                {
                    var want = Reference.DepthwiseWeightGrad(xr, dyr[b], n, c, hw, hw, ks[b].Kh, ks[b].Kw);
                    for (int i = 0; i < want.Length; i++)
                        if (masks[b][i] == 0f)
                        {
                            Assert.That(BitConverter.SingleToInt32Bits(got[b][i]), Is.Zero, rng.Ctx($"pruned tap {i} of branch {b}, {what}"));
                            want[i] = 0;
                        }
                    Assert.That(got[b].Select(BitConverter.SingleToInt32Bits), Is.EqualTo(rounding[b].Select(BitConverter.SingleToInt32Bits)),
                                rng.Ctx($"branch {b}: the bf16 instance vs the float32 one on the rounded operands, {what}"));
                    Assert.That(packed[b].Select(BitConverter.SingleToInt32Bits), Is.EqualTo(got[b].Select(BitConverter.SingleToInt32Bits)),
                                rng.Ctx($"branch {b}: packed copy vs held block, {what}"));
                    Expect.AllClose(got[b], want, 1e-5, 1e-4, rng.Ctx($"branch {b} vs float64, {what}"));
                    // Two float32 sums of n*h*w unit-size products in different orders: N * 2^-24 absolute (the
                    // float32 summation bound's scale) + 1e-4 relative.
                    Expect.AllClose(got[b], onCpu[b].Select(v => (double)v).ToArray(), n * hw * hw * Math.Pow(2, -24), 1e-4,
                                    rng.Ctx($"branch {b} vs Bf16Backend on the cpu, {what}"));
                }
            }

            // Without a weight gradient with a bf16 x (the per-branch kernels of dwconv.cu forced), the same
            // call widens x once.
            DwConvFusedKernels.PerBranchOnly = true;
            try
            {
                using var xt = Tensor.FromArray(x, shape, Device.CudaEmu);
                ((IBf16KernelBackend)cuda).StoreBf16(xt);
                var dyt = dys.Select(d => (Tensor?)Tensor.FromArray(d, shape, Device.CudaEmu)).ToArray();
                var dws = ks.Select(k => (Tensor?)Tensor.Zeros([c, 1, k.Kh, k.Kw], Device.CudaEmu)).ToArray();
                long before = EmulatedDevice.LaunchCounts.GetValueOrDefault(Widen);
                bf16.DecomposedDwConvBackwardFilter(xt, dyt, new Tensor?[ks.Length], dws);
                Assert.That(EmulatedDevice.LaunchCounts.GetValueOrDefault(Widen) - before, Is.EqualTo(1),
                            "the float32 fallback widens x once");
                foreach (var t in dyt.Concat(dws)) t!.Dispose();
            }
            finally { DwConvFusedKernels.PerBranchOnly = false; }
        }
        finally { ((EmulatedDevice)cuda.Gpu).Checks = checks; }
    }
}
