// The CUDA backend's real bf16 path (IBf16KernelBackend: 16-bit operand buffers, the bf16 instantiation of
// dwconv_fused.cu, GemmBf16) under --precision bf16 on cuda-emu:
//   - a bf16 decomposed depthwise forward and inference sum on cuda-emu equal the rounding path (the float32 kernel
//     around rounded operands, what Bf16Backend ran before) bit for bit, and the bf16 instantiation ran;
//   - the nano SLaK trained 2 steps under bf16 with a prune/regrow round after every step: the bf16 instantiation and
//     GemmBf16 ran, the losses agree with Bf16Backend on the CPU within 2e-3 relative at the first step and 1e-2 at
//     the second (summation order differs between the backends; Bf16BackendTests.EmuVsCpuTolerance), every bf16
//     copy the CUDA path made (observed through CudaBackend.Bf16BufferObserver, and the rounded copies of the
//     operators still on the rounding path through Bf16Backend.CopyObserver) is +0 or -0 wherever its float32 source is 0, and every masked layer's weights were
//     among the copies, and no masked weight's master was ever replaced by a 16-bit block (the activations the
//     forward stores as bf16 are; CudaBf16StorageTests); 2 steps (4 images, batch 2), to keep the emulator's time down.
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Sparse;
using Slak.Tests.Support;
using Slak.Tests.Train;
using Slak.Train;

namespace Slak.Tests.Precision;

public sealed class CudaBf16PathTests
{
    private static readonly string Bf16Instance =
        EmulatedDevice.InstanceName("dwconv_fused_kernel", [DwConvFusedKernels.Bf16Define]);

    private static void RequireEmu()
    {
        if (!CudaBackend.IsAvailable(Device.CudaEmu, out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
    }

    [TestCase(0.6)]
    [TestCase(0.0)]
    public void TheBf16DepthwiseForwardEqualsTheRoundingPathBitForBit(double density)
    {
        RequireEmu();
        var rng = TestRandom.ForCurrentTest();
        (int Kh, int Kw)[] ks = [(13, 5), (5, 13), (5, 5)];
        int n = 1, c = 2, h = 7, w = 7;
        var x = rng.NormalArray(n * c * h * w);
        var wts = ks.Select(k => rng.NormalArray(c * k.Kh * k.Kw, 1 / Math.Sqrt(k.Kh * k.Kw))).ToArray();
        var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, density)).ToArray();
        var d = Device.CudaEmu;
        Tensor T(float[] v, params int[] shape) => Tensor.FromArray(v, shape, d);
        var xt = T(x, n, c, h, w);
        var wt = ks.Select((k, b) => T(wts[b], c, 1, k.Kh, k.Kw)).ToArray();
        var mt = ks.Select((k, b) => (Tensor?)T(masks[b], c, 1, k.Kh, k.Kw)).ToArray();
        var cuda = (CudaBackend)xt.Backend;
        var bf16 = Bf16Backend.Wrap(cuda);
        var ys = ks.Select(_ => Tensor.Full([n, c, h, w], float.NaN, d)).ToArray();
        var sum = Tensor.Full([n, c, h, w], float.NaN, d);
        long before = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(Bf16Instance);
        bf16.DecomposedDwConvForward(xt, wt, mt, ys);
        bf16.DecomposedDwConvForwardSum(xt, wt, mt, sum);
        Assert.That(EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(Bf16Instance) - before, Is.EqualTo(2),
                    $"the forward and the inference sum ran {Bf16Instance}");

        // The rounding path: the float32 kernel on rounded operands, outputs rounded.
        Tensor R(Tensor t)
        {
            var r = Tensor.Empty(t.Shape, d);
            cuda.RoundToBf16(t, r);
            return r;
        }
        var rys = ks.Select(_ => Tensor.Full([n, c, h, w], float.NaN, d)).ToArray();
        var rsum = Tensor.Full([n, c, h, w], float.NaN, d);
        cuda.DecomposedDwConvForward(R(xt), [.. wt.Select(R)], mt, rys);
        cuda.DecomposedDwConvForwardSum(R(xt), [.. wt.Select(R)], mt, rsum);
        void Same(Tensor got, Tensor reference, string what)
        {
            var g = got.ToArray();
            var want = reference.ToArray().Select(ReducedFloat.RoundBf16).ToArray();
            for (int i = 0; i < g.Length; i++)
                Assert.That(BitConverter.SingleToUInt32Bits(g[i]), Is.EqualTo(BitConverter.SingleToUInt32Bits(want[i])),
                    rng.Ctx($"{what}[{i}]: bf16 path {g[i]:R}, rounding path {want[i]:R} (density {density})"));
        }
        for (int b = 0; b < ks.Length; b++) Same(ys[b], rys[b], $"forward branch {b}");
        Same(sum, rsum, "inference sum");
    }

