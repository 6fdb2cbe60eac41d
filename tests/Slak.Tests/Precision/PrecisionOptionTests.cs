// --precision as the library and the CLI resolve it: the three names, a clear error naming a bad value and the
// choices, the device defaults (tf32 on cuda, fp32 on cpu and cuda-emu), options.json round trips, the trajectory mode
// refusing anything but fp32, and the ambient scope nesting and restoring.
using NUnit.Framework;
using Slak.Cli.Training;
using Slak.Train;

namespace Slak.Tests.Precision;

public sealed class PrecisionOptionTests
{
    [Test]
    public void NamesParseAndBadValuesAreRefusedNamingThem()
    {
        Assert.That(PrecisionNames.All.Select(n => PrecisionNames.Parse(n)),
            Is.EqualTo(new[] { Slak.Precision.Fp32, Slak.Precision.Tf32, Slak.Precision.Bf16 }));
        Assert.That(PrecisionNames.Parse(" BF16 "), Is.EqualTo(Slak.Precision.Bf16));
        var e = Assert.Throws<ArgumentException>(() => PrecisionNames.Parse("fp16"))!;
        Assert.That(e.Message, Does.Contain("'fp16'").And.Contain("fp32, tf32, bf16").And.Contain("--precision"));
        Assert.That(PrecisionNames.DefaultFor(Device.Cuda0), Is.EqualTo(Slak.Precision.Tf32));
        Assert.That(PrecisionNames.DefaultFor(Device.Cpu), Is.EqualTo(Slak.Precision.Fp32));
        Assert.That(PrecisionNames.DefaultFor(Device.CudaEmu), Is.EqualTo(Slak.Precision.Fp32));
    }

    [Test]
    public void OptionsRecordThePrecisionAndTheTrajectoryModeIsFp32()
    {
        var lines = new List<string>();
        var o = PrecisionChoice.ForTraining(new TrainOptions(), Device.Cuda0, trajectory: false, lines.Add);
        Assert.That(o.Precision, Is.EqualTo(Slak.Precision.Tf32));
        Assert.That(lines, Is.EqualTo(new[] { "precision: tf32 (the default on cuda:0)" }));
        o = PrecisionChoice.ForTraining(new TrainOptions { Precision = Slak.Precision.Bf16 }, Device.Cpu, false, lines.Add);
        Assert.That(o.ToJson(), Does.Contain("\"precision\": \"bf16\""));
        Assert.That(TrainOptions.FromJson(o.ToJson()).Precision, Is.EqualTo(Slak.Precision.Bf16));
        Assert.That(TrainOptions.FromJson("{}").Precision, Is.Null, "an options file of before --precision: the device default");
        Assert.That(PrecisionChoice.ForTraining(new TrainOptions(), Device.Cuda0, trajectory: true, lines.Add).Precision,
            Is.EqualTo(Slak.Precision.Fp32));
        var e = Assert.Throws<ArgumentException>(() => PrecisionChoice.ForTraining(
            new TrainOptions { Precision = Slak.Precision.Bf16 }, Device.Cpu, trajectory: true, lines.Add))!;
        Assert.That(e.Message, Does.Contain("--precision bf16").And.Contain("trajectory"));
        var saved = new TrainOptions { Precision = Slak.Precision.Fp32 };
        Assert.Throws<ArgumentException>(() => ResumeOptions.Reconcile(saved, saved with { Precision = Slak.Precision.Bf16 }, null),
            "a resumed run keeps its precision");
    }

    [Test]
    public void ScopesNestAndRestore()
    {
        Assert.That(MixedPrecision.Current, Is.EqualTo(Slak.Precision.Fp32));
        using (MixedPrecision.Use(Slak.Precision.Bf16))
        {
            Assert.That(MixedPrecision.Current, Is.EqualTo(Slak.Precision.Bf16));
            using (MixedPrecision.Use(Slak.Precision.Tf32)) Assert.That(MixedPrecision.Current, Is.EqualTo(Slak.Precision.Tf32));
            Assert.That(MixedPrecision.Current, Is.EqualTo(Slak.Precision.Bf16));
            var t = Tensor.Zeros(2);
            Assert.That(t.Backend, Is.InstanceOf<Slak.Backends.Bf16Backend>());
            t.Dispose();
        }
        Assert.That(MixedPrecision.Current, Is.EqualTo(Slak.Precision.Fp32));
        Assert.Throws<ArgumentOutOfRangeException>(() => MixedPrecision.Use((Slak.Precision)7));
    }
}
