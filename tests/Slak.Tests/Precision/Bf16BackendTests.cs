// bf16 on the CPU backend and on cuda-emu (Bf16Backend): a Linear reads bf16 operands, accumulates in fp32 and stores
// a bf16 activation, so every output is a bf16 value within one bf16 unit of the float64 product of the rounded
// operands (plus the fp32 bias) and differs from the fp32 Linear; the residual-stream add stays fp32. Then a few
// training steps (batch 2) of the nano SLaK (sparse, all three depthwise branches, BatchNorm, LayerNorm, the fused MLP,
// loss and masked AdamW) on cpu and on cuda-emu under bf16 (the emulator's few-step bf16 training for CI) must agree:
// the first loss within 2e-3 relative, later ones within 1e-2 (both round at the same points; they differ by fp32
// summation order, which a bf16 store can turn into one bf16 unit, 2^-8, on single elements; one such flip changes
// every gradient by ~3e-3 relative and AdamW carries it into later losses: over 40 seeds the gap at step 3 had median
// 4.9e-6 and max 2.8e-3, bench/results/bf16-emu-vs-cpu-spread.md), and stay within 2e-2 relative of the fp32 losses
// while differing from them (the rounding is applied). And the bf16 steps are deterministic: the same seed gives the same
// bits on repeat (cuda-emu in two fiber schedules, the CPU twice at two threads).
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cpu;
using Slak.Backends.Cuda;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;
using Slak.Models;
using Slak.Sparse;
using Slak.Tests.Support;
using Slak.Tests.Train;
using Slak.Train;

namespace Slak.Tests.Precision;

[NonParallelizable] // switches the emulator's schedule and CpuParallel.Threads (process-wide) while it runs
public sealed class Bf16BackendTests
{
    private static bool IsBf16(float v) => (BitConverter.SingleToUInt32Bits(v) & 0xFFFFu) == 0;

    // One bf16 unit in the last place at the magnitude of v.
    private static double Bf16Ulp(double v) => v == 0 ? 1e-38 : Math.Pow(2, Math.Floor(Math.Log2(Math.Abs(v))) - 7);

    [TestCase("cpu")]
    [TestCase("cuda-emu")]
    public void LinearReadsBf16OperandsAndStoresABf16Activation(string deviceName)
    {
        var device = TestDevices.Open(deviceName);
        var rng = TestRandom.ForCurrentTest();
        const int rows = 23, inF = 70, outF = 19;
        var x = Enumerable.Range(0, rows * inF).Select(_ => (float)rng.Uniform(-2, 2)).ToArray();
        var w = Enumerable.Range(0, outF * inF).Select(_ => (float)rng.Uniform(-0.5, 0.5)).ToArray();
        var b = Enumerable.Range(0, outF).Select(_ => (float)rng.Uniform(-1, 1)).ToArray();
        using var tx = Tensor.FromArray(x, [rows, inF], device);
        using var tw = Tensor.FromArray(w, [outF, inF], device);
        using var tb = Tensor.FromArray(b, [outF], device);
        float[] bf16, fp32, sum;
        using (MixedPrecision.Use(Slak.Precision.Bf16))
        {
            using var y = F.Linear(tx, tw, tb);
            bf16 = y.ToArray();
            using var s = F.Add(y, F.Scale(y, 1f / 3));
            sum = s.ToArray();
        }
        using (var y = F.Linear(tx, tw, tb)) fp32 = y.ToArray();
        for (int i = 0; i < rows; i++)
            for (int o = 0; o < outF; o++)
            {
                double want = b[o];
                for (int k = 0; k < inF; k++) want += (double)ReducedFloat.RoundBf16(x[i * inF + k]) * ReducedFloat.RoundBf16(w[o * inF + k]);
                float got = bf16[i * outF + o];
                Assert.That(IsBf16(got), Is.True, rng.Ctx($"y[{i},{o}] = {got:R} is not a bf16 value"));
                Assert.That(Math.Abs(got - want), Is.LessThanOrEqualTo(Bf16Ulp(want)), rng.Ctx($"y[{i},{o}] vs float64 of the bf16 operands {want:R}"));
            }
        Assert.That(bf16.Zip(fp32, (p, q) => Math.Abs(p - q)).Max(), Is.GreaterThan(1e-3), rng.Ctx("bf16 must differ from fp32"));
        Assert.That(sum.Count(v => !IsBf16(v)), Is.GreaterThan(0), rng.Ctx("the residual add y + y/3 is kept in fp32"));
    }

