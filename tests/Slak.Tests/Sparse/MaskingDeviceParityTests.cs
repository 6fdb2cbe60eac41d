// Masking on a CUDA device (cuda-emu always, cuda when present) against the same Masking on the CPU backend: the
// same parameters, gradients (quantised, so |g| ties) and seed go through prune/regrow rounds and AdamW steps on
// both, for both regrowth rules and both semantics. After every round masks, live counts and weights must be
// identical and the AdamW moments equal within 1e-6 (the AdamW kernels may round differently from the CPU's in the
// last bits, so the CPU weights are copied to the device before each round: pruning must see identical magnitudes).
using NUnit.Framework;
using Slak.Backends.Cuda;
using Slak.Optim;
using Slak.Sparse;
using Slak.Tests.Support;

namespace Slak.Tests.Sparse;

[TestFixture("cuda-emu")]
[TestFixture("cuda")]
public sealed class MaskingDeviceParityTests(string deviceSpec)
{
    private Device _device;

    [SetUp]
    public void Open()
    {
        _device = Device.Parse(deviceSpec);
        if (!CudaBackend.IsAvailable(_device, out string reason)) Assert.Ignore($"{deviceSpec} unavailable: {reason}");
    }

    private sealed class Holder : Slak.NN.Module
    {
        public Tensor Add(string name, Tensor t) => RegisterParameter(name, t);
    }

    private static Holder Make(ulong seed, Device device)
    {
        var rng = new SlakRandom(seed);
        var h = new Holder();
        h.Add("conv", Tensor.RandN(rng, [16, 1, 13, 5], Device.Cpu).To(device));
        h.Add("fc", Tensor.RandN(rng, [48, 40], Device.Cpu).To(device));
        h.Add("bias", Tensor.RandN(rng, [40], Device.Cpu).To(device));
        return h;
    }

    [TestCase(SparseGrowth.Random, SparseSemantics.Ours)]
    [TestCase(SparseGrowth.Random, SparseSemantics.Reference)]
    [TestCase(SparseGrowth.Gradient, SparseSemantics.Ours)]
    [TestCase(SparseGrowth.Gradient, SparseSemantics.Reference)]
    public void RoundsOnTheDeviceEqualTheCpuRounds(SparseGrowth growth, SparseSemantics semantics)
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        var opts = new SparseOptions { Init = SparseInit.Uniform, Density = 0.5, UpdateFrequency = 1, PruneRate = 0.4, Growth = growth, Semantics = semantics };
        var cpu = Make(seed, Device.Cpu);
        var dev = Make(seed, _device);
        var mc = new Masking(cpu.NamedParameters(), opts, new SlakRandom(seed + 1));
        var md = new Masking(dev.NamedParameters(), opts, new SlakRandom(seed + 1));
        mc.Initialize();
        md.Initialize();
        var oc = new AdamW(cpu.NamedParameters(), lr: 0.01f);
        var od = new AdamW(dev.NamedParameters(), lr: 0.01f);
        mc.Attach(oc);
        md.Attach(od);
        var gradRng = new SlakRandom(seed + 2);
        for (int round = 0; round < 3; round++)
        {
            foreach (var ((_, pc), (_, pd)) in cpu.NamedParameters().Zip(dev.NamedParameters()))
            {
                // Quantised gradients: |g| ties on purpose, and both devices see bit-identical values.
                var g = Tensor.RandN(gradRng, pc.Shape, Device.Cpu).ToArray().Select(v => MathF.Round(v * 2) / 2).ToArray();
                pc.Grad = Tensor.FromArray(g, pc.ShapeArray, Device.Cpu);
                pd.Grad = Tensor.FromArray(g, pd.ShapeArray, _device);
            }
            // Copy the CPU weights over before the round so that pruning sees bit-identical magnitudes even though
            // the AdamW kernels of the two backends may round differently in the last bits.
            foreach (var ((_, pc), (_, pd)) in cpu.NamedParameters().Zip(dev.NamedParameters()))
                pd.Backend.CopyFromHost(pc.ToArray(), pd);
            string ctx = $"{growth}/{semantics} round {round}, seed {seed}";
            mc.Update(0.4, oc);
            md.Update(0.4, od);
            foreach (var (lc, ld) in mc.Layers.Zip(md.Layers))
            {
                Assert.That(ld.Live, Is.EqualTo(lc.Live), $"{lc.Name} live, {ctx}");
                Assert.That(ld.MaskBytes(), Is.EqualTo(lc.MaskBytes()), $"{lc.Name} mask, {ctx}");
                Assert.That(ld.Parameter.ToArray(), Is.EqualTo(lc.Parameter.ToArray()), $"{lc.Name} weights after the round, {ctx}");
                var (mmc, vvc) = (oc[lc.Name].ExpAvg?.ToArray(), oc[lc.Name].ExpAvgSq?.ToArray());
                var (mmd, vvd) = (od[ld.Name].ExpAvg?.ToArray(), od[ld.Name].ExpAvgSq?.ToArray());
                if (mmc is not null && mmd is not null)
                {
                    Assert.That(mmd, Is.EqualTo(mmc).Within(1e-6f), $"{lc.Name} exp_avg, {ctx}");
                    Assert.That(vvd, Is.EqualTo(vvc!).Within(1e-6f), $"{lc.Name} exp_avg_sq, {ctx}");
                }
            }
            oc.Step();
            od.Step();
        }
    }
}
