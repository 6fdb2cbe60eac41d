// The LR schedule (reference utils.cosine_scheduler: linspace warmup then cosine), the prune-rate cosine decay and
// gradient clipping, against closed-form values computed here.
using NUnit.Framework;
using Slak.Optim;

namespace Slak.Tests.Optim;

public class ScheduleTests
{
    [Test]
    public void WarmupIsLinspaceThenCosineToMin()
    {
        var s = new CosineSchedule(4e-3, 1e-6, totalSteps: 100, warmupSteps: 10);
        Assert.Multiple(() =>
        {
            Assert.That(s.ValueAt(0), Is.EqualTo(0).Within(1e-15));
            Assert.That(s.ValueAt(9), Is.EqualTo(4e-3).Within(1e-15), "linspace includes the endpoint");
            Assert.That(s.ValueAt(5), Is.EqualTo(4e-3 * 5 / 9).Within(1e-15));
            Assert.That(s.ValueAt(10), Is.EqualTo(4e-3).Within(1e-15), "cosine starts at the base value");
            Assert.That(s.ValueAt(55), Is.EqualTo(1e-6 + 0.5 * (4e-3 - 1e-6) * (1 + Math.Cos(Math.PI * 45 / 90))).Within(1e-15));
            Assert.That(s.ValueAt(99), Is.EqualTo(1e-6 + 0.5 * (4e-3 - 1e-6) * (1 + Math.Cos(Math.PI * 89 / 90))).Within(1e-15));
            Assert.That(s.ValueAt(1000), Is.EqualTo(s.ValueAt(99)), "clamped past the end");
        });
        var noWarmup = new CosineSchedule(1.0, 0.0, 4, 0);
        Assert.That(Enumerable.Range(0, 4).Select(i => noWarmup.ValueAt(i)),
            Is.EqualTo(new[] { 1.0, 0.5 * (1 + Math.Cos(Math.PI / 4)), 0.5, 0.5 * (1 + Math.Cos(3 * Math.PI / 4)) }).Within(1e-12));
        Assert.That(() => new CosineSchedule(1, 0, 10, 11), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("warmup"));
    }

    [Test]
    public void PruneRateDecaysByCosineTo0005()
    {
        var d = new CosineDecay(0.5, 1000);
        Assert.Multiple(() =>
        {
            Assert.That(d.ValueAt(0), Is.EqualTo(0.5).Within(1e-15));
            Assert.That(d.ValueAt(500), Is.EqualTo(0.005 + (0.5 - 0.005) * 0.5).Within(1e-12));
            Assert.That(d.ValueAt(250), Is.EqualTo(0.005 + (0.5 - 0.005) * (1 + Math.Cos(Math.PI / 4)) / 2).Within(1e-12));
            Assert.That(d.ValueAt(1000), Is.EqualTo(0.005).Within(1e-15));
            Assert.That(d.ValueAt(5000), Is.EqualTo(0.005).Within(1e-15), "held at the minimum past T");
        });
    }

    [Test]
    public void ClipByGlobalNormScalesAllGradients()
    {
        var a = Tensor.Zeros(2);
        var b = Tensor.Zeros(1);
        a.Grad = Tensor.FromArray([3f, 0f], 2);
        b.Grad = Tensor.FromArray([4f], 1);
        double norm = GradClip.ClipByGlobalNorm([a, b], 1.0);
        Assert.That(norm, Is.EqualTo(5.0).Within(1e-6));
        Assert.That(a.Grad.ToArray()[0], Is.EqualTo(0.6f).Within(1e-5));
        Assert.That(b.Grad.ToArray()[0], Is.EqualTo(0.8f).Within(1e-5));
        double again = GradClip.ClipByGlobalNorm([a, b], 10.0);
        Assert.That(again, Is.EqualTo(1.0).Within(1e-5));
        Assert.That(b.Grad.ToArray()[0], Is.EqualTo(0.8f).Within(1e-5), "under the limit nothing changes");
    }
}
