// The backbone API (issue 23 item 4): four channels-first stage outputs with shapes (N, C_i, H / 4 / 2^i, ...),
// the reference's key layout (norm0..norm3 instead of norm/head), loading a classification checkpoint (head and
// final norm ignored with a note, stage norms fresh), agreement with the classification path (stage 4 before its
// norm is SlakModel.ForwardFeatures, bit for bit; each norm_i is a channels-first LayerNorm checked in float64),
// a backbone checkpoint round trip, and clear errors.
using NUnit.Framework;
using Slak.Autograd;
using Slak.Models;
using Slak.NN;
using Slak.Tests.Export;

namespace Slak.Tests.Models;

public sealed class SlakBackboneTests
{
    private static readonly ModelConfig Config = new()
    {
        InChans = 2, NumClasses = 5, Depths = [1, 2, 1, 1], Dims = [6, 8, 10, 12], KernelSize = [9, 7, 5, 3, 3],
        Decom = true, Bn = true, WidthFactor = 1.3,
    };

    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"slak-backbone-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void KeysAreTheClassifiersWithStageNormsInsteadOfNormAndHead()
    {
        var model = new SlakModel(Config, ModuleInit.ShapeOnly);
        var backbone = new SlakBackbone(Config, ModuleInit.ShapeOnly);
        var expected = model.StateDict().Select(e => e.Name)
            .Where(k => !k.StartsWith("norm.", StringComparison.Ordinal) && !k.StartsWith("head.", StringComparison.Ordinal))
            .Concat(Enumerable.Range(0, 4).SelectMany(i => new[] { $"norm{i}.weight", $"norm{i}.bias" }));
        Assert.That(backbone.StateDict().Select(e => e.Name), Is.EqualTo(expected));
        Assert.That(backbone.Widths, Is.EqualTo(new[] { 7, 10, 13, 15 }));
    }

    [Test]
    public void FourChannelsFirstOutputsWithTheStageShapes()
    {
        var backbone = new SlakBackbone(Config, ModuleInit.FromRandom(new SlakRandom(3)));
        backbone.Eval();
        using var noGrad = GradMode.NoGrad();
        var outs = backbone.ForwardFeatures(Tensor.FromArray(ExportTestModels.RandomInput([2, 2, 64, 44], 4), 2, 2, 64, 44));
        Assert.That(outs, Has.Count.EqualTo(4));
        int[][] shapes = [[2, 7, 16, 11], [2, 10, 8, 5], [2, 13, 4, 2], [2, 15, 2, 1]];
        for (int i = 0; i < 4; i++) Assert.That(outs[i].ShapeArray, Is.EqualTo(shapes[i]), $"stage {i}");
        Assert.Throws<NotSupportedException>(() => backbone.Forward(Tensor.Zeros([1, 2, 32, 32])));
        var e = Assert.Throws<ArgumentException>(() => backbone.ForwardFeatures(Tensor.Zeros([1, 3, 32, 32])));
        Assert.That(e!.Message, Does.Contain("(N, 2, H, W)"));
    }

