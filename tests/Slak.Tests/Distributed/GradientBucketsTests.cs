// The bucketed gradient exchange (GradientBuckets) on one process playing rank 0 of 2, the other rank's gradients
// simulated as 0.7 x this rank's: the layout (reverse registration order, a parameter never split), buckets started
// during backward in bucket order (each as soon as its parameters are final: the last layer's bucket before the first
// layer's gradient exists), the mean written back bit for bit as (float)((g + 0.7 g) / 2) in float64, the loss mean,
// the same bits with the overlap off, and the presence rule (a gradient only where some rank had one).
using NUnit.Framework;
using Slak.Distributed;
using Slak.Tests.Train;

namespace Slak.Tests.Distributed;

public class GradientBucketsTests
{
    private const double Other = 0.7; // the simulated rank 1 contributes 0.7 x rank 0's values

    private static (FakeCollectives Fake, HostTensorCollective Host) TwoRanks()
    {
        var fake = new FakeCollectives(0, 2) { Others = (values, _) => values.Select(v => v * Other).ToArray() };
        return (fake, new HostTensorCollective(fake, "fake"));
    }

    private static float[][] Backward(Slak.Train.TrainableModel model, Func<IDisposable?> arm, out Dictionary<string, float[]> before)
    {
        var batch = TinyNet.Synthetic(6, 3);
        var module = model.Module;
        module.Train();
        module.ZeroGrad();
        var x = Tensor.FromArray(batch.Images, [6, 1, 8, 8], Device.Cpu);
        var loss = F.CrossEntropy(model.Forward(x), batch.Labels);
        using (arm()) loss.Backward();
        before = module.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.Grad!.ToArray());
        return module.Parameters().Select(p => p.Grad!.ToArray()).ToArray();
    }

    [Test]
    public void BucketsStartDuringBackwardInOrder_AndHoldTheMeanBitForBit()
    {
        var model = TinyNet.Make(11, dropPath: 0);
        var parameters = model.Module.Parameters().ToList();
        var (fake, host) = TwoRanks();
        var buckets = new GradientBuckets(parameters, host, bucketElements: 100, overlap: true);
        // stem.w 72, stem.b 8, dw.w 72, fc.w 128, fc.b 16, norm.w 16, norm.b 16, head.w 64, head.b 4
        // (registration order).
        Assert.That(buckets.Layout, Is.EqualTo(new[] { new[] { 8, 7, 6, 5 }, new[] { 4 }, new[] { 3 }, new[] { 2, 1 }, new[] { 0 } }));
        bool inBackward = false;
        var starts = new List<(string What, bool InBackward, bool StemGradExists)>();
        fake.Started = what => starts.Add((what, inBackward, parameters[0].Grad is not null));
        Backward(model, () => { inBackward = true; return buckets.BeginBackward(4); }, out var local);
        inBackward = false;
        double loss = buckets.Finish(1.25, 4);

        Assert.That(starts.Select(s => s.What), Is.EqualTo(Enumerable.Range(1, 5).Select(b => $"the gradient all-reduce (bucket {b} of 5) of step 5")
            .Append("the loss of step 5")), "bucket order, then the loss");
        Assert.That(starts.Take(5).All(s => s.InBackward), Is.True, "every bucket started while backward ran");
        Assert.That(starts[0].StemGradExists, Is.False, "the head's bucket started before the stem's gradient existed");
        foreach (var (name, p) in model.Module.NamedParameters())
        {
            var expected = local[name].Select(g => (float)(((double)g + g * Other) * 0.5)).ToArray();
            Assert.That(p.Grad!.ToArray(), Is.EqualTo(expected), name);
        }
        Assert.That(loss, Is.EqualTo((double)(float)((1.25 + 1.25 * Other) * 0.5)));
        Assert.That(buckets.Summary(), Does.StartWith("5 buckets per step; 100% started during backward"));
    }

    [Test]
    public void WithoutOverlap_TheSameBucketsGiveTheSameBits()
    {
        var results = new List<float[][]>();
        foreach (bool overlap in new[] { true, false })
        {
            var model = TinyNet.Make(12, dropPath: 0);
            var (fake, host) = TwoRanks();
            var buckets = new GradientBuckets(model.Module.Parameters().ToList(), host, 100, overlap);
            int startedInBackward = -1;
            Backward(model, () => buckets.BeginBackward(0), out _);
            startedInBackward = buckets.Started;
            buckets.Finish(0.5, 0);
            Assert.That(startedInBackward, overlap ? Is.EqualTo(5) : Is.Zero, $"overlap {overlap}");
            results.Add(model.Module.Parameters().Select(p => p.Grad!.ToArray()).ToArray());
        }
        Assert.That(results[1], Is.EqualTo(results[0]));
    }

    [Test]
    public void AParameterGetsAGradientOnlyWhereSomeRankHadOne()
    {
        var used = Tensor.Ones([3], Device.Cpu);
        var unusedHere = Tensor.Ones([2], Device.Cpu);
        var unusedEverywhere = Tensor.Ones([4], Device.Cpu);
        foreach (var t in new[] { used, unusedHere, unusedEverywhere }) t.RequiresGrad = true;
        var fake = new FakeCollectives(0, 2);
        // One parameter per bucket (reverse order: unusedEverywhere, unusedHere, used); rank 1 has a gradient of 4s
        // for unusedHere (its presence value 1) and nothing for unusedEverywhere.
        fake.Others = (values, what) => what.Contains("bucket 2 of 3", StringComparison.Ordinal) ? [4, 4, 1] : new double[values.Length];
        var buckets = new GradientBuckets([used, unusedHere, unusedEverywhere], new HostTensorCollective(fake, "fake"), 1, overlap: true);
        using (buckets.BeginBackward(0)) F.Sum(F.Scale(used, 3f)).Backward();
        buckets.Finish(0, 0);
        Assert.That(used.Grad!.ToArray(), Is.EqualTo(new[] { 1.5f, 1.5f, 1.5f }), "(3 + 0) / 2");
        Assert.That(unusedHere.Grad!.ToArray(), Is.EqualTo(new[] { 2f, 2f }), "(0 + 4) / 2: created because rank 1 had one");
        Assert.That(unusedEverywhere.Grad, Is.Null);
    }

    [Test]
    public void BadBucketSize_IsRefusedNamingTheVariable()
    {
        Environment.SetEnvironmentVariable(GradientBuckets.BucketVariable, "-1");
        try
        {
            var e = Assert.Throws<ArgumentException>(() => GradientBuckets.BucketElementsFromEnvironment());
            Assert.That(e!.Message, Does.Contain("SLAK_DP_BUCKET_MB=-1"));
            Environment.SetEnvironmentVariable(GradientBuckets.BucketVariable, "0.001");
            Assert.That(GradientBuckets.BucketElementsFromEnvironment(), Is.EqualTo(262));
        }
        finally
        {
            Environment.SetEnvironmentVariable(GradientBuckets.BucketVariable, null);
        }
    }
}