    private static TrainOptions Options(ulong seed, Slak.Precision precision) => new()
    {
        Epochs = 1, BatchSize = 2, Lr = 2e-3, WarmupEpochs = 0, Seed = seed, Sparse = true, SparseInit = SparseInit.Uniform,
        Density = 0.6, UpdateFrequency = 0, PruneRate = 0.3, Precision = precision,
    };

    // The nano SLaK on 6 synthetic 32 x 32 images (batch 2) and its trainer, on one device and precision.
    private static (Trainer Trainer, SlakModel Model) NanoTrainer(Device device, ulong seed, Slak.Precision precision)
    {
        var train = TinyNet.Synthetic(6, seed, size: 32);
        var test = TinyNet.Synthetic(2, seed + 1, size: 32);
        var (model, _) = SlakTrainable.Create("slak_nano", 1, 4, 0.0, seed, device);
        var options = Options(seed, precision) with { Device = device.ToString() };
        return (new Trainer(SlakTrainable.From(model), train, test, test, options, null), model);
    }

    private static List<double> Losses(Device device, ulong seed, Slak.Precision precision)
    {
        var (trainer, _) = NanoTrainer(device, seed, precision);
        var result = trainer.Run();
        Assert.That(result.Completed, Is.True, result.Message);
        Assert.That(MixedPrecision.Current, Is.EqualTo(Slak.Precision.Fp32), "the trainer restores the precision");
        return trainer.StepLosses;
    }

    // Every step's loss and, after the last step, the model's state (parameters and BatchNorm buffers).
    private static (List<double> Losses, List<(string Name, float[] Values)> State) Trained(Device device, ulong seed,
        long steps)
    {
        var (trainer, model) = NanoTrainer(device, seed, Slak.Precision.Bf16);
        trainer.StopAfterSteps = steps;
        trainer.Run();
        Assert.That(trainer.StepLosses, Has.Count.EqualTo(steps), $"{device}: steps taken (seed {seed})");
        return (trainer.StepLosses, model.StateDict().Select(e => (e.Name, e.Tensor.ToArray())).ToList());
    }

    // Null when both runs have the same bits, else where they first differ.
    private static string? FirstDifference((List<double> Losses, List<(string Name, float[] Values)> State) a,
        (List<double> Losses, List<(string Name, float[] Values)> State) b)
    {
        for (int i = 0; i < a.Losses.Count; i++)
            if (BitConverter.DoubleToInt64Bits(a.Losses[i]) != BitConverter.DoubleToInt64Bits(b.Losses[i]))
                return FormattableString.Invariant($"loss of step {i + 1}: {a.Losses[i]:R} vs {b.Losses[i]:R}");
        for (int t = 0; t < a.State.Count; t++)
        {
            var (x, y) = (a.State[t].Values, b.State[t].Values);
            for (int i = 0; i < x.Length; i++)
                if (BitConverter.SingleToUInt32Bits(x[i]) != BitConverter.SingleToUInt32Bits(y[i]))
                    return FormattableString.Invariant($"{a.State[t].Name}[{i}]: {x[i]:R} vs {y[i]:R}");
        }
        return null;
    }

