// What the tests of the public kernel entry points (DecomposedDwConv, DenseConv2d on DeviceBuffer<float>) share: two
// emulated devices per test (the second one makes "buffer of another device" arguments), the test's seeded random
// source, and device buffers filled from host data or poisoned with NaN so a value the kernel fails to write shows.
using NUnit.Framework;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

/// <summary>Base of the fixtures that call a kernel family's public API on cuda-emu.</summary>
public abstract class KernelApiFixture
{
    /// <summary>The device the calls run on.</summary>
    private protected GpuDevice Dev { get; private set; } = null!;

    /// <summary>A second device: buffers allocated here are "on another device" for <see cref="Dev"/>'s
    /// calls.</summary>
    private protected GpuDevice Other { get; private set; } = null!;

    /// <summary>The current test's random source (its seed is printed on failure).</summary>
    private protected TestRandom Rng { get; private set; } = null!;

    [SetUp]
    public void OpenDevices()
    {
        _ = TestDevices.Open("cuda-emu"); // ignored with the reason when the emulator is unavailable
        Dev = GpuDevices.Open("cuda-emu");
        Other = GpuDevices.Open("cuda-emu");
        Rng = TestRandom.ForCurrentTest();
    }

    [TearDown]
    public void CloseDevices()
    {
        Dev?.Dispose();
        Other?.Dispose();
    }

    /// <summary>A buffer on <see cref="Dev"/> holding <paramref name="data"/>.</summary>
    private protected DeviceBuffer<float> Buf(float[] data) => DeviceBuffer<float>.FromSpan(Dev, data);

    /// <summary>A buffer of <paramref name="n"/> NaNs on <see cref="Dev"/>.</summary>
    private protected DeviceBuffer<float> Poisoned(long n)
    {
        var b = new DeviceBuffer<float>(Dev, n);
        b.Fill(float.NaN);
        return b;
    }
}
