// CPU kernel paths added for training speed that the device-generic op tests reach only at small sizes: the batched
// NCHW <-> NHWC transpose (serial and image-parallel), and the SIMD AdamW update over a span longer than one parallel
// chunk with a ragged tail, masked and unmasked, against a float64 reference (pruned entries must stay exactly 0),
// and CpuParallel.For with a work estimate (inline below the threshold, every index exactly once either way).
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuPermute.SerialBelow for the duration of a test
public class CpuKernelPathTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    [TestCase(70, 31, 9, 7, 0, 2, 3, 1)]
    [TestCase(70, 9, 7, 31, 0, 3, 1, 2)]
    [TestCase(3, 5, 1, 1, 0, 2, 3, 1)]
    [TestCase(2, 1, 1, 6, 0, 3, 1, 2)]
    public void ChannelsTransposeSerialAndParallel(int n, int a, int b, int c, int p0, int p1, int p2, int p3)
    {
        int[] shape = [n, a, b, c];
        int[] perm = [p0, p1, p2, p3];
        var data = _rng.NormalArray((long)n * a * b * c);
        var rx = RefTensor.From(data, shape);
        var expected = Reference.Permute(rx, perm);
        int saved = CpuPermute.SerialBelow;
        try
        {
            foreach (bool serial in new[] { true, false })
            {
                CpuPermute.SerialBelow = serial ? int.MaxValue : 1;
                var x = Tensor.FromArray(data, shape, Device.Cpu);
                var y = Tensor.Full(expected.Shape, float.NaN, Device.Cpu);
                CpuBackend.Instance.Permute(x, perm, y);
                Expect.AllClose(y, expected, 0, 0, _rng.Ctx($"Permute {Slak.Shapes.Format(shape)} by {Slak.Shapes.Format(perm)} ({(serial ? "serial" : "parallel")})"));
            }
        }
        finally
        {
            CpuPermute.SerialBelow = saved;
        }
    }

    [TestCase(false, false)]
    [TestCase(true, true)]
    [TestCase(true, false)]
    public void AdamWStepOverLongRaggedSpans(bool masked, bool maskMoments)
    {
        const int n = 70_003; // past one 65536-element chunk, not a multiple of any SIMD width
        const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.05f;
        const int step = 3;
        var p0 = _rng.NormalArray(n);
        var g = _rng.NormalArray(n);
        var m0 = _rng.NormalArray(n, 0.1);
        var v0 = _rng.UniformArray(n, 0, 0.01);
        var k = masked ? _rng.MaskArray(n, 0.6) : null;
        if (k is not null)
            for (int i = 0; i < n; i++)
                if (k[i] == 0 && maskMoments) { m0[i] = 0; v0[i] = 0; }
        var p = Tensor.FromArray((float[])p0.Clone(), [n], Device.Cpu);
        var m = Tensor.FromArray((float[])m0.Clone(), [n], Device.Cpu);
        var v = Tensor.FromArray((float[])v0.Clone(), [n], Device.Cpu);
        var mask = k is null ? null : Tensor.FromArray(k, [n], Device.Cpu);
        CpuBackend.Instance.AdamWStep(p, Tensor.FromArray(g, [n], Device.Cpu), m, v, mask,
            new AdamWHyper(lr, b1, b2, eps, wd, step), maskMoments);

        var pa = p.ToArray();
        var ma = m.ToArray();
        var va = v.ToArray();
        double bc1 = 1 - Math.Pow(b1, step), bc2 = 1 - Math.Pow(b2, step);
        string ctx = _rng.Ctx($"AdamW masked={masked} maskMoments={maskMoments}");
        for (int i = 0; i < n; i++)
        {
            double keep = k is null ? 1 : k[i];
            double gi = maskMoments ? g[i] * keep : g[i];
            double mi = b1 * m0[i] + (1 - b1) * gi, vi = b2 * v0[i] + (1 - b2) * gi * gi;
            if (maskMoments) { mi *= keep; vi *= keep; }
            double pi = (p0[i] * (1 - lr * wd) - lr / bc1 * mi / (Math.Sqrt(vi) / Math.Sqrt(bc2) + eps)) * keep;
            if (keep == 0)
            {
                Assert.That(pa[i], Is.EqualTo(0f), $"pruned weight [{i}] must stay exactly 0; {ctx}");
                if (maskMoments) Assert.That(ma[i] == 0f && va[i] == 0f, Is.True, $"pruned moments [{i}] must be 0; {ctx}");
                continue;
            }
            Assert.That(ma[i], Is.EqualTo(mi).Within(1e-7 + 1e-5 * Math.Abs(mi)), $"exp_avg[{i}]; {ctx}");
            Assert.That(va[i], Is.EqualTo(vi).Within(1e-9 + 1e-5 * Math.Abs(vi)), $"exp_avg_sq[{i}]; {ctx}");
            Assert.That(pa[i], Is.EqualTo(pi).Within(1e-6 + 1e-5 * Math.Abs(pi)), $"param[{i}]; {ctx}");
        }
    }

    [TestCase(1000L)]
    [TestCase(CpuParallel.MinParallelWork)]
    public void ParallelForWithWorkEstimateRunsEveryIndexOnceAndSmallWorkInline(long work)
    {
        int n = _rng.Int(2, 40);
        var hits = new int[n];
        var threads = new System.Collections.Concurrent.ConcurrentBag<int>();
        CpuParallel.For(0, n, work, i =>
        {
            Interlocked.Increment(ref hits[i]);
            threads.Add(Environment.CurrentManagedThreadId);
        });
        Assert.That(hits, Is.All.EqualTo(1), _rng.Ctx($"every index once (n={n}, work={work})"));
        if (work < CpuParallel.MinParallelWork)
            Assert.That(threads.Distinct().ToArray(), Is.EqualTo(new[] { Environment.CurrentManagedThreadId }),
                _rng.Ctx($"work {work} below MinParallelWork must run on the calling thread"));
    }
}