    [Test]
    public void LoadsAClassificationCheckpointAndAgreesWithTheClassifier()
    {
        const ulong seed = 5101;
        TestContext.Out.WriteLine($"seed {seed}");
        var model = ExportTestModels.Create(Config, seed, masks: false);
        string path = Path.Combine(_dir, "classifier.safetensors");
        StateDictIO.SaveSafeTensors(model, path);
        var log = new StringWriter();
        var backbone = SlakBackbone.Load(Config, path, Device.Cpu, log);
        string note = log.ToString();
        TestContext.Out.WriteLine(note);
        Assert.That(note, Does.Contain("ignored head.bias, head.weight, norm.bias, norm.weight"));
        Assert.That(note, Does.Contain("norm0, norm1, norm2, norm3 not in the checkpoint, freshly initialised"));
        foreach (var n in backbone.Norms)
        {
            Assert.That(n.Weight.ToArray(), Is.All.EqualTo(1f));
            Assert.That(n.Bias.ToArray(), Is.All.EqualTo(0f));
        }

        int[] shape = [2, 2, 40, 36];
        var x = ExportTestModels.RandomInput(shape, seed + 1);
        using var noGrad = GradMode.NoGrad();
        var features = model.ForwardFeatures(Tensor.FromArray(x, shape)).ToArray();
        var stages = backbone.ForwardStages(Tensor.FromArray(x, shape));
        Assert.That(stages[3].ToArray(), Is.EqualTo(features), "stage 4 before norm3 = SlakModel.ForwardFeatures");

        // norm_i with fresh weights is a plain channels-first LayerNorm (eps 1e-6) of stage i: float64 reference.
        var normed = backbone.ForwardFeatures(Tensor.FromArray(x, shape));
        for (int i = 0; i < 4; i++)
        {
            var s = stages[i].ToArray();
            var y = normed[i].ToArray();
            int n = stages[i].Size(0), c = stages[i].Size(1), hw = stages[i].Size(2) * stages[i].Size(3);
            double worst = 0;
            for (int b = 0; b < n; b++)
                for (int p = 0; p < hw; p++)
                {
                    double mean = 0, sq = 0;
                    for (int ch = 0; ch < c; ch++) mean += s[(b * c + ch) * hw + p];
                    mean /= c;
                    for (int ch = 0; ch < c; ch++) sq += Math.Pow(s[(b * c + ch) * hw + p] - mean, 2);
                    double inv = 1 / Math.Sqrt(sq / c + 1e-6);
                    for (int ch = 0; ch < c; ch++)
                        worst = Math.Max(worst, Math.Abs(y[(b * c + ch) * hw + p] - (s[(b * c + ch) * hw + p] - mean) * inv));
                }
            Assert.That(worst, Is.LessThan(1e-4), $"norm{i}: worst |y - ref| = {worst:E2}");
        }
    }

    [Test]
    public void BackboneCheckpointRoundTripLoadsTheStageNorms()
    {
        var backbone = new SlakBackbone(Config, ModuleInit.FromRandom(new SlakRandom(8)));
        var w = backbone.Norms[2].Weight;
        w.Backend.CopyFromHost(Enumerable.Range(0, w.Size(0)).Select(i => 0.5f + i).ToArray(), w);
        string path = Path.Combine(_dir, "backbone.safetensors");
        StateDictIO.SaveSafeTensors(backbone, path);
        var log = new StringWriter();
        var loaded = SlakBackbone.Load(Config, path, Device.Cpu, log);
        Assert.That(log.ToString(), Does.Not.Contain("freshly").And.Not.Contain("ignored"));
        Assert.That(loaded.Norms[2].Weight.ToArray(), Is.EqualTo(w.ToArray()));
        foreach (var (name, t) in loaded.StateDict())
            Assert.That(t.ToArray(), Is.EqualTo(backbone.StateDict().Single(e => e.Name == name).Tensor.ToArray()), name);
    }

    [Test]
    public void MismatchedCheckpointsGetClearErrors()
    {
        var model = ExportTestModels.Create(Config, 9, masks: false);
        string path = Path.Combine(_dir, "classifier.safetensors");
        StateDictIO.SaveSafeTensors(model, path);
        var other = Config with { Depths = [1, 2, 2, 1] };
        var e = Assert.Throws<StateDictMismatchException>(() => SlakBackbone.Load(other, path, Device.Cpu, TextWriter.Null));
        Assert.That(e!.Message, Does.Contain("stages.2.1"));
        var wider = Config with { Dims = [6, 8, 10, 16] };
        e = Assert.Throws<StateDictMismatchException>(() => SlakBackbone.Load(wider, path, Device.Cpu, TextWriter.Null));
        Assert.That(e!.Message, Does.Contain("stages.3.0"));
        Assert.Throws<FileNotFoundException>(() => SlakBackbone.Load(Config, Path.Combine(_dir, "none.safetensors"), Device.Cpu));
    }
}
