// Autograd nodes with several outputs (the engine's ordering contract, AutogradEngine's header): the closure runs
// once, after every consumer of any output, with each output's summed gradient and null where none flowed; and the
// decomposed depthwise convolution, one such node, launches no gradient-plumbing kernels on the CUDA backend (the
// token node it replaced summed one dummy gradient per branch with an add kernel: nb - 1 extra launches per op).
// Also Tensor.Backward(gradient), PyTorch's tensor.backward(gradient), checked against the scalar form.
using NUnit.Framework;
using Slak.Autograd;
using Slak.Diagnostics;
using Slak.Cuda.Emulation;
using Slak.Tests.Support;

namespace Slak.Tests.Autograd;

public sealed class MultiOutputNodeTests
{
    private static readonly Device Cpu = Device.Cpu;

    private static Tensor Leaf(float[] data)
    {
        var t = Tensor.FromArray(data, [data.Length], Cpu);
        t.RequiresGrad = true;
        return t;
    }

    /// <summary>A three-output node: y_i = (i + 1) * x; records what its closure received.</summary>
    private static (Tensor[] Ys, List<float[]?[]> Calls) Split3(Tensor x)
    {
        var ys = new Tensor[3];
        for (int i = 0; i < 3; i++)
        {
            ys[i] = Tensor.Empty(x.Shape, Cpu);
            x.Backend.Scale(x, i + 1, ys[i]);
        }
        var calls = new List<float[]?[]>();
        AutogradEngine.Record(ys, "Split3", [x], grads =>
        {
            calls.Add(grads.Select(g => g?.ToArray()).ToArray());
            var dx = Tensor.Empty(x.Shape, Cpu);
            dx.Backend.Fill(dx, 0f);
            for (int i = 0; i < 3; i++)
                if (grads[i] is { } g) dx.Backend.AddScaled(dx, g, i + 1);
            return [dx];
        });
        return (ys, calls);
    }

    [Test]
    public void ClosureRunsOnceWithEveryOutputsSummedGradientAndNullWhereNoneFlowed()
    {
        var x = Leaf([1f, -2f]);
        var (ys, calls) = Split3(x);
        // loss = sum(y0) + sum(y0 * y0) + sum(3 * y2); y1 is not used. d/dy0 = 1 + 2 y0, d/dy2 = 3.
        var loss = F.Add(F.Add(F.Sum(ys[0]), F.Sum(F.Mul(ys[0], ys[0]))), F.Sum(F.Scale(ys[2], 3f)));
        loss.Backward();

        Assert.That(calls, Has.Count.EqualTo(1), "the multi-output closure runs exactly once");
        var got = calls[0];
        Assert.That(got[0], Is.EqualTo(new[] { 1f + 2f * 1f, 1f + 2f * -2f }), "output 0: gradients of both consumers summed");
        Assert.That(got[1], Is.Null, "output 1: no gradient flowed, so the closure receives null");
        Assert.That(got[2], Is.EqualTo(new[] { 3f, 3f }), "output 2");
        // dx = 1 * dy0 + 3 * dy2 with y0 = x: (1 + 2x) + 9.
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 3f + 9f, -3f + 9f }), "d loss / d x");
    }

    [Test]
    public void NodeWithNoGradientAtAnyOutputIsNotCalled()
    {
        var x = Leaf([0.5f]);
        var (ys, calls) = Split3(x);
        _ = ys;
        var other = F.Sum(F.Mul(x, x));
        other.Backward();
        Assert.That(calls, Is.Empty, "a node outside the root's graph never runs");
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 1f }), "d sum(x*x) / dx = 2x");
    }

    [Test]
    public void BackwardWithAGradientEqualsTheScalarFormOfTheSameLoss()
    {
        var rng = TestRandom.ForCurrentTest();
        var data = rng.NormalArray(6);
        var weights = rng.NormalArray(6);

        var a = Leaf(data);
        F.Gelu(a).Backward(Tensor.FromArray(weights, [6], Cpu));

        var b = Leaf(data);
        F.Sum(F.Mul(F.Gelu(b), Tensor.FromArray(weights, [6], Cpu))).Backward();
        Expect.AllClose(a.Grad!.ToArray(), b.Grad!.ToArray().Select(v => (double)v).ToArray(), 1e-6, 1e-6,
            $"Backward(gradient) vs Backward() of the weighted sum (seed {rng.Seed})");

        var c = Leaf(data);
        var y = F.Gelu(c);
        var ex = Assert.Throws<ArgumentException>(() => y.Backward(Tensor.FromArray(new float[5], [5], Cpu)));
        Assert.That(ex!.Message, Does.Contain("(5)").And.Contain("(6)"), "a gradient of the wrong shape names both shapes");
    }

    [Test]
    public void DecomposedDwConvBackwardLaunchesOnlyItsOwnKernelsOnCudaEmu()
    {
        var emu = TestDevices.Open("cuda-emu");
        var rng = TestRandom.ForCurrentTest();
        int n = 1, c = 2, h = 6, w = 5;
        var x = Tensor.FromArray(rng.NormalArray(n * c * h * w), [n, c, h, w], emu);
        x.RequiresGrad = true;
        (int Kh, int Kw)[] ks = [(7, 3), (3, 7), (3, 3)];
        var wts = ks.Select(k =>
        {
            var t = Tensor.FromArray(rng.NormalArray(c * k.Kh * k.Kw), [c, 1, k.Kh, k.Kw], emu);
            t.RequiresGrad = true;
            return t;
        }).ToArray();
        var ys = F.DecomposedDepthwiseConv2d(x, wts);
        // Upstream gradients arrive through Backward(gradient) of each branch's own sum: build one scalar whose graph
        // holds only the operator, the sums and their additions, then count what the backward pass launches.
        var loss = F.Add(F.Add(F.Sum(ys[0]), F.Sum(ys[1])), F.Sum(ys[2]));
        var before = Snapshot();
        loss.Backward();
        var launched = Diff(before, Snapshot());
        string list = string.Join(", ", launched.Select(kv => $"{kv.Key} x{kv.Value}"));
        TestContext.Out.WriteLine($"backward launches: {list}");
        Assert.That(launched.Keys.Where(k => k.Contains("dwconv", StringComparison.Ordinal)), Is.Not.Empty,
            $"the fused backward kernels ran ({list})");
        // The token design added the nb = 3 dummy gradients with 2 add_kernel launches; the sums' additions in the
        // loss need none (the gradient of Add is passed through as views). No add_kernel may run now.
        Assert.That(launched.ContainsKey("add_kernel"), Is.False, $"no gradient-plumbing additions ({list})");
    }

    private static Dictionary<string, long> Snapshot() => new(EmulatedDevice.LaunchCounts);

    private static Dictionary<string, long> Diff(Dictionary<string, long> before, Dictionary<string, long> after) =>
        after.Where(kv => kv.Value > before.GetValueOrDefault(kv.Key))
             .ToDictionary(kv => kv.Key, kv => kv.Value - before.GetValueOrDefault(kv.Key));
}

