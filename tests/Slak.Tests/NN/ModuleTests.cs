// nn modules: initialization per slak-facts §1.6 (trunc_normal std 0.02 weights, zero biases, identity norms,
// gamma = layer scale, head scaled), determinism for a seed, Train()/Eval() reaching every BatchNorm and DropPath,
// container naming, BatchNorm's batch counter, DropPath's generator requirement and the shape-only mode.
using NUnit.Framework;
using Slak.Models;
using Slak.NN;
using Slak.Tests.Support;

namespace Slak.Tests.NN;

public sealed class ModuleTests
{
    private static readonly ModelConfig Tiny = new()
    {
        InChans = 1, NumClasses = 4, Depths = [2, 1, 1, 1], Dims = [8, 8, 16, 16], KernelSize = [7, 5, 3, 3, 3],
        Decom = true, DropPathRate = 0.2, HeadInitScale = 0.5,
    };

    [Test]
    public void InitializationFollowsReference()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        var model = new SlakModel(ModelPresets.Get("slak_nano_dense").Config, ModuleInit.FromRandom(new SlakRandom(seed)));
        foreach (var (name, t) in model.StateDict())
        {
            var v = t.ToArray();
            string leaf = name[(name.LastIndexOf('.') + 1)..];
            bool isNorm = name.Contains(".bn.", StringComparison.Ordinal) || name.Contains("norm", StringComparison.Ordinal)
                          || name is "downsample_layers.0.1.weight" or "downsample_layers.0.1.bias"
                          || (name.StartsWith("downsample_layers.", StringComparison.Ordinal) && name.Contains(".0.", StringComparison.Ordinal) && name != "downsample_layers.0.0.weight" && name != "downsample_layers.0.0.bias");
            if (t.Rank >= 2)
            {
                double mean = v.Average(x => (double)x), std = Math.Sqrt(v.Average(x => (x - mean) * (x - mean)));
                double tol = 4 * 0.02 / Math.Sqrt(v.Length) + 1e-9;
                Assert.That(mean, Is.EqualTo(0).Within(4 * 0.02 / Math.Sqrt(v.Length)), $"{name} mean (seed {seed})");
                if (v.Length >= 200) Assert.That(std, Is.EqualTo(0.02).Within(0.02 * 5 / Math.Sqrt(v.Length) + tol), $"{name} std (seed {seed})");
            }
            else if (leaf == "gamma") Assert.That(v, Is.All.EqualTo(1e-6f), name);
            else if (leaf is "running_mean" or "num_batches_tracked") Assert.That(v, Is.All.Zero, name);
            else if (leaf == "running_var") Assert.That(v, Is.All.EqualTo(1f), name);
            else if (leaf == "weight" && isNorm) Assert.That(v, Is.All.EqualTo(1f), name);
            else if (leaf == "bias") Assert.That(v, Is.All.Zero, name);
            else Assert.Fail($"unclassified entry {name}");
        }
    }

    [Test]
    public void SameSeedSameWeightsAndHeadScaled()
    {
        var a = new SlakModel(Tiny, ModuleInit.FromRandom(new SlakRandom(7)));
        var b = new SlakModel(Tiny, ModuleInit.FromRandom(new SlakRandom(7)));
        var c = new SlakModel(Tiny with { HeadInitScale = 1.0 }, ModuleInit.FromRandom(new SlakRandom(7)));
        foreach (var ((name, x), (_, y)) in a.StateDict().Zip(b.StateDict()))
            Assert.That(y.ToArray(), Is.EqualTo(x.ToArray()), name);
        var ha = a.Head.Weight.ToArray();
        var hc = c.Head.Weight.ToArray();
        for (int i = 0; i < ha.Length; i++) Assert.That(ha[i], Is.EqualTo(0.5f * hc[i]));
    }

    [Test]
    public void TrainAndEvalReachEveryModule()
    {
        var model = new SlakModel(Tiny, ModuleInit.FromRandom(new SlakRandom(1)));
        var modules = model.NamedModules().Select(m => m.Module).ToList();
        Assert.That(modules.OfType<BatchNorm2d>().Count(), Is.EqualTo(3 * 3 + 2 * 2), "K = N = 3 in stages 3-4: no small_conv there");
        Assert.That(modules.OfType<DropPath>().Count(), Is.EqualTo(5));
        model.Eval();
        Assert.That(modules.All(m => !m.Training), Is.True);
        model.Train();
        Assert.That(modules.All(m => m.Training), Is.True);
        Assert.That(model.Blocks.Select(b => b.DropPath.Rate), Is.EqualTo(new[] { 0f, 0.05f, 0.1f, 0.15f, 0.2f }).Within(1e-7f));
        Assert.That(model.Blocks.All(b => ReferenceEquals(b.DropPath.Random, model.DropPathRandom)), Is.True);
    }

    [Test]
    public void ContainersUseNumericNames()
    {
        var init = ModuleInit.FromRandom(new SlakRandom(2));
        var seq = new Sequential(new Linear(3, 4, init), new Gelu(), new Linear(4, 2, init, bias: false));
        Assert.That(seq.StateDict().Select(e => e.Name), Is.EqualTo(new[] { "0.weight", "0.bias", "2.weight" }));
        using var scope = TensorScope.Begin();
        var y = seq.Forward(Tensor.RandN(new SlakRandom(3), [5, 3], Device.Cpu));
        Assert.That(y.ShapeArray, Is.EqualTo(new[] { 5, 2 }));
    }

    [Test]
    public void BatchCounterCountsTrainingBatchesOnly()
    {
        var bn = new BatchNorm2d(3, ModuleInit.FromRandom(new SlakRandom(4)));
        using var scope = TensorScope.Begin();
        var x = Tensor.RandN(new SlakRandom(5), [2, 3, 4, 4], Device.Cpu);
        bn.Forward(x);
        bn.Forward(x);
        bn.Eval();
        bn.Forward(x);
        Assert.That(bn.NumBatchesTracked.Item(), Is.EqualTo(2f));
        Assert.That(bn.NumBatchesTracked.Shape.Length, Is.Zero);
    }

    [Test]
    public void DropPathNeedsGeneratorOnlyInTraining()
    {
        var dp = new DropPath(0.5f);
        using var scope = TensorScope.Begin();
        var x = Tensor.Ones([4, 2], Device.Cpu);
        Assert.Throws<InvalidOperationException>(() => dp.Forward(x));
        dp.Eval();
        Assert.That(dp.Forward(x), Is.SameAs(x));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new DropPath(1f));
    }

    [Test]
    public void ParametersSurviveTheScopeTheyWereBuiltIn()
    {
        SlakModel model;
        using (TensorScope.Begin()) model = new SlakModel(Tiny, ModuleInit.FromRandom(new SlakRandom(6)));
        Assert.That(model.StateDict().All(e => !e.Tensor.IsDisposed), Is.True);
    }

    [Test]
    public void ForwardShapesAndFeatureMap()
    {
        var model = new SlakModel(ModelPresets.Get("slak_nano").Config, ModuleInit.FromRandom(new SlakRandom(8)));
        model.Eval();
        using var scope = TensorScope.Begin();
        var x = Tensor.RandN(new SlakRandom(9), [2, 1, 32, 32], Device.Cpu);
        Assert.That(model.Forward(x).ShapeArray, Is.EqualTo(new[] { 2, 10 }));
        Assert.That(model.ForwardFeatures(x).ShapeArray, Is.EqualTo(new[] { 2, 249, 1, 1 }));
        var e = Assert.Throws<ArgumentException>(() => model.Forward(Tensor.Zeros(1, 1, 28, 28)));
        Assert.That(e!.Message, Does.Contain("28x28"));
    }

    [Test]
    public void MaskShapeIsChecked()
    {
        var dw = new DepthwiseConv2d(3, 5, 3, ModuleInit.FromRandom(new SlakRandom(10)));
        Assert.Throws<ArgumentException>(() => dw.WeightMask = Tensor.Ones([3, 1, 3, 5], Device.Cpu));
        dw.WeightMask = Tensor.Ones([3, 1, 5, 3], Device.Cpu);
        Assert.That(dw.WeightMask, Is.Not.Null);
        Assert.Throws<ArgumentException>(() => _ = new DepthwiseConv2d(3, 4, 3, ModuleInit.ShapeOnly));
    }

    [Test]
    public void TrainingStepReachesEveryParameterDeterministically()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        float[] Run(out SlakModel model)
        {
            model = new SlakModel(Tiny with { LayerScaleInitValue = 0.5 }, ModuleInit.FromRandom(new SlakRandom(seed)));
            model.Train();
            using var scope = TensorScope.Begin();
            var x = Tensor.RandN(new SlakRandom(seed + 1), [4, 1, 32, 32], Device.Cpu);
            var before = model.DropPathRandom!.GetState();
            var logits = model.Forward(x);
            Assert.That(model.DropPathRandom.GetState(), Is.Not.EqualTo(before), "drop path drew from the model's generator");
            var loss = F.CrossEntropy(logits, [0, 1, 2, 3]);
            loss.Backward();
            return logits.ToArray();
        }
        var a = Run(out var m1);
        var b = Run(out _);
        Assert.That(b, Is.EqualTo(a), $"same seed, same training-mode logits (seed {seed})");
        foreach (var (name, p) in m1.NamedParameters())
        {
            Assert.That(p.Grad, Is.Not.Null, $"{name} got no gradient (seed {seed})");
            Assert.That(p.Grad!.ToArray().All(float.IsFinite), Is.True, $"{name} gradient finite (seed {seed})");
        }
    }
}
