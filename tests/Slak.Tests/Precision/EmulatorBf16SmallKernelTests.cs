// The bf16 instantiation of dwconv_small.cu (SLAK_DW_BF16=1, registered in libslak_emu.so as
// dwconv_small_kernel__SLAK_DW_BF16_1) under --precision bf16 on cuda-emu, at small-map shapes whose plans take the
// small kernel, mask densities 1 / 0.6 / 0.1 / 0, outputs poisoned (NaN):
//   - Bf16Backend over the CUDA backend runs it for the depthwise forward and the inference sum (launch counts), and
//     the forward's outputs are held as 16-bit blocks (the kernel's own 16-bit outputs, never widened);
//   - bit for bit against the rounding path on the same backend (the float32 small kernel on rounded operands,
//     outputs rounded: what Bf16Backend runs without real bf16 kernels) where that runs the same (generic) body: the
//     test library's float32 instances of some shapes (specialised = true) sum the wide branches in another order;
//   - within one bf16 unit of Bf16Backend on the CPU (the same rounding points; both round their float32 sums, which
//     differ in order, so an output next to a rounding boundary can land one unit apart: |got - cpu| <= 2^-7 |cpu| +
//     1e-5).
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Precision;

public sealed class EmulatorBf16SmallKernelTests
{
    private const double Bf16Rtol = 1.0 / 128, Atol = 1e-5; // one bf16 unit: 2^-7 of a value in [1, 2)

    private static readonly string Instance =
        EmulatedDevice.InstanceName(DwConvSmallKernels.Kernel, [DwConvFusedKernels.Bf16Define]);

    [TestCase(33, 2, 14, 14, "7x7,3x3", false)]
    [TestCase(17, 1, 8, 8, "13x5,5x13,5x5", false)]
    [TestCase(20, 3, 7, 7, "13x5,5x13,5x5", true)]
    [TestCase(40, 2, 5, 9, "7x7,3x3", true)]
    [KernelParity("dwconv_small_kernel")]
    public void TheBf16SmallKernelEqualsTheRoundingPathAndBf16OnTheCpu(int n, int c, int h, int w, string list,
                                                                        bool specialised)
    {
        if (!CudaBackend.IsAvailable(Device.CudaEmu, out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
        var rng = TestRandom.ForCurrentTest();
        var ks = list.Split(',').Select(s => s.Split('x')).Select(p => (Kh: int.Parse(p[0]), Kw: int.Parse(p[1]))).ToArray();
        var d = Device.CudaEmu;
        var cuda = (CudaBackend)BackendRegistry.For(d);
        Assert.That(DwConvFusedKernels.Plan(cuda.Gpu, [.. ks.Select(k => new DwConvFusedBranch(DevicePtr.Null, DevicePtr.Null, k.Kh, k.Kw))],
                                            n, c, h, w).KernelChoice, Is.EqualTo(PlanKernel.DwConvSmall), "the plan takes the small kernel");
        Assert.That(EmulatedDevice.RegisteredKernels, Does.Contain(Instance), "libslak_emu.so's bf16 instantiation");
        Assert.That(EmulatedDevice.RegisteredKernels.Contains(
                        EmulatedDevice.InstanceName(DwConvSmallKernels.Kernel, DwConvSmallKernels.Specialization(h, w, ks))),
                    Is.EqualTo(specialised), "the test library's float32 instance");
        foreach (double density in new[] { 1.0, 0.6, 0.1, 0.0 })
        {
            string what = $"x ({n},{c},{h},{w}) branches {list} density {density}";
            var x = rng.NormalArray(n * c * h * w);
            var wts = ks.Select(k => rng.NormalArray(c * k.Kh * k.Kw, 1 / Math.Sqrt(k.Kh * k.Kw))).ToArray();
            var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, density)).ToArray();
            (Tensor X, Tensor[] W, Tensor?[] M) Inputs(Device dev) =>
                (Tensor.FromArray(x, [n, c, h, w], dev),
                 [.. ks.Select((k, b) => Tensor.FromArray(wts[b], [c, 1, k.Kh, k.Kw], dev))],
                 [.. ks.Select((k, b) => (Tensor?)Tensor.FromArray(masks[b], [c, 1, k.Kh, k.Kw], dev))]);
            Tensor[] Poisoned(Device dev, int count) => [.. Enumerable.Range(0, count).Select(_ => Tensor.Full([n, c, h, w], float.NaN, dev))];

            // The real bf16 path.
            var (xe, we, me) = Inputs(d);
            var ys = Poisoned(d, ks.Length);
            var sum = Poisoned(d, 1)[0];
            long before = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(Instance);
            var bf16 = Bf16Backend.Wrap(cuda);
            bf16.DecomposedDwConvForward(xe, we, me, ys);
            bf16.DecomposedDwConvForwardSum(xe, we, me, sum);
            Assert.That(EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(Instance) - before, Is.EqualTo(2),
                        $"{what}: the forward and the inference sum ran {Instance}");
            foreach (var y in ys) Assert.That(((CudaStorage)y.Storage).IsBf16, Is.True, $"{what}: forward output held as 16-bit");
            var got = ys.Append(sum).Select(t => t.ToArray()).ToArray();

            // The rounding path on the same backend: the float32 small kernel on rounded operands, outputs rounded.
            Tensor R(Tensor t)
            {
                var r = Tensor.Empty(t.Shape, d);
                cuda.RoundToBf16(t, r);
                return r;
            }
            var rys = Poisoned(d, ks.Length);
            var rsum = Poisoned(d, 1)[0];
            cuda.DecomposedDwConvForward(R(xe), [.. we.Select(R)], me, rys);
            cuda.DecomposedDwConvForwardSum(R(xe), [.. we.Select(R)], me, rsum);
            var rounded = rys.Append(rsum).Select(t => t.ToArray().Select(ReducedFloat.RoundBf16).ToArray()).ToArray();

            // Bf16Backend on the CPU.
            var (xc, wc, mc) = Inputs(Device.Cpu);
            var cys = Poisoned(Device.Cpu, ks.Length);
            var csum = Poisoned(Device.Cpu, 1)[0];
            var cpu = Bf16Backend.Wrap(xc.Backend);
            cpu.DecomposedDwConvForward(xc, wc, mc, cys);
            cpu.DecomposedDwConvForwardSum(xc, wc, mc, csum);
            var onCpu = cys.Append(csum).Select(t => t.ToArray().Select(v => (double)v).ToArray()).ToArray();

            for (int o = 0; o < got.Length; o++)
            {
                string output = o < ks.Length ? $"forward branch {o}" : "inference sum";
                if (!specialised)
                {
                    for (int i = 0; i < got[o].Length; i++)
                        Assert.That(BitConverter.SingleToUInt32Bits(got[o][i]), Is.EqualTo(BitConverter.SingleToUInt32Bits(rounded[o][i])),
                            rng.Ctx($"{output}[{i}]: bf16 kernel {got[o][i]:R}, rounding path {rounded[o][i]:R}; {what}"));
                }
                Expect.AllClose(got[o], onCpu[o], Atol, Bf16Rtol, rng.Ctx($"{output} vs Bf16Backend on the cpu, {what}"));
                foreach (float v in got[o])
                    Assert.That(BitConverter.SingleToUInt32Bits(v) & 0xFFFF, Is.Zero, rng.Ctx($"{output}: a bf16 value, {what}"));
            }
            foreach (var t in ys.Concat(rys).Append(sum).Append(rsum).Append(xe).Concat(we)) t.Dispose();
        }
    }
}
