// Activation operators (family activation: Gelu, MulLastDim, bias add, DropPath): forward through Slak.F against the
// float64 references, backward by GradCheck or finite differences, and the backend kernels called directly on
// NaN-poisoned outputs so an element a kernel forgets to write fails.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class ActivationOpTests(string device) : DeviceTest(device)
{
    [Test]
    public void GeluMatchesReferenceOverItsRangeAndBackwardKernelWritesAll()
    {
        int n = Rng.Int(1000, 3000);
        var data = Rng.UniformArray(n, -9, 9);
        data[0] = 0; data[1] = -30; data[2] = 30; data[3] = 1e-20f;
        var x = T(data, n);
        var rx = RefTensor.From(data, n);
        var y = Poisoned(n);
        x.Backend.Gelu(x, y);
        Expect.AllClose(y, Reference.Gelu(rx), 1e-7, 2e-6, Ctx("Gelu"));
        var (dy, rdy) = RandN([n]);
        var dx = Poisoned(n);
        x.Backend.GeluBackward(x, dy, dx);
        // Element-wise, so the vector-Jacobian product is dy times the scalar derivative (central differences).
        var expected = new double[n];
        for (int i = 0; i < n; i++)
        {
            double h = 1e-6 * Math.Max(1, Math.Abs(rx[i]));
            expected[i] = rdy[i] * (Reference.Gelu(rx[i] + h) - Reference.Gelu(rx[i] - h)) / (2 * h);
        }
        Expect.AllClose(dx.ToArray(), expected, 1e-6, 1e-5, Ctx("GeluBackward vs central differences"));
    }

    [Test]
    [KernelParity("gelu_bwd_kernel", "gelu_fwd_kernel")]
    public void GeluGradient()
    {
        int[] shape = [Rng.Int(1, 4), Rng.Int(1, 6), Rng.Int(1, 5)];
        int n = RefTensor.Numel(shape);
        GradCheck.Check(Dev, Rng, "Gelu", [new("x", Rng.NormalArray(n, 2), shape)], t => F.Gelu(t[0]), r => Reference.Gelu(r[0]),
            forwardRtol: 2e-5);
    }

    [TestCase(1, 1)]
    [TestCase(7, 1)]
    [TestCase(5, 13)]
    [TestCase(3000, 17)]
    [KernelParity("mul_last_dim_kernel")]
    public void MulLastDimForwardKernelsAndGradient(int rows, int c)
    {
        int[] shape = rows % 2 == 0 ? [rows, c] : [1, rows, c];
        var (x, rx) = RandN(shape);
        var (g, rg) = RandN([c]);
        Expect.AllClose(F.MulLastDim(x, g), Reference.MulLastDim(rx, rg), 1e-6, 1e-6, Ctx($"MulLastDim {rows}x{c}"));
        var y = Poisoned(shape);
        x.Backend.MulLastDim(x, g, y);
        Expect.AllClose(y, Reference.MulLastDim(rx, rg), 1e-6, 1e-6, Ctx("IBackend.MulLastDim"));

        var (dy, rdy) = RandN(shape);
        var dx = Poisoned(shape);
        var dg = Poisoned(c);
        x.Backend.MulLastDimBackward(x, g, dy, dx, dg);
        // Closed forms (the numeric check is GradCheck below, on the small cases): dx = dy * gamma,
        // dgamma[c] = sum over rows of x * dy.
        var dgExpected = new double[c];
        for (int i = 0; i < rx.Length; i++) dgExpected[i % c] += rx[i] * rdy[i];
        Expect.AllClose(dx, Reference.MulLastDim(rdy, rg), 1e-6, 1e-6, Ctx("MulLastDimBackward dx"));
        Expect.AllClose(dg.ToArray(), dgExpected, 1e-5 * Math.Sqrt(rows), 1e-5, Ctx("MulLastDimBackward dgamma"));
        Func<RefTensor[], RefTensor> f = i => Reference.MulLastDim(i[0], i[1]);

        if (rows * c <= 200)
            GradCheck.Check(Dev, Rng, "MulLastDim", [new("x", rx.Data.Select(v => (float)v).ToArray(), shape), new("gamma", rg.Data.Select(v => (float)v).ToArray(), [c])],
                t => F.MulLastDim(t[0], t[1]), f);
    }

    [Test]
    [KernelParity("add_bias_kernel", "column_sum_finalize_kernel", "column_sum_partial_kernel")]
    public void BiasAndColumnSumKernels()
    {
        int rows = Rng.Int(1, 3000), c = Rng.Int(1, 40);
        var (y0, ry) = RandN([rows, c]);
        var (b, rb) = RandN([c]);
        y0.Backend.AddBiasLastDim(y0, b);
        Expect.AllClose(y0, Reference.AddLastDim(ry, rb), 1e-6, 1e-6, Ctx($"AddBiasLastDim {rows}x{c}"));
        var db = Poisoned(c);
        y0.Backend.SumToLastDim(y0, db);
        var expected = new double[c];
        var after = Reference.AddLastDim(ry, rb);
        for (int i = 0; i < after.Length; i++) expected[i % c] += after[i];
        Expect.AllClose(db.ToArray(), expected, 1e-4 * Math.Sqrt(rows), 1e-5, Ctx($"SumToLastDim {rows}x{c}"));
    }

    [Test]
    public void DropPathZeroesWholeSamplesAndRescalesSurvivors()
    {
        int n = Rng.Int(20, 60);
        int[] shape = [n, 3, 2, Rng.Int(1, 5)];
        var (x, rx) = RandN(shape);
        float rate = (float)Rng.Uniform(0.2, 0.6);
        var y = F.DropPath(x, rate, training: true, new SlakRandom((ulong)Rng.Seed)).ToArray();
        int row = y.Length / n, dropped = 0;
        for (int s = 0; s < n; s++)
        {
            bool zero = true;
            for (int i = 0; i < row; i++) zero &= y[s * row + i] == 0;
            if (zero) { dropped++; continue; }
            for (int i = 0; i < row; i++)
                Assert.That(y[s * row + i], Is.EqualTo(rx[s * row + i] / (1 - rate)).Within(1e-6 + 1e-6 * Math.Abs(rx[s * row + i])),
                    Ctx($"survivor sample {s} element {i} must be x / keep"));
        }
        Assert.That(dropped, Is.InRange(1, n - 1), Ctx($"rate {rate} over {n} samples dropped {dropped}"));
        var again = F.DropPath(x, rate, training: true, new SlakRandom((ulong)Rng.Seed)).ToArray();
        Expect.Exactly(again, y, Ctx("same generator state, same drop mask"));
    }

    [Test]
    [KernelParity("mul_rows_kernel")]
    public void DropPathDropRateMatchesRate()
    {
        int n = 4000;
        var x = Tensor.Ones([n, 1], Dev);
        const float rate = 0.3f;
        var y = F.DropPath(x, rate, training: true, new SlakRandom((ulong)Rng.Seed)).ToArray();
        double dropped = y.Count(v => v == 0) / (double)n;
        // Binomial std at n = 4000 is ~0.0072; 5 sigma.
        Assert.That(dropped, Is.EqualTo(rate).Within(0.036), Ctx("fraction of dropped samples"));
    }

    [Test]
    public void DropPathIsIdentityInEvalOrAtRateZero()
    {
        var (x, _) = RandN([3, 4]);
        Assert.That(F.DropPath(x, 0.5f, training: false, new SlakRandom(1)).ToArray(), Is.EqualTo(x.ToArray()), Ctx("eval"));
        Assert.That(F.DropPath(x, 0f, training: true, new SlakRandom(1)).ToArray(), Is.EqualTo(x.ToArray()), Ctx("rate 0"));
    }

    [Test]
    public void DropPathGradientUsesTheSameMask()
    {
        int n = Rng.Int(4, 8);
        int[] shape = [n, 2, 3];
        var data = Rng.NormalArray(RefTensor.Numel(shape));
        const float rate = 0.5f;
        ulong seed = (ulong)Rng.Seed;
        // The drop mask is read from the forward output (a sample is dropped when its output row is all zero);
        // the reference then applies that mask, so the check is about the backward using the forward's mask.
        var probe = F.DropPath(T(data, shape), rate, training: true, new SlakRandom(seed)).ToArray();
        int row = probe.Length / n;
        var scale = new double[n];
        for (int s = 0; s < n; s++) scale[s] = probe.Skip(s * row).Take(row).All(v => v == 0) ? 0 : 1 / (1.0 - rate);
        var kernelOut = Poisoned(shape);
        var rows = T(scale.Select(v => (float)v).ToArray(), n);
        kernelOut.Backend.MulRows(T(data, shape), rows, kernelOut);
        Expect.AllClose(kernelOut, Reference.MulRows(RefTensor.From(data, shape), scale), 1e-6, 1e-6, Ctx("IBackend.MulRows"));
        GradCheck.Check(Dev, Rng, "DropPath", [new("x", data, shape)],
            t => F.DropPath(t[0], rate, training: true, new SlakRandom(seed)), r => Reference.MulRows(r[0], scale));
    }
}
