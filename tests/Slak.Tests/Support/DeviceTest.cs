// Base class of device-parameterized fixtures: one instance per TestDevices entry, the device opened (or the
// fixture ignored) in SetUp, and a fresh seeded TestRandom per test whose seed is printed when the test fails.
using NUnit.Framework;

namespace Slak.Tests.Support;

/// <summary>A fixture run once per test device, with a per-test random source.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.All))]
public abstract class DeviceTest
{
    private TestRandom? _rng;
    private Device? _device;

    /// <summary>Creates the fixture for <paramref name="deviceName"/>.</summary>
    protected DeviceTest(string deviceName) => DeviceName = deviceName;

    /// <summary>The device spec this fixture runs on ("cpu", "cuda-emu", ...).</summary>
    protected string DeviceName { get; }

    /// <summary>The opened device.</summary>
    protected Device Dev => _device ?? throw new InvalidOperationException("device not opened (SetUp did not run)");

    /// <summary>This test's random source.</summary>
    protected TestRandom Rng => _rng ?? throw new InvalidOperationException("random source not created (SetUp did not run)");

    /// <summary>Opens the device and seeds the random source.</summary>
    [SetUp]
    public void OpenDeviceAndSeed()
    {
        _rng = TestRandom.ForCurrentTest();
        _device = TestDevices.Open(DeviceName);
    }

    /// <summary>Prints the seed of a failed test.</summary>
    [TearDown]
    public void ReportSeed()
    {
        if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed && _rng is not null)
            TestContext.Out.WriteLine($"device {DeviceName}, seed {_rng.Seed} (replay with SLAK_TEST_SEED={_rng.Seed})");
    }

    /// <summary>Context string with device and seed for assertion messages.</summary>
    protected string Ctx(string what) => Rng.Ctx($"[{DeviceName}] {what}");

    /// <summary>A tensor on the test device from host data.</summary>
    protected Tensor T(float[] data, params int[] shape) => Tensor.FromArray(data, shape, Dev);

    /// <summary>A tensor of normal samples on the test device, with the same values as a reference tensor.</summary>
    protected (Tensor T, RefTensor R) RandN(int[] shape, double std = 1, double mean = 0)
    {
        var data = Rng.NormalArray(RefTensor.Numel(shape), std, mean);
        return (T(data, shape), RefTensor.From(data, shape));
    }

    /// <summary>An output tensor poisoned with NaN, so elements a kernel does not write fail the comparison.</summary>
    protected Tensor Poisoned(params int[] shape) => Tensor.Full(shape, float.NaN, Dev);
}
