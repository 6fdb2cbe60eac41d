// The ERF map (issue 23 item 1) against central finite differences of the model's score at a few pixels, evaluated
// through the float32 model with the differences and sums taken in float64; batching, NaN skipping; cuda-emu
// against cpu at a tiny size. Models are random with redrawn norms and BatchNorm statistics (ExportTestModels).
using NUnit.Framework;
using Slak.Analysis;
using Slak.Backends.Cuda;
using Slak.Models;
using Slak.Tests.Export;

namespace Slak.Tests.Analysis;

public sealed class ErfMapTests
{
    internal static readonly ModelConfig Tiny = new()
    {
        InChans = 2, NumClasses = 3, Depths = [1, 1, 1, 1], Dims = [4, 6, 8, 10], KernelSize = [7, 5, 3, 3, 3],
        Decom = true, Bn = true,
    };

    // The score of slak erf, sum over channels of ReLU(feature at (h // 2, w // 2)), in float64 from the float32
    // feature map. The input requires a gradient (never computed) so that the forward takes the same per-branch
    // BatchNorm path as the ERF's (without a graph, inference folds the BatchNorms into the weights, which rounds
    // differently and would add its own noise to the differences).
    private static double Score(SlakModel model, float[] x, int[] shape)
    {
        using var scope = TensorScope.Begin();
        var input = Tensor.FromArray(x, shape);
        input.RequiresGrad = true;
        var f = model.ForwardFeatures(input);
        int c = f.Size(1), h = f.Size(2), w = f.Size(3);
        var v = f.ToArray();
        double s = 0;
        for (int ch = 0; ch < c; ch++) s += Math.Max(0, (double)v[(ch * h + h / 2) * w + w / 2]);
        return s;
    }

    [Test]
    public void MapMatchesFiniteDifferences()
    {
        const ulong seed = 4101;
        TestContext.Out.WriteLine($"seed {seed}");
        var model = ExportTestModels.Create(Tiny, seed);
        int[] shape = [1, 2, 36, 40];
        var x = ExportTestModels.RandomInput(shape, seed + 1);
        var map = EffectiveReceptiveField.Compute(model, x, shape);
        Assert.That(map.Images, Is.EqualTo(1));
        Assert.That(map.SkippedNaN, Is.Zero);
        double max = map.Map.Max();
        Assert.That(max, Is.GreaterThan(0));
        // Central differences at steps h and h/2, combined by Richardson extrapolation (4 D(h/2) - D(h)) / 3, which
        // cancels the h^2 error term. What remains is the float32 rounding of the score (~2e-6 measured, i.e. ~5e-5
        // in a difference at h/2 = 1/32), hence the tolerance: 1e-3 of the map's maximum plus 0.5 %.
        const float h = 1f / 16;
        int plane = 36 * 40;
        int nonZero = 0;
        foreach (var (py, px) in new[] { (18, 20), (17, 22), (19, 17), (15, 24), (10, 13), (2, 37) })
        {
            double expected = 0;
            for (int c = 0; c < 2; c++)
            {
                int at = c * plane + py * 40 + px;
                float keep = x[at];
                double Central(float step)
                {
                    float plus = keep + step, minus = keep - step; // the float32 points actually evaluated
                    x[at] = plus;
                    double up = Score(model, x, shape);
                    x[at] = minus;
                    double down = Score(model, x, shape);
                    x[at] = keep;
                    return (up - down) / ((double)plus - minus);
                }
                double d1 = Central(h), d2 = Central(h / 2);
                double g = (4 * d2 - d1) / 3;
                TestContext.Out.WriteLine($"  channel {c}: D(h) {d1:E5}, D(h/2) {d2:E5}, extrapolated {g:E5}");
                expected += Math.Max(0, g);
            }
            double actual = map.Map[py * 40 + px];
            TestContext.Out.WriteLine($"pixel ({py}, {px}): autograd {actual:E4}, finite differences {expected:E4}");
            Assert.That(actual, Is.EqualTo(expected).Within(1e-3 * max + 5e-3 * Math.Abs(expected)),
                $"ERF at ({py}, {px}) (seed {seed})");
            if (expected > 1e-2 * max) nonZero++;
        }
        Assert.That(nonZero, Is.GreaterThanOrEqualTo(3), "the probe must hit pixels that contribute");
    }

    [Test]
    public void BatchesGiveTheSameMapAndNaNImagesAreSkipped()
    {
        const ulong seed = 4202;
        TestContext.Out.WriteLine($"seed {seed}");
        var model = ExportTestModels.Create(Tiny, seed);
        int[] shape = [3, 2, 32, 32];
        var x = ExportTestModels.RandomInput(shape, seed + 1);
        var one = EffectiveReceptiveField.Compute(model, x, shape, batchSize: 1);
        var three = EffectiveReceptiveField.Compute(model, x, shape, batchSize: 3);
        Assert.That(three.Images, Is.EqualTo(3));
        double max = one.Map.Max();
        for (int i = 0; i < one.Map.Length; i++)
            Assert.That(three.Map[i], Is.EqualTo(one.Map[i]).Within(1e-5 * max), $"pixel {i}");

        // Image 1 gets a NaN: it is skipped and counted; the mean is over images 0 and 2.
        int per = 2 * 32 * 32;
        var poisoned = (float[])x.Clone();
        poisoned[per + 100] = float.NaN;
        var skipped = EffectiveReceptiveField.Compute(model, poisoned, shape, batchSize: 3);
        Assert.That(skipped.Images, Is.EqualTo(2));
        Assert.That(skipped.SkippedNaN, Is.EqualTo(1));
        var first = EffectiveReceptiveField.Compute(model, x.AsSpan(0, per), [1, 2, 32, 32]);
        var last = EffectiveReceptiveField.Compute(model, x.AsSpan(2 * per, per), [1, 2, 32, 32]);
        for (int i = 0; i < skipped.Map.Length; i++)
            Assert.That(skipped.Map[i], Is.EqualTo((first.Map[i] + last.Map[i]) / 2).Within(1e-5 * max), $"pixel {i}");
    }

    [Test]
    public void CudaEmuMatchesCpu()
    {
        if (!CudaBackend.IsAvailable(Device.CudaEmu, out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
        const ulong seed = 4303;
        TestContext.Out.WriteLine($"seed {seed}");
        var model = ExportTestModels.Create(Tiny, seed, masks: false);
        int[] shape = [1, 2, 32, 32];
        var x = ExportTestModels.RandomInput(shape, seed + 1);
        var cpu = EffectiveReceptiveField.Compute(model, x, shape);
        model.To(Device.CudaEmu);
        var emu = EffectiveReceptiveField.Compute(model, x, shape);
        double max = cpu.Map.Max();
        Assert.That(max, Is.GreaterThan(0));
        for (int i = 0; i < cpu.Map.Length; i++)
            Assert.That(emu.Map[i], Is.EqualTo(cpu.Map[i]).Within(1e-4 * max), $"pixel {i} (seed {seed})");
    }

    [Test]
    public void BadImagesGetClearErrors()
    {
        var model = ExportTestModels.Create(Tiny, 5, masks: false);
        var e = Assert.Throws<ArgumentException>(() => EffectiveReceptiveField.Compute(model, new float[3 * 32 * 32], [1, 3, 32, 32]));
        Assert.That(e!.Message, Does.Contain("in_chans=2"));
        e = Assert.Throws<ArgumentException>(() => EffectiveReceptiveField.Compute(model, new float[2 * 16 * 16], [1, 2, 16, 16]));
        Assert.That(e!.Message, Does.Contain("too small"));
    }
}
