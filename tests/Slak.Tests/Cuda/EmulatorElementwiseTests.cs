// The element-wise kernels (cuda/kernels/elementwise.cu), run by the host emulator through their typed launchers,
// against float64 references written here. Outputs are poisoned with NaN before each launch, so an element the
// kernel forgot fails. Sizes cover a single element, partial blocks and a grid capped below n/256 (grid-stride).
// Bad arguments are refused at the public edge (Slak.F, Ops/BadInputTests), not here: the launchers only assert.
using NUnit.Framework;
using Slak.Tests.Support;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using static Slak.Tests.Cuda.EmulatorTestSupport;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class EmulatorElementwiseTests
{
    private EmulatedDevice _dev = null!;

    // Exact float ops (one rounding): a few ulps; fma against double: the same.
    private const double Atol = 1e-6;
    private const double Rtol = 1e-6;

    private static readonly long[] Sizes = [1, 255, 257, 1000, (long)LaunchPlans.GridStrideMaxBlocks * LaunchPlans.Block + 1001];

    [OneTimeSetUp]
    public void Open() => _dev = EmulatedDevice.Open();

    [OneTimeTearDown]
    public void Close() => _dev.Dispose();

    private static float[] RandomFloats(Random rng, long n)
    {
        var a = new float[n];
        for (var i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 4 - 2);
        return a;
    }

    [TestCaseSource(nameof(Sizes))]
    [KernelParity("copy_kernel")]
    public void FillAndCopyMatchReference(long n)
    {
        var seed = NewSeed();
        var rng = new Random(seed);
        var x = RandomFloats(rng, n);
        var value = (float)rng.NextDouble();
        var dx = Upload<float>(_dev, x);
        var dout = Poisoned(_dev, n);
        ElementwiseKernels.Fill(_dev, dout, value, n);
        AssertClose(Download<float>(_dev, dout, (int)n), Enumerable.Repeat((double)value, (int)n).ToArray(), 0, 0,
            $"fill n={n} seed={seed}");
        _dev.Memset32(dout, NaNBits, n);
        ElementwiseKernels.Copy(_dev, dout, dx, n);
        AssertClose(Download<float>(_dev, dout, (int)n), x.Select(v => (double)v).ToArray(), 0, 0,
            $"copy n={n} seed={seed}");
        _dev.Free(dx);
        _dev.Free(dout);
    }

    [TestCaseSource(nameof(Sizes))]
    public void BinaryOpsMatchReference(long n)
    {
        var seed = NewSeed();
        var rng = new Random(seed);
        var a = RandomFloats(rng, n);
        var b = RandomFloats(rng, n);
        var da = Upload<float>(_dev, a);
        var db = Upload<float>(_dev, b);
        var dout = Poisoned(_dev, n);
        ElementwiseKernels.Add(_dev, dout, da, db, n);
        AssertClose(Download<float>(_dev, dout, (int)n), a.Select((v, i) => (double)v + b[i]).ToArray(), Atol, Rtol,
            $"add n={n} seed={seed}");
        _dev.Memset32(dout, NaNBits, n);
        ElementwiseKernels.Mul(_dev, dout, da, db, n);
        AssertClose(Download<float>(_dev, dout, (int)n), a.Select((v, i) => (double)v * b[i]).ToArray(), Atol, Rtol,
            $"mul n={n} seed={seed}");
        // In place: a = a + b.
        ElementwiseKernels.Add(_dev, da, da, db, n);
        AssertClose(Download<float>(_dev, da, (int)n), a.Select((v, i) => (double)v + b[i]).ToArray(), Atol, Rtol,
            $"add in place n={n} seed={seed}");
        _dev.Free(da);
        _dev.Free(db);
        _dev.Free(dout);
    }

    [TestCaseSource(nameof(Sizes))]
    public void AxpyAndScaleMatchReference(long n)
    {
        var seed = NewSeed();
        var rng = new Random(seed);
        var x = RandomFloats(rng, n);
        var y = RandomFloats(rng, n);
        var alpha = (float)(rng.NextDouble() * 3 - 1.5);
        var dx = Upload<float>(_dev, x);
        var dy = Upload<float>(_dev, y);
        ElementwiseKernels.Axpy(_dev, dy, dx, alpha, n);
        AssertClose(Download<float>(_dev, dy, (int)n), y.Select((v, i) => v + (double)alpha * x[i]).ToArray(), Atol,
            Rtol, $"axpy n={n} alpha={alpha} seed={seed}");
        var dout = Poisoned(_dev, n);
        ElementwiseKernels.Scale(_dev, dout, dx, alpha, n);
        AssertClose(Download<float>(_dev, dout, (int)n), x.Select(v => (double)alpha * v).ToArray(), Atol, Rtol,
            $"scale n={n} alpha={alpha} seed={seed}");
        _dev.Free(dx);
        _dev.Free(dy);
        _dev.Free(dout);
    }

    [Test]
    public void ZeroElementsLaunchNothing()
    {
        var dout = Poisoned(_dev, 4);
        var before = EmulatedDevice.LaunchCounts.GetValueOrDefault("fill_kernel");
        ElementwiseKernels.Fill(_dev, dout, 1f, 0);
        Assert.That(EmulatedDevice.LaunchCounts.GetValueOrDefault("fill_kernel"), Is.EqualTo(before));
        Assert.That(float.IsNaN(Download<float>(_dev, dout, 4)[0]), Is.True, "n=0 must not write");
        _dev.Free(dout);
    }
}
