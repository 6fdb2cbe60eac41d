// Rounding float32 values to bfloat16 (8 exponent bits, 7 stored mantissa bits) and TF32 (8 exponent bits, 10 stored
// mantissa bits), round to nearest, ties to even, the result kept in a float32. These are the host definitions every
// other rounding is tested against: the CUDA bf16 type (cuda/common/slak_bf16.cuh: cvt.rn.bf16.f32 on the device, the
// same bit arithmetic in the emulator), the CPU backend's vectorized rounding and the emulator's TF32 GEMM inputs.
// NaN stays NaN (quiet); a finite value beyond the largest bf16 rounds to infinity, as the device conversion does.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Slak.Cuda.Runtime;

/// <summary>bfloat16 and TF32 rounding of float32 values (round to nearest even).</summary>
internal static class ReducedFloat
{
    /// <summary>The bfloat16 bits (the upper 16 bits of the float32) of <paramref name="x"/>, rounded to nearest
    /// even.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToBf16Bits(float x)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (ushort)((u >> 16) | 0x0040u); // NaN: quiet, sign kept
        return (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }

    /// <summary>The float32 value of bfloat16 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FromBf16Bits(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary><paramref name="x"/> rounded to the nearest bfloat16 (ties to even), as a float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundBf16(float x) => FromBf16Bits(ToBf16Bits(x));

    /// <summary><paramref name="x"/> rounded to the nearest TF32 value (10 mantissa bits, ties to even), as a
    /// float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundTf32(float x)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u) return BitConverter.UInt32BitsToSingle(u | 0x00400000u);
        return BitConverter.UInt32BitsToSingle((u + 0xFFFu + ((u >> 13) & 1u)) & 0xFFFFE000u);
    }

    /// <summary>destination[i] = RoundBf16(source[i]) (the spans may be the same memory), vectorized.</summary>
    public static void RoundBf16(ReadOnlySpan<float> source, Span<float> destination)
    {
        if (destination.Length < source.Length)
            throw new ArgumentException($"destination has {destination.Length} elements, source {source.Length}", nameof(destination));
        var s = MemoryMarshal.Cast<float, uint>(source);
        var d = MemoryMarshal.Cast<float, uint>(destination);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var bias = new Vector<uint>(0x7FFFu);
            var one = Vector<uint>.One;
            var keep = new Vector<uint>(0xFFFF0000u);
            var absMask = new Vector<uint>(0x7FFFFFFFu);
            var inf = new Vector<uint>(0x7F800000u);
            var quiet = new Vector<uint>(0x00400000u);
            for (; i <= s.Length - Vector<uint>.Count; i += Vector<uint>.Count)
            {
                var u = new Vector<uint>(s.Slice(i, Vector<uint>.Count));
                var rounded = (u + bias + ((u >> 16) & one)) & keep;
                var nan = Vector.GreaterThan(u & absMask, inf);
                Vector.ConditionalSelect(nan, (u | quiet) & keep, rounded).CopyTo(d.Slice(i, Vector<uint>.Count));
            }
        }
        for (; i < s.Length; i++) destination[i] = RoundBf16(source[i]);
    }

    /// <summary>destination[i] = RoundTf32(source[i]) (the spans may be the same memory).</summary>
    public static void RoundTf32(ReadOnlySpan<float> source, Span<float> destination)
    {
        if (destination.Length < source.Length)
            throw new ArgumentException($"destination has {destination.Length} elements, source {source.Length}", nameof(destination));
        for (int i = 0; i < source.Length; i++) destination[i] = RoundTf32(source[i]);
    }
}
