// The model's large kernel through the fused operator: ReparamLargeKernelConv with Fused on (default) and off (each
// branch its own depthwise convolution) must give the same logits and the same gradient for every parameter, in
// training mode (per-branch BatchNorm batch statistics), dense and with sparse masks bound to the depthwise
// modules, for the decomposed (slak_nano) and dense K x K + N x N (replk_nano) presets; and in inference, where
// the fused path folds every branch's eval BatchNorm into its weights and computes only the sum.
using NUnit.Framework;
using Slak.Models;
using Slak.NN;
using Slak.Tests.Support;

namespace Slak.Tests.Models;

public sealed class FusedLargeKernelTests(string device) : DeviceTest(device)
{
    [TestCase("slak_nano", 0.6)]
    [TestCase("slak_nano", 1.0)]
    [TestCase("replk_nano", 0.6)]
    public void FusedAndPerBranchPathsAgree(string preset, double density)
    {
        if (DeviceName != "cpu" && (preset != "slak_nano" || density >= 1))
            Assert.Ignore("the emulator is slow (~10 s per case); one sparse slak_nano case is enough there");
        ulong seed = (ulong)Rng.Int(1, int.MaxValue - 1);
        int n = 2;
        var x = Rng.NormalArray(n * 32 * 32);
        var r = Rng.NormalArray(n * 10);
        float[] Logits(bool fused, out Dictionary<string, float[]> grads)
        {
            var config = ModelPresets.Get(preset).Config with { InChans = 1, NumClasses = 10, DropPathRate = 0 };
            var model = new SlakModel(config, ModuleInit.FromRandom(new SlakRandom(seed), Dev));
            model.Train();
            var maskRng = new SlakRandom(seed + 1);
            foreach (var (_, m) in model.NamedModules())
            {
                if (m is ReparamLargeKernelConv lk) lk.Fused = fused;
                if (m is DepthwiseConv2d dw && density < 1)
                {
                    var mask = new float[dw.Weight.Numel];
                    for (int i = 0; i < mask.Length; i++) mask[i] = maskRng.NextDouble() < density ? 1f : 0f;
                    dw.WeightMask = Tensor.FromArray(mask, dw.Weight.Shape, Dev);
                }
            }
            var logits = model.Forward(T(x, n, 1, 32, 32));
            F.Sum(F.Mul(logits, T(r, n, 10))).Backward();
            grads = model.NamedParameters().Where(p => p.Tensor.Grad is not null)
                .ToDictionary(p => p.Name, p => p.Tensor.Grad!.ToArray());
            return logits.ToArray();
        }
        var fusedLogits = Logits(true, out var fusedGrads);
        var plainLogits = Logits(false, out var plainGrads);
        Expect.AllClose(fusedLogits, plainLogits.Select(v => (double)v).ToArray(), 1e-4, 1e-3, Ctx($"{preset} logits"));
        Assert.That(fusedGrads.Keys, Is.EquivalentTo(plainGrads.Keys), Ctx("parameters with gradients"));
        foreach (var (name, g) in plainGrads)
        {
            double scale = Math.Max(1e-3, g.Max(v => Math.Abs(v)));
            Expect.AllClose(fusedGrads[name], g.Select(v => (double)v).ToArray(), 2e-3 * scale, 1e-3,
                Ctx($"{preset} density {density}: gradient of {name}"));
        }
    }

    [TestCase("slak_nano", 0.6)]
    [TestCase("replk_nano", 1.0)]
    public void InferenceWithFoldedBatchNormMatchesPerBranchPath(string preset, double density)
    {
        if (DeviceName != "cpu" && preset != "slak_nano") Assert.Ignore("the emulator is slow; one preset is enough there");
        ulong seed = (ulong)Rng.Int(1, int.MaxValue - 1);
        int n = 2;
        var x = Rng.NormalArray(n * 32 * 32);
        float[] Logits(bool fused)
        {
            var config = ModelPresets.Get(preset).Config with { InChans = 1, NumClasses = 10, DropPathRate = 0 };
            var model = new SlakModel(config, ModuleInit.FromRandom(new SlakRandom(seed), Dev));
            var statsRng = new SlakRandom(seed + 2);
            void Set(Tensor t, Func<double> draw) =>
                t.Backend.CopyFromHost(Enumerable.Range(0, (int)t.Numel).Select(_ => (float)draw()).ToArray(), t);
            foreach (var (_, m) in model.NamedModules())
            {
                if (m is ReparamLargeKernelConv lk)
                {
                    lk.Fused = fused;
                    foreach (var bn in lk.Branches.Select(b => b.Bn).OfType<BatchNorm2d>())
                    {
                        // Non-trivial statistics and affine parameters, so that folding them matters.
                        Set(bn.RunningMean, () => statsRng.NextDouble() - 0.5);
                        Set(bn.RunningVar, () => 0.5 + statsRng.NextDouble());
                        Set(bn.Weight, () => 0.5 + statsRng.NextDouble());
                        Set(bn.Bias, () => statsRng.NextDouble() - 0.5);
                    }
                }
                if (m is DepthwiseConv2d dw && density < 1)
                {
                    var mask = new float[dw.Weight.Numel];
                    for (int i = 0; i < mask.Length; i++) mask[i] = statsRng.NextDouble() < density ? 1f : 0f;
                    dw.WeightMask = Tensor.FromArray(mask, dw.Weight.Shape, Dev);
                }
            }
            model.Eval();
            using var noGrad = Slak.Autograd.GradMode.NoGrad();
            return model.Forward(T(x, n, 1, 32, 32)).ToArray();
        }
        var folded = Logits(true);
        var plain = Logits(false);
        Expect.AllClose(folded, plain.Select(v => (double)v).ToArray(), 1e-4, 1e-3, Ctx($"{preset} eval logits, folded vs per-branch"));
    }
}
