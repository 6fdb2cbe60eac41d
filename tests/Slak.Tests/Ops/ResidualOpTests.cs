// The SLaK block's epilogue as one operator (F.ChannelsLastResidual: layer scale, DropPath, the permute back to NCHW
// and the residual add): the backend kernels with NaN-poisoned outputs against float64 references, gradients against
// finite differences, bit-for-bit agreement with the unfused MulLastDim -> ToChannelsFirst -> MulRows -> Add path it
// replaces (forward and every gradient: the same float operations in the same order), the DropPath draws, and errors.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class ResidualOpTests(string device) : DeviceTest(device)
{
    private static RefTensor Reference(RefTensor input, RefTensor y, RefTensor? gamma, double[]? scale)
    {
        var t = gamma is null ? y : Support.Reference.MulLastDim(y, gamma);
        t = Support.Reference.Permute(t, 0, 3, 1, 2);
        if (scale is not null) t = Support.Reference.MulRows(t, scale);
        return Support.Reference.Add(input, t);
    }

    /// <summary>DropPath factors of a rate-0.4 layer: zeros and 1 / 0.6 mixed (at least one of each for n
    /// >= 2).</summary>
    private static double[] Factors(int n) =>
        [.. Enumerable.Range(0, n).Select(i => i % 3 == 1 ? 0.0 : (double)(1f / 0.6f))];

    // Tiles of 32 pixels x 32 channels (CUDA) and 16-pixel row tiles (CPU): maps smaller and larger than a tile,
    // tiles that cross images, channel counts around 32, 1x1 maps.
    [TestCase(1, 1, 1, 1, true, true)]
    [TestCase(2, 3, 4, 5, true, false)]
    [TestCase(3, 33, 7, 9, false, true)]
    [TestCase(5, 40, 1, 1, true, true)]
    [TestCase(2, 64, 6, 6, false, false)]
    [TestCase(2, 31, 3, 11, true, true)]
    [TestCase(3, 31, 8, 8, true, true)] // the CPU's 8 x 8 transpose tiles: slak_nano's stage-1 and stage-2 maps,
    [TestCase(3, 62, 4, 4, true, false)] // channel counts that leave a remainder for the scalar loop
    [KernelParity("channels_last_residual_kernel", "channels_last_residual_bwd_kernel")]
    public void KernelsMatchFloat64(int n, int c, int h, int w, bool withGamma, bool withScale)
    {
        var (input, rin) = RandN([n, c, h, w]);
        var (y, ry) = RandN([n, h, w, c]);
        var (gamma, rg) = RandN([c]);
        var factors = Factors(n);
        var scale = T([.. factors.Select(v => (float)v)], n);
        Tensor? g = withGamma ? gamma : null;
        Tensor? s = withScale ? scale : null;
        string what = $"{n}x{c}x{h}x{w} gamma {withGamma} scale {withScale}";
        var output = Poisoned(n, c, h, w);
        input.Backend.ChannelsLastResidual(input, y, g, s, output);
        Expect.AllClose(output, Reference(rin, ry, withGamma ? rg : null, withScale ? factors : null), 1e-6, 1e-5,
            Ctx($"ChannelsLastResidual {what}"));

        // Backward: dy = permute(dOut) * scale * gamma, dgamma = sum over (n, h, w) of permute(dOut) * scale * y.
        var (dOut, rdOut) = RandN([n, c, h, w]);
        var dy = Poisoned(n, h, w, c);
        var dg = withGamma ? Poisoned(c) : null;
        input.Backend.ChannelsLastResidualBackward(y, g, s, dOut, dy, dg);
        var gp = Support.Reference.Permute(withScale ? Support.Reference.MulRows(rdOut, factors) : rdOut, 0, 2, 3, 1);
        var expectDy = withGamma ? Support.Reference.MulLastDim(gp, rg) : gp;
        Expect.AllClose(dy, expectDy, 1e-6, 1e-5, Ctx($"dy {what}"));
        if (dg is null) return;
        var expectDg = new double[c];
        for (int i = 0; i < gp.Length; i++) expectDg[i % c] += gp[i] * ry[i];
        Expect.AllClose(dg.ToArray(), expectDg, 1e-5, 1e-4, Ctx($"dgamma {what}"));
    }

    [Test]
    public void BackwardWritesOnlyWhatIsAsked()
    {
        const int n = 2, c = 5, h = 3, w = 4;
        var (y, _) = RandN([n, h, w, c]);
        var (gamma, _) = RandN([c]);
        var (dOut, _) = RandN([n, c, h, w]);
        var dgOnly = Poisoned(c);
        y.Backend.ChannelsLastResidualBackward(y, gamma, null, dOut, null, dgOnly);
        var dyOnly = Poisoned(n, h, w, c);
        y.Backend.ChannelsLastResidualBackward(y, gamma, null, dOut, dyOnly, null);
        var dy = Poisoned(n, h, w, c);
        var dg = Poisoned(c);
        y.Backend.ChannelsLastResidualBackward(y, gamma, null, dOut, dy, dg);
        Expect.Exactly(dgOnly.ToArray(), dg.ToArray(), Ctx("dgamma without dy"));
        Expect.Exactly(dyOnly.ToArray(), dy.ToArray(), Ctx("dy without dgamma"));
    }

    [TestCase(2, 3, 2, 3)]
    [TestCase(3, 4, 1, 1)]
    public void GradientMatchesFiniteDifferences(int n, int c, int h, int w)
    {
        var factors = Factors(n);
        var scale = T([.. factors.Select(v => (float)v)], n);
        GradCheck.Check(Dev, Rng, $"ChannelsLastResidual {n}x{c}x{h}x{w}",
            [new("input", Rng.NormalArray(n * c * h * w), [n, c, h, w]), new("y", Rng.NormalArray(n * h * w * c), [n, h, w, c]),
             new("gamma", Rng.NormalArray(c), [c])],
            t => F.ChannelsLastResidual(t[0], t[1], t[2], scale), r => Reference(r[0], r[1], r[2], factors));
    }

    // The fused operator against the four operators it replaces in the block: every output bit and every gradient
    // bit (the same products, the same gamma reduction blocks), with and without layer scale and DropPath. The
    // 16 x 48 x 6 x 6 case splits into several row blocks on more than one thread.
    [TestCase(16, 48, 6, 6, true, true)]
    [TestCase(16, 48, 6, 6, true, false)]
    [TestCase(4, 40, 1, 1, false, true)]
    [TestCase(3, 7, 5, 3, false, false)]
    [TestCase(16, 31, 8, 8, true, true)] // 8 x 8 transpose tiles on the CPU, runs of 16 pixels, channel remainder
    [TestCase(16, 62, 4, 4, false, true)]
    [TestCase(16, 24, 3, 5, true, false)] // runs of 15 crossing images: one tile and a scalar tail per run
    public void EqualsTheUnfusedOperatorsBitForBit(int n, int c, int h, int w, bool withGamma, bool withScale)
    {
        var fused = Run(n, c, h, w, withGamma, withScale, fused: true);
        var plain = Run(n, c, h, w, withGamma, withScale, fused: false);
        string[] names = ["output", "dinput", "dy", "dgamma"];
        for (int k = 0; k < fused.Length; k++)
            Expect.Exactly(fused[k], plain[k], Ctx($"{names[k]} {n}x{c}x{h}x{w} gamma {withGamma} scale {withScale}: fused vs unfused"));
    }

    /// <summary>Output and gradients (input, y, gamma when present) of sum(op * r) for the fused or unfused block
    /// epilogue, on inputs from a fixed seed.</summary>
    private float[][] Run(int n, int c, int h, int w, bool withGamma, bool withScale, bool fused)
    {
        var rng = new Random(13);
        float[] Draw(int count) => [.. Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 4 - 2))];
        using var scope = TensorScope.Begin();
        var input = T(Draw(n * c * h * w), n, c, h, w);
        var y = T(Draw(n * h * w * c), n, h, w, c);
        var gamma = T(Draw(c), c);
        var r = T(Draw(n * c * h * w), n, c, h, w);
        input.RequiresGrad = y.RequiresGrad = gamma.RequiresGrad = true;
        Tensor? g = withGamma ? gamma : null;
        Tensor output;
        if (fused)
        {
            var scale = withScale ? F.DropPathScale(n, 0.4f, true, new SlakRandom(3), Dev) : null;
            output = F.ChannelsLastResidual(input, y, g, scale);
        }
        else
        {
            var t = g is null ? y : F.MulLastDim(y, g);
            t = F.ToChannelsFirst(t);
            if (withScale) t = F.DropPath(t, 0.4f, true, new SlakRandom(3));
            output = F.Add(input, t);
        }
        F.Sum(F.Mul(output, r)).Backward();
        float[][] result = [output.ToArray(), input.Grad!.ToArray(), y.Grad!.ToArray()];
        return withGamma ? [.. result, gamma.Grad!.ToArray()] : result;
    }
}