    // The contract is the same bits for a seed (and a CPU thread count): a run that differs from its repeat would make
    // every comparison between backends a flake. Two steps: the second step's forward reads weights the first step's
    // backward and AdamW wrote, so both directions and the optimizer are covered. The emulator's second run visits
    // the fibers of every block in reverse order (kernels must not depend on it, cuda/emu/README.md).
    [Test]
    public void NanoBf16StepsRepeatBitForBit()
    {
        if (!CudaBackend.IsAvailable(Device.CudaEmu, out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
        var rng = TestRandom.ForCurrentTest();
        ulong seed = (ulong)rng.Seed;
        var emu = (EmulatedDevice)((CudaBackend)BackendRegistry.For(Device.CudaEmu)).Gpu;
        const EmulatorChecks schedule = EmulatorChecks.ReverseSchedule | EmulatorChecks.ShuffleSchedule;
        var checks = emu.Checks;
        int threads = CpuParallel.Threads;
        try
        {
            emu.Checks = checks & ~schedule;
            var inOrder = Trained(Device.CudaEmu, seed, 2);
            emu.Checks = (checks & ~schedule) | EmulatorChecks.ReverseSchedule;
            var reversed = Trained(Device.CudaEmu, seed, 2);
            Assert.That(FirstDifference(inOrder, reversed), Is.Null,
                rng.Ctx("cuda-emu bf16 steps, thread order vs reverse order"));
            CpuParallel.Threads = 2;
            var first = Trained(Device.Cpu, seed, 2);
            var second = Trained(Device.Cpu, seed, 2);
            Assert.That(FirstDifference(first, second), Is.Null,
                rng.Ctx("cpu bf16 steps at 2 threads, run vs repeat"));
        }
        finally
        {
            emu.Checks = checks;
            CpuParallel.Threads = threads;
        }
    }

    [Test]
    public void NanoBf16StepsOnCudaEmuMatchCpuAndStayNearFp32()
    {
        if (!CudaBackend.IsAvailable(Device.CudaEmu, out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
        var rng = TestRandom.ForCurrentTest();
        ulong seed = (ulong)rng.Seed;
        var cpu = Losses(Device.Cpu, seed, Slak.Precision.Bf16);
        var emu = Losses(Device.CudaEmu, seed, Slak.Precision.Bf16);
        var fp32 = Losses(Device.Cpu, seed, Slak.Precision.Fp32);
        Assert.That(emu, Has.Count.EqualTo(cpu.Count).And.Count.EqualTo(3));
        TestContext.Out.WriteLine(FormattableString.Invariant(
            $"seed {seed}: bf16 cpu {string.Join(", ", cpu)}; bf16 cuda-emu {string.Join(", ", emu)}; fp32 cpu {string.Join(", ", fp32)}"));
        for (int i = 0; i < cpu.Count; i++)
        {
            Assert.That(emu[i], Is.EqualTo(cpu[i]).Within(EmuVsCpuTolerance(i) * Math.Abs(cpu[i])),
                rng.Ctx($"step {i + 1}: bf16 cuda-emu vs cpu"));
            Assert.That(cpu[i], Is.EqualTo(fp32[i]).Within(2e-2 * Math.Abs(fp32[i])),
                rng.Ctx($"step {i + 1}: bf16 vs fp32"));
        }
        Assert.That(cpu.Zip(fp32, (p, q) => Math.Abs(p - q)).Max(), Is.GreaterThan(1e-6),
            rng.Ctx("bf16 must differ from fp32"));
    }

    /// <summary>Relative tolerance of the bf16 loss of step <paramref name="i"/> (0-based) on cuda-emu against the
    /// CPU: 2e-3 for the first step (40 seeds: max 2.0e-4), 1e-2 once an optimizer step has carried a bf16 rounding
    /// flip into the weights (40 seeds: max 1.4e-3 at step 2, 2.8e-3 at step 3; bf16-emu-vs-cpu-spread.md).</summary>
    internal static double EmuVsCpuTolerance(int i) => i == 0 ? 2e-3 : 1e-2;
}
