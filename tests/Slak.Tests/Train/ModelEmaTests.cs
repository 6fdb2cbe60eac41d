// Weight EMA: the plain rule on dense entries and the reference's masked rule (slak-facts §2.6) on masked ones,
// against values computed here.
using NUnit.Framework;
using Slak.Sparse;
using Slak.Tests.Support;
using Slak.Train;

namespace Slak.Tests.Train;

public class ModelEmaTests
{
    [Test]
    public void MaskedRuleZeroesInactiveAndJumpsNewlyActive()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        var model = TinyNet.Make(seed, dropPath: 0f);
        var masking = new Masking(model.Module.NamedParameters(), new SparseOptions { Init = SparseInit.Uniform, Density = 0.5 }, new SlakRandom(seed));
        masking.Initialize();
        var ema = new ModelEma(model.Module, 0.9);
        var layer = masking.Find("fc.weight")!;
        var before = ema.Entries.First(e => e.Name == "fc.weight").Values.ToArray();
        var biasBefore = ema.Entries.First(e => e.Name == "fc.bias").Values.ToArray();
        // New weights: every position gets w = old + 1 (also inactive ones, to see them zeroed in the EMA).
        var w = layer.Parameter.ToArray().Select(v => v + 1f).ToArray();
        layer.Parameter.Backend.CopyFromHost(w, layer.Parameter);
        var bias = model.Module.NamedParameters().First(p => p.Name == "fc.bias").Tensor;
        var b = bias.ToArray().Select(v => v + 2f).ToArray();
        bias.Backend.CopyFromHost(b, bias);
        ema.Update(masking);
        var after = ema.Entries.First(e => e.Name == "fc.weight").Values;
        var mask = layer.MaskBytes();
        for (int i = 0; i < w.Length; i++)
        {
            float expected = mask[i] == 0 ? 0f : before[i] == 0 ? w[i] : 0.9f * before[i] + 0.1f * w[i];
            Assert.That(after[i], Is.EqualTo(expected).Within(1e-6), $"fc.weight[{i}] mask {mask[i]}, seed {seed}");
        }
        var biasAfter = ema.Entries.First(e => e.Name == "fc.bias").Values;
        for (int i = 0; i < b.Length; i++)
            Assert.That(biasAfter[i], Is.EqualTo(0.9f * biasBefore[i] + 0.1f * b[i]).Within(1e-6), $"fc.bias[{i}], seed {seed}");
        Assert.That(mask.Any(m => m == 1) && before.Any(v => v == 0), Is.True, "both cases were exercised");
    }
}