/// <summary>The device-independent parts of the fused block epilogue: the DropPath draws and the argument errors
/// (checked once, on the CPU).</summary>
public sealed class ResidualArgumentTests
{
    [Test]
    public void DropPathScaleDrawsWhatDropPathDraws()
    {
        const int n = 64;
        using var scope = TensorScope.Begin();
        var ones = Tensor.Full([n, 1], 1f, Device.Cpu);
        var dropped = F.DropPath(ones, 0.3f, true, new SlakRandom(5)).ToArray();
        var scale = F.DropPathScale(n, 0.3f, true, new SlakRandom(5), Device.Cpu)!.ToArray();
        Expect.Exactly(scale, dropped, "DropPathScale vs DropPath's factors");
        Assert.That(scale.Distinct().Count(), Is.EqualTo(2), "both kept and dropped samples");
        Assert.That(F.DropPathScale(n, 0.3f, false, new SlakRandom(5), Device.Cpu), Is.Null, "evaluation: nothing dropped");
        Assert.That(F.DropPathScale(n, 0f, true, new SlakRandom(5), Device.Cpu), Is.Null, "rate 0: nothing dropped");
    }

    [Test]
    public void RejectsMismatchedShapesByName()
    {
        using var scope = TensorScope.Begin();
        var input = Tensor.Zeros([2, 3, 4, 5], Device.Cpu);
        var ex = Assert.Throws<ArgumentException>(() => F.ChannelsLastResidual(input, Tensor.Zeros([2, 3, 4, 5], Device.Cpu), null, null));
        Assert.That(ex!.Message, Does.Contain("y has shape (2, 3, 4, 5)").And.Contain("channels-last"), "y in NCHW");
        ex = Assert.Throws<ArgumentException>(() =>
            F.ChannelsLastResidual(input, Tensor.Zeros([2, 4, 5, 3], Device.Cpu), Tensor.Zeros([4], Device.Cpu), null));
        Assert.That(ex!.Message, Does.Contain("gamma must have shape (3)"), "gamma of the wrong length");
        ex = Assert.Throws<ArgumentException>(() =>
            F.ChannelsLastResidual(input, Tensor.Zeros([2, 4, 5, 3], Device.Cpu), null, Tensor.Zeros([3], Device.Cpu)));
        Assert.That(ex!.Message, Does.Contain("scale must have shape (2)"), "scale of the wrong length");
    }
}
