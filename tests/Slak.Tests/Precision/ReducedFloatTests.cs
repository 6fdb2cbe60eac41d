// bfloat16 and TF32 rounding (ReducedFloat) against an independent reference: of the two neighbours of x that keep
// the format's mantissa bits (truncation and one unit above it), the nearer one by float64 distance, a tie going to the
// even mantissa; overflow past the largest finite value goes to infinity (the value 2^128 stands for it, as IEEE
// rounding does). Random values over the whole exponent range (seed printed), exact ties, signed zeros, subnormals,
// infinities and NaN; and the vectorized span path equals the scalar one at every element.
using NUnit.Framework;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Precision;

public sealed class ReducedFloatTests
{
    // The reference rounding of x to a float with `dropped` low mantissa bits removed (16: bf16, 13: TF32).
    private static float Reference(float x, int dropped)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        uint unit = 1u << dropped;
        uint down = u & ~(unit - 1);
        if (down == u) return x;
        uint up = down + unit; // one unit further from zero (same sign)
        static double Value(uint bits) => (bits & 0x7FFFFFFFu) == 0x7F800000u
            ? ((bits & 0x80000000u) != 0 ? -Math.Pow(2, 128) : Math.Pow(2, 128))
            : BitConverter.UInt32BitsToSingle(bits);
        double dd = Math.Abs(x - Value(down)), du = Math.Abs(Value(up) - x);
        uint pick = dd < du ? down : du < dd ? up : ((down >> dropped) & 1) == 0 ? down : up;
        return BitConverter.UInt32BitsToSingle(pick);
    }

    private static IEnumerable<float> Specials()
    {
        foreach (float f in new[] { 0f, -0f, 1f, -1f, float.Epsilon, -float.Epsilon, float.MaxValue, -float.MaxValue,
                     float.PositiveInfinity, float.NegativeInfinity, 1e-40f, 3.3895314e38f, 65504f })
            yield return f;
        // Exact ties (the dropped bits are exactly half a unit) around even and odd kept mantissas, both signs.
        foreach (uint baseBits in new uint[] { 0x3F800000u, 0x3F810000u, 0x40490000u, 0x00010000u, 0x7F7F0000u })
            foreach (uint sign in new uint[] { 0, 0x80000000u })
            {
                yield return BitConverter.UInt32BitsToSingle(sign | baseBits | 0x8000u);   // bf16 tie
                yield return BitConverter.UInt32BitsToSingle(sign | baseBits | 0x1000u);   // TF32 tie
                yield return BitConverter.UInt32BitsToSingle(sign | baseBits | 0x3000u);   // TF32 tie, odd kept bit
            }
    }

    private static float[] Values(TestRandom rng, int count)
    {
        var list = Specials().ToList();
        for (int i = 0; i < count; i++)
            list.Add(BitConverter.UInt32BitsToSingle((uint)rng.Int(0, int.MaxValue - 1) * 2u + (uint)rng.Int(0, 1)));
        return list.Where(f => !float.IsNaN(f)).ToArray();
    }

    [Test]
    public void Bf16RoundsToNearestEvenLikeTheReference()
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (float x in Values(rng, 200_000))
        {
            float r = ReducedFloat.RoundBf16(x), want = Reference(x, 16);
            Assert.That(BitConverter.SingleToUInt32Bits(r), Is.EqualTo(BitConverter.SingleToUInt32Bits(want)),
                rng.Ctx($"bf16({x:R}) bits 0x{BitConverter.SingleToUInt32Bits(x):X8}"));
            Assert.That(BitConverter.SingleToUInt32Bits(r) & 0xFFFFu, Is.Zero);
            Assert.That(ReducedFloat.FromBf16Bits(ReducedFloat.ToBf16Bits(x)), Is.EqualTo(r).Or.NaN);
        }
        Assert.That(float.IsNaN(ReducedFloat.RoundBf16(float.NaN)), Is.True, "NaN stays NaN");
        Assert.That(float.IsNaN(ReducedFloat.RoundBf16(BitConverter.UInt32BitsToSingle(0x7F800001u))), Is.True,
            "a NaN whose payload lies only in the dropped bits stays NaN (not infinity)");
    }

    [Test]
    public void Tf32RoundsToNearestEvenLikeTheReference()
    {
        var rng = TestRandom.ForCurrentTest();
        foreach (float x in Values(rng, 200_000))
        {
            float r = ReducedFloat.RoundTf32(x), want = Reference(x, 13);
            Assert.That(BitConverter.SingleToUInt32Bits(r), Is.EqualTo(BitConverter.SingleToUInt32Bits(want)),
                rng.Ctx($"tf32({x:R}) bits 0x{BitConverter.SingleToUInt32Bits(x):X8}"));
        }
        Assert.That(float.IsNaN(ReducedFloat.RoundTf32(BitConverter.UInt32BitsToSingle(0x7F800001u))), Is.True);
    }

    [Test]
    public void VectorizedBf16SpanEqualsTheScalarRounding()
    {
        var rng = TestRandom.ForCurrentTest();
        var x = Values(rng, 10_001).Append(float.NaN).Append(-float.NaN).ToArray();
        var y = new float[x.Length];
        ReducedFloat.RoundBf16(x, y);
        for (int i = 0; i < x.Length; i++)
            Assert.That(BitConverter.SingleToUInt32Bits(y[i]), Is.EqualTo(BitConverter.SingleToUInt32Bits(ReducedFloat.RoundBf16(x[i]))),
                rng.Ctx($"element {i} ({x[i]:R})"));
        ReducedFloat.RoundBf16(x, x); // in place
        Assert.That(x.Select(BitConverter.SingleToUInt32Bits), Is.EqualTo(y.Select(BitConverter.SingleToUInt32Bits)));
    }
}
