// F.DecomposedDepthwiseConv2dSum, the inference form of the decomposed depthwise convolution that the folded
// BatchNorm path of ReparamLargeKernelConv runs: against the float64 reference (the sum of each branch's depthwise
// convolution, masked and dense branches, plus a per-channel bias); IBackend.AddBiasChannels on its own; and the
// operator refuses to run where a gradient would be needed (it has none).
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class DwConvSumTests(string device) : DeviceTest(device)
{
    [Test]
    public void SumOfBranchesPlusChannelBiasMatchesReference()
    {
        int n = 2, c = 3, h = 9, w = 7;
        var (x, rx) = RandN([n, c, h, w]);
        (int Kh, int Kw)[] kernels = [(7, 3), (3, 7), (3, 3)];
        var weights = new Tensor[kernels.Length];
        var masks = new Tensor?[kernels.Length];
        var want = new RefTensor(n, c, h, w);
        for (int b = 0; b < kernels.Length; b++)
        {
            var (wb, rw) = RandN([c, 1, kernels[b].Kh, kernels[b].Kw]);
            weights[b] = wb;
            RefTensor? rm = null;
            if (b != 1) // branch 1 stays dense
            {
                var m = Enumerable.Range(0, (int)wb.Numel).Select(_ => Rng.Uniform(0, 1) < 0.6 ? 1f : 0f).ToArray();
                masks[b] = T(m, wb.ShapeArray);
                rm = new RefTensor(m.Select(v => (double)v).ToArray(), wb.ShapeArray);
            }
            want = Reference.Add(want, Reference.DepthwiseConv2d(rx, rw, rm));
        }
        Expect.AllClose(F.DecomposedDepthwiseConv2dSum(x, weights, masks), want, 1e-5, 1e-5, Ctx("sum of 3 branches"));

        var (bias, rb) = RandN([c]);
        var withBias = new RefTensor((double[])want.Data.Clone(), want.Shape);
        for (long i = 0; i < withBias.Data.Length; i++) withBias.Data[i] += rb.Data[i / (h * w) % c];
        Expect.AllClose(F.DecomposedDepthwiseConv2dSum(x, weights, masks, bias), withBias, 1e-5, 1e-5,
            Ctx("sum of 3 branches + channel bias"));
    }

    [TestCase(1, 1, 1, 1)]
    [TestCase(3, 5, 4, 6)]
    [TestCase(2, 3, 181, 181)] // past the CPU backend's parallel threshold
    public void AddBiasChannelsAddsTheChannelsBiasToEveryPlane(int n, int c, int h, int w)
    {
        var (y, ry) = RandN([n, c, h, w]);
        var (bias, rb) = RandN([c]);
        y.Backend.AddBiasChannels(y, bias);
        for (long i = 0; i < ry.Data.Length; i++) ry.Data[i] += rb.Data[i / ((long)h * w) % c];
        Expect.AllClose(y, ry, 1e-6, 1e-6, Ctx($"AddBiasChannels ({n}, {c}, {h}, {w})"));
    }

    [Test]
    public void RefusesInputsThatNeedAGradientAndBadBiasShapes()
    {
        var (x, _) = RandN([1, 2, 5, 5]);
        var (wt, _) = RandN([2, 1, 3, 3]);
        wt.RequiresGrad = true;
        var ex = Assert.Throws<InvalidOperationException>(() => F.DecomposedDepthwiseConv2dSum(x, [wt]));
        Assert.That(ex!.Message, Does.Contain("DecomposedDepthwiseConv2dSum").And.Contain("no gradient"));
        using (Slak.Autograd.GradMode.NoGrad())
            Assert.That(F.DecomposedDepthwiseConv2dSum(x, [wt]).Shape.ToArray(), Is.EqualTo(new[] { 1, 2, 5, 5 }));
        var (bias, _) = RandN([3]);
        var bad = Assert.Throws<ArgumentException>(() => F.DecomposedDepthwiseConv2dSum(x, [wt], null, bias));
        Assert.That(bad!.Message, Does.Contain("bias").And.Contain("(2)").And.Contain("(3)"));
    }
}
