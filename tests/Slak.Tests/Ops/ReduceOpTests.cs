// Reductions and shape operators (family reduce) (Reshape, Permute, ToChannelsLast/First, Sum, Mean, GlobalAvgPool):
// forward against the references, kernels on poisoned outputs, gradients by GradCheck, and Reshape's
// zero-copy contract.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class ReduceOpTests(string device) : DeviceTest(device)
{
    [Test]
    public void ReshapeIsAZeroCopyViewWithInferredDimension()
    {
        int a = Rng.Int(1, 5), b = Rng.Int(1, 5), c = Rng.Int(1, 5);
        var (x, rx) = RandN([a, b, c]);
        var y = F.Reshape(x, c, -1);
        Assert.That(y.ShapeArray, Is.EqualTo(new[] { c, a * b }), Ctx("inferred shape"));
        Expect.Exactly(y.ToArray(), x.ToArray(), Ctx("same elements in the same order"));
        Assert.That(ReferenceEquals(y.Storage, x.Storage), Is.True, Ctx("Reshape shares storage"));
        GradCheck.Check(Dev, Rng, "Reshape", [new("x", rx.Data.Select(v => (float)v).ToArray(), [a, b, c])],
            t => F.Reshape(t[0], -1), r => r[0].Reshape(a * b * c));
    }

    private static readonly object[] PermuteCases =
    [
        new object[] { new[] { 2, 3, 4, 5 }, new[] { 0, 2, 3, 1 } },
        new object[] { new[] { 1, 1, 1, 1 }, new[] { 0, 3, 1, 2 } },
        new object[] { new[] { 3, 1, 7, 2 }, new[] { 3, 2, 1, 0 } },
        new object[] { new[] { 5, 9 }, new[] { 1, 0 } },
        new object[] { new[] { 2, 3, 4 }, new[] { 1, 2, 0 } },
        new object[] { new[] { 4, 37, 29, 3 }, new[] { 0, 3, 1, 2 } },
        new object[] { new[] { 6 }, new[] { 0 } },
    ];

    [TestCaseSource(nameof(PermuteCases))]
    public void PermuteMatchesReference(int[] shape, int[] perm)
    {
        var (x, rx) = RandN(shape);
        var expected = Reference.Permute(rx, perm);
        Expect.AllClose(F.Permute(x, perm), expected, 0, 0, Ctx($"Permute {Slak.Shapes.Format(shape)} by {Slak.Shapes.Format(perm)}"));
        var y = Poisoned(expected.Shape);
        x.Backend.Permute(x, perm, y);
        Expect.AllClose(y, expected, 0, 0, Ctx("IBackend.Permute"));
        if (rx.Length <= 200)
            GradCheck.Check(Dev, Rng, "Permute", [new("x", x.ToArray(), shape)], t => F.Permute(t[0], perm), r => Reference.Permute(r[0], perm));
    }

    [Test]
    [KernelParity("permute_kernel")]
    public void ChannelsLastAndFirstAreInversePermutations()
    {
        int[] shape = [Rng.Int(1, 3), Rng.Int(1, 5), Rng.Int(1, 6), Rng.Int(1, 6)];
        var (x, rx) = RandN(shape);
        var nhwc = F.ToChannelsLast(x);
        Expect.AllClose(nhwc, Reference.Permute(rx, 0, 2, 3, 1), 0, 0, Ctx("ToChannelsLast"));
        Expect.AllClose(F.ToChannelsFirst(nhwc), rx, 0, 0, Ctx("ToChannelsFirst(ToChannelsLast(x))"));
        GradCheck.Check(Dev, Rng, "ToChannelsLast", [new("x", x.ToArray(), shape)], t => F.ToChannelsLast(t[0]), r => Reference.Permute(r[0], 0, 2, 3, 1));
        GradCheck.Check(Dev, Rng, "ToChannelsFirst", [new("x", x.ToArray(), shape)], t => F.ToChannelsFirst(t[0]), r => Reference.Permute(r[0], 0, 3, 1, 2));
    }

    [TestCase(1)]
    [TestCase(13)]
    [TestCase(4097)]
    [TestCase(300001)]
    [KernelParity("sum_partial_kernel")]
    public void SumMeanAndKernelsMatchReference(int n)
    {
        var (x, rx) = RandN([n]);
        double tol = 1e-6 * Math.Sqrt(n) + 1e-6;
        Expect.AllClose(F.Sum(x), Reference.Sum(rx), tol, 1e-6, Ctx($"Sum of {n}"));
        Expect.AllClose(F.Mean(x), Reference.Mean(rx), tol / n, 1e-6, Ctx($"Mean of {n}"));
        var y = Poisoned(1);
        x.Backend.SumAll(x, y);
        Expect.AllClose(y.ToArray(), Reference.Sum(rx).Data, tol, 1e-6, Ctx("IBackend.SumAll"));
        y = Poisoned(1);
        x.Backend.SumSquares(x, y);
        Expect.AllClose(y.ToArray(), [rx.Data.Sum(v => v * v)], tol, 1e-6, Ctx("IBackend.SumSquares"));
        Assert.That(F.Sum(x).Rank, Is.EqualTo(0), Ctx("Sum returns a scalar"));
    }

    [Test]
    public void SumAndMeanGradients()
    {
        int[] shape = [Rng.Int(1, 4), Rng.Int(1, 5)];
        var data = Rng.NormalArray(RefTensor.Numel(shape));
        GradCheck.Check(Dev, Rng, "Sum", [new("x", data, shape)], t => F.Sum(t[0]), r => Reference.Sum(r[0]));
        GradCheck.Check(Dev, Rng, "Mean", [new("x", data, shape)], t => F.Mean(t[0]), r => Reference.Mean(r[0]));
    }

    [TestCase(1, 1, 1, 1)]
    [TestCase(2, 3, 5, 7)]
    [TestCase(3, 1, 1, 9)]
    [TestCase(4, 16, 14, 14)]
    [TestCase(130, 257, 1, 1)] // the CPU's row blocks: more than one block of 1 x 1 planes (the head's copy path)
    [TestCase(33, 65, 4, 4)] // and of 4 x 4 planes
    [KernelParity("global_avg_pool_bwd_kernel", "global_avg_pool_kernel")]
    public void GlobalAvgPoolForwardKernelsAndGradient(int n, int c, int h, int w)
    {
        var (x, rx) = RandN([n, c, h, w]);
        var expected = Reference.GlobalAvgPool(rx);
        Expect.AllClose(F.GlobalAvgPool(x), expected, 1e-6, 1e-5, Ctx($"GlobalAvgPool {n}x{c}x{h}x{w}"));
        var y = Poisoned(n, c);
        x.Backend.GlobalAvgPool(x, y);
        Expect.AllClose(y, expected, 1e-6, 1e-5, Ctx("IBackend.GlobalAvgPool"));
        var (dy, rdy) = RandN([n, c]);
        var dx = Poisoned(n, c, h, w);
        x.Backend.GlobalAvgPoolBackward(dy, dx);
        var dxExpected = new RefTensor(n, c, h, w);
        for (int i = 0; i < dxExpected.Length; i++) dxExpected[i] = rdy[i / (h * w)] / (h * w);
        Expect.AllClose(dx, dxExpected, 1e-7, 1e-6, Ctx("IBackend.GlobalAvgPoolBackward"));
        if (rx.Length <= 300)
            GradCheck.Check(Dev, Rng, "GlobalAvgPool", [new("x", x.ToArray(), [n, c, h, w])], t => F.GlobalAvgPool(t[0]), r => Reference.GlobalAvgPool(r[0]));
    }
}
