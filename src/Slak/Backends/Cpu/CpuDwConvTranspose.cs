// Vectorised moves between 8 separate image planes and the batch-interleaved scratch layout (pixel-major, the 8
// images in the lanes). On small maps (SLaK-T stage 4: 7x7 planes, 998 channels) the scalar strided gather/scatter
// cost more than the convolution itself (measured in bench/results/dwconv-stage4.md), so full groups of 8 images
// go through 8x8 register transposes over the flattened pixel index instead.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

/// <summary>8x8 transposes between 8 planes of H*W floats and interleaved scratch rows.</summary>
internal static unsafe class CpuDwConvTranspose
{
    private const int L = CpuDwConvMicro.Lanes;

    /// <summary>Whether the vector path applies: AVX present and all 8 planes given.</summary>
    internal static bool Applies(nint* planes)
    {
        if (!Avx.IsSupported) return false;
        for (int k = 0; k < L; k++)
            if (planes[k] == 0) return false;
        return true;
    }

    /// <summary>dst[r * rowStride + offset + q * 8 + k] = planes[k][r * W + q] for every pixel; the caller has
    /// cleared the rest of dst.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Pack(int h, int w, nint* planes, float* dst, int rowStride, int offset)
    {
        int hw = h * w, p = 0;
        for (; p + L <= hw; p += L)
        {
            Transpose(
                Vector256.Load((float*)planes[0] + p), Vector256.Load((float*)planes[1] + p),
                Vector256.Load((float*)planes[2] + p), Vector256.Load((float*)planes[3] + p),
                Vector256.Load((float*)planes[4] + p), Vector256.Load((float*)planes[5] + p),
                Vector256.Load((float*)planes[6] + p), Vector256.Load((float*)planes[7] + p),
                out var o0, out var o1, out var o2, out var o3, out var o4, out var o5, out var o6, out var o7);
            int r = p / w, q = p - r * w;
            Put(o0); Put(o1); Put(o2); Put(o3); Put(o4); Put(o5); Put(o6); Put(o7);

            void Put(Vector256<float> v)
            {
                v.Store(dst + (nint)r * rowStride + offset + q * L);
                if (++q == w) { q = 0; r++; }
            }
        }
        for (; p < hw; p++)
        {
            int r = p / w, q = p - r * w;
            float* d = dst + (nint)r * rowStride + offset + q * L;
            for (int k = 0; k < L; k++) d[k] = ((float*)planes[k])[p];
        }
    }

    /// <summary>planes[k][p] = (or +=) src[p * 8 + k] for every pixel p of H*W (src rows are exactly W*8 floats
    /// in the interleaved layout, so the pixels are contiguous).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Unpack(int hw, float* src, nint* planes, bool add)
    {
        int p = 0;
        for (; p + L <= hw; p += L)
        {
            float* s = src + (nint)p * L;
            Transpose(
                Vector256.Load(s), Vector256.Load(s + 8), Vector256.Load(s + 16), Vector256.Load(s + 24),
                Vector256.Load(s + 32), Vector256.Load(s + 40), Vector256.Load(s + 48), Vector256.Load(s + 56),
                out var o0, out var o1, out var o2, out var o3, out var o4, out var o5, out var o6, out var o7);
            Put(0, o0); Put(1, o1); Put(2, o2); Put(3, o3); Put(4, o4); Put(5, o5); Put(6, o6); Put(7, o7);

            void Put(int k, Vector256<float> v)
            {
                float* d = (float*)planes[k] + p;
                (add ? Vector256.Load(d) + v : v).Store(d);
            }
        }
        for (; p < hw; p++)
            for (int k = 0; k < L; k++)
            {
                float* d = (float*)planes[k] + p;
                *d = add ? *d + src[(nint)p * L + k] : src[(nint)p * L + k];
            }
    }

    /// <summary>Standard AVX 8x8 transpose: out row j = lane j of every input row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2,
        Vector256<float> r3, Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7,
        out Vector256<float> o0, out Vector256<float> o1, out Vector256<float> o2, out Vector256<float> o3,
        out Vector256<float> o4, out Vector256<float> o5, out Vector256<float> o6, out Vector256<float> o7)
    {
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44);
        var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44);
        var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44);
        var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44);
        var s7 = Avx.Shuffle(t5, t7, 0xEE);
        o0 = Avx.Permute2x128(s0, s4, 0x20);
        o1 = Avx.Permute2x128(s1, s5, 0x20);
        o2 = Avx.Permute2x128(s2, s6, 0x20);
        o3 = Avx.Permute2x128(s3, s7, 0x20);
        o4 = Avx.Permute2x128(s0, s4, 0x31);
        o5 = Avx.Permute2x128(s1, s5, 0x31);
        o6 = Avx.Permute2x128(s2, s6, 0x31);
        o7 = Avx.Permute2x128(s3, s7, 0x31);
    }
}
