// The bf16 conversion kernels (cuda/kernels/precision.cu, slak_bf16.cuh's emulator branch) on the host emulator
// against ReducedFloat, bit for bit: round_bf16 out of place and in place, and float32 -> 16-bit bf16 -> float32
// through a real 2-byte buffer (the packed bits must be ReducedFloat.ToBf16Bits). Outputs are poisoned first; inputs
// are random bit patterns over every exponent plus ties, zeros, infinities and NaN (seed printed); sizes cover one
// element, partial blocks and a grid-stride overrun.
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;
using static Slak.Tests.Cuda.EmulatorTestSupport;

namespace Slak.Tests.Precision;

[TestFixture]
public sealed class EmulatorPrecisionKernelTests
{
    private EmulatedDevice _dev = null!;

    private static readonly long[] Sizes = [1, 257, (long)LaunchPlans.GridStrideMaxBlocks * LaunchPlans.Block + 1001];

    [OneTimeSetUp]
    public void Open() => _dev = EmulatedDevice.Open();

    [OneTimeTearDown]
    public void Close() => _dev.Dispose();

    private static float[] Inputs(TestRandom rng, long n)
    {
        var x = new float[n];
        for (long i = 0; i < n; i++)
            x[i] = (i % 7) switch
            {
                0 => BitConverter.UInt32BitsToSingle(((uint)rng.Int(0, int.MaxValue - 1) << 1) & 0xFFFF0000u | 0x8000u), // tie
                1 => (float)rng.Uniform(-3, 3),
                _ => BitConverter.UInt32BitsToSingle((uint)rng.Int(0, int.MaxValue - 1) * 2u + (uint)rng.Int(0, 1)),
            };
        float[] specials = [0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.MaxValue, float.Epsilon];
        for (int i = 0; i < specials.Length && i < n; i++) x[n - 1 - i] = specials[i];
        return x;
    }

    private static void AssertBits(float[] got, float[] x, TestRandom rng, string what)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float want = ReducedFloat.RoundBf16(x[i]);
            if (float.IsNaN(want))
            {
                Assert.That(float.IsNaN(got[i]), Is.True, rng.Ctx($"{what}: element {i} (NaN) gave {got[i]:R}"));
                continue;
            }
            Assert.That(BitConverter.SingleToUInt32Bits(got[i]), Is.EqualTo(BitConverter.SingleToUInt32Bits(want)),
                rng.Ctx($"{what}: element {i}, input {x[i]:R} (0x{BitConverter.SingleToUInt32Bits(x[i]):X8})"));
        }
    }

    [TestCaseSource(nameof(Sizes))]
    [KernelParity("round_bf16_kernel")]
    public void RoundBf16MatchesTheHostRoundingBitForBit(long n)
    {
        var rng = TestRandom.ForCurrentTest();
        var x = Inputs(rng, n);
        var dx = Upload<float>(_dev, x);
        var dout = Poisoned(_dev, n);
        PrecisionKernels.RoundBf16(_dev, dout, dx, n);
        AssertBits(Download<float>(_dev, dout, (int)n), x, rng, $"round_bf16 n={n}");
        PrecisionKernels.RoundBf16(_dev, dx, dx, n);
        AssertBits(Download<float>(_dev, dx, (int)n), x, rng, $"round_bf16 in place n={n}");
        _dev.Free(dx);
        _dev.Free(dout);
    }

    [TestCaseSource(nameof(Sizes))]
    [KernelParity("f32_to_bf16_kernel", "bf16_to_f32_kernel")]
    public void PackAndUnpackThroughSixteenBitsMatchTheHostRounding(long n)
    {
        var rng = TestRandom.ForCurrentTest();
        var x = Inputs(rng, n);
        var dx = Upload<float>(_dev, x);
        var half = _dev.Allocate((n + 1) / 2 * sizeof(uint)); // whole words, so that it can be poisoned
        _dev.Memset32(half, 0xFFFFFFFFu, (n + 1) / 2);
        var dout = Poisoned(_dev, n);
        PrecisionKernels.Float32ToBf16(_dev, half, dx, n);
        var bits = Download<ushort>(_dev, half, (int)n);
        for (int i = 0; i < n; i++)
            if (!float.IsNaN(x[i]))
                Assert.That(bits[i], Is.EqualTo(ReducedFloat.ToBf16Bits(x[i])), rng.Ctx($"bf16 bits of element {i} ({x[i]:R})"));
        PrecisionKernels.Bf16ToFloat32(_dev, dout, half, n);
        AssertBits(Download<float>(_dev, dout, (int)n), x, rng, $"bf16 round trip n={n}");
        _dev.Free(dx);
        _dev.Free(half);
        _dev.Free(dout);
    }
}