    private static TrainOptions Options(ulong seed, Device device) => new()
    {
        Epochs = 1, BatchSize = 2, Lr = 2e-3, WarmupEpochs = 0, Seed = seed, Sparse = true, SparseInit = SparseInit.Uniform,
        Density = 0.5, UpdateFrequency = 1, PruneRate = 0.3, Precision = Slak.Precision.Bf16, Device = device.ToString(),
    };

    private static (List<double> Losses, Trainer Trainer) Train(Device device, ulong seed)
    {
        var train = TinyNet.Synthetic(4, seed, size: 32);
        var test = TinyNet.Synthetic(2, seed + 1, size: 32);
        var (model, _) = SlakTrainable.Create("slak_nano", 1, 4, 0.0, seed, device);
        var trainer = new Trainer(SlakTrainable.From(model), train, test, test, Options(seed, device), null);
        var result = trainer.Run();
        Assert.That(result.Completed, Is.True, result.Message);
        return (trainer.StepLosses.ToList(), trainer);
    }

    [Test]
    public void NanoBf16StepsOnTheRealBf16PathMatchTheCpuAndKeepPrunedWeightsZeroInEveryCopy()
    {
        RequireEmu();
        ulong seed = (ulong)TestRandom.ForCurrentTest().Seed; // SLAK_TEST_SEED replays it
        var sources = new HashSet<object>(ReferenceEqualityComparer.Instance);
        long copies = 0, zerosChecked = 0;
        var leaks = new List<string>();
        void Check(Tensor source, ushort[] bits)
        {
            copies++;
            var s = source.ToArray();
            for (int i = 0; i < s.Length; i++)
            {
                if (s[i] != 0f) continue;
                zerosChecked++;
                if ((bits[i] & 0x7FFF) != 0 && leaks.Count < 5)
                    leaks.Add($"{source.Describe()}[{i}] = 0 but its bf16 copy holds 0x{bits[i]:X4}");
            }
            sources.Add(source.Storage);
        }
        long realCopies = 0;
        CudaBackend.Bf16BufferObserver = (source, bits) =>
        {
            realCopies++;
            Check(source, bits);
        };
        // The operators without a real bf16 path yet (the dense convolutions' forward, the depthwise input gradient)
        // keep Bf16Backend's rounded float32 copies: checked the same way.
        Bf16Backend.CopyObserver = (source, copy) =>
            Check(source, [.. copy.ToArray().Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16))]);
        long dwBefore = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(Bf16Instance);
        long gemmBefore = EmulatedDevice.Bf16GemmCount;
        List<double> emu;
        Trainer trainer;
        try
        {
            (emu, trainer) = Train(Device.CudaEmu, seed);
        }
        finally
        {
            CudaBackend.Bf16BufferObserver = null;
            Bf16Backend.CopyObserver = null;
        }
        string ctx = $"(seed {seed})";
        Assert.That(EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(Bf16Instance) - dwBefore, Is.GreaterThan(0),
                    $"the bf16 depthwise instantiation ran {ctx}");
        Assert.That(EmulatedDevice.Bf16GemmCount - gemmBefore, Is.GreaterThan(0), $"GemmBf16 ran {ctx}");
        Assert.That(leaks, Is.Empty, ctx);
        Assert.That(realCopies, Is.GreaterThan(0), $"16-bit copies made by the CUDA path {ctx}");
        Assert.That(copies, Is.GreaterThan(realCopies), ctx);
        Assert.That(zerosChecked, Is.GreaterThan(0), ctx);
        var masking = trainer.Masking!;
        Assert.That(masking.Layers, Is.Not.Empty);
        var unobserved = masking.Layers.Where(l => !sources.Contains(l.Parameter.Storage)).Select(l => l.Name).ToList();
        Assert.That(unobserved, Is.Empty, $"every masked weight's bf16 copy was observed {ctx}");
        foreach (var layer in masking.Layers)
        {
            Assert.That(((CudaStorage)layer.Parameter.Storage).IsBf16, Is.False,
                        $"{layer.Name}: the master stays float32 (never a 16-bit block) {ctx}");
            var mask = layer.Mask.ToArray();
            var wv = layer.Parameter.ToArray();
            for (int i = 0; i < mask.Length; i++)
                if (mask[i] == 0f) Assert.That(wv[i], Is.EqualTo(0f), $"{layer.Name}[{i}]: pruned master weight {ctx}");
        }

        var (cpu, _) = Train(Device.Cpu, seed);
        TestContext.Out.WriteLine(FormattableString.Invariant(
            $"seed {seed}: bf16 cuda-emu {string.Join(", ", emu)}; bf16 cpu {string.Join(", ", cpu)}"));
        Assert.That(emu, Has.Count.EqualTo(cpu.Count).And.Count.EqualTo(2));
        for (int i = 0; i < cpu.Count; i++)
            Assert.That(emu[i], Is.EqualTo(cpu[i]).Within(Bf16BackendTests.EmuVsCpuTolerance(i) * Math.Abs(cpu[i])),
                $"step {i + 1}: bf16 cuda-emu vs cpu {ctx}");
    }
}