public sealed class ProfilingBackendTests
{
    [Test]
    public void EveryBackendCallOfTheDecomposedOperatorIsProfiled()
    {
        var rng = TestRandom.ForCurrentTest();
        bool was = OpProfiler.Enabled;
        OpProfiler.Reset();
        OpProfiler.Enabled = true;
        try
        {
            var x = Tensor.FromArray(rng.NormalArray(2 * 3 * 5 * 5), [2, 3, 5, 5], Device.Cpu);
            x.RequiresGrad = true;
            var w0 = Tensor.FromArray(rng.NormalArray(3 * 7 * 3), [3, 1, 7, 3], Device.Cpu);
            var w1 = Tensor.FromArray(rng.NormalArray(3 * 3 * 7), [3, 1, 3, 7], Device.Cpu);
            w0.RequiresGrad = w1.RequiresGrad = true;
            var ys = F.DecomposedDepthwiseConv2d(x, [w0, w1]);
            F.Add(F.Sum(ys[0]), F.Sum(ys[1])).Backward();
        }
        finally
        {
            OpProfiler.Enabled = was;
        }
        var names = OpProfiler.Snapshot().Select(e => e.Name).ToList();
        OpProfiler.Reset();
        // Backend calls inside the backward pass carry "bwd " (the engine tells the profiler), forward ones do not.
        Assert.That(names.Any(n => n.StartsWith("bwd DecomposedDwConvForward", StringComparison.Ordinal)), Is.False,
            $"the forward kernel ran outside the backward pass (regions: {string.Join("; ", names)})");
        foreach (var expected in new[] { "DecomposedDwConvForward (2, 3, 5, 5)", "bwd DecomposedDwConvBackwardData", "bwd DecomposedDwConvBackwardFilter (2, 3, 5, 5)", "DecomposedDepthwiseConv2d.bwd" })
            Assert.That(names.Any(n => n.StartsWith(expected, StringComparison.Ordinal)), Is.True,
                $"profile has a region '{expected}...' (regions: {string.Join("; ", names)})");
    }
}
