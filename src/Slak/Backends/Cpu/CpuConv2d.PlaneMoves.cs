// Patch moves of the 2 x 2 / stride 2 convolution on 4 x 4 and 8 x 8 maps, plane by plane (slak_nano's ds1 and ds2,
// slak_nano64's ds2 and ds3). The general moves of CpuConv2d.Direct.cs walk a channel's plane window row by window row
// (2 or 4 output pixels each) with 8- or 16-byte stores and the loop and address work of 4 or 8 iterations: on 4 x 4
// maps, for a block of 16 images, that took about as long as the block's GEMM. Here a whole plane is moved at once:
//  - 4 x 4 (16 floats, one Vector512): its 4 windows are a fixed permutation of it.
//    im2col  col[(ci*4 + kh*2 + kw), i*4 + oy*2 + ox] = x[n, ci, 2oy + kh, 2ox + kw]: the permuted plane's 4 blocks
//            of 4 floats are the 4 k rows of the image's 4 pixels; 4 images at a time, a 4 x 4 transpose of 128-bit
//            blocks makes each k row one 16-float store;
//    col2im  the inverse, into dx (every dx entry lies under exactly one window, so the plane is stored whole);
//    patch rows (weight gradient) patches[i*4 + q, ci*4 + kk]: the permuted plane's 4 blocks are the 4 pixels'
//            windows.
//  - 8 x 8 (64 floats, 4 vectors of two rows each): each of the 4 k rows of an image is one 16-float vector (its 16
//    pixels); two-source permutations pick, per kh, both kw's values of two row pairs, and 128-bit block shuffles put
//    the halves together (and the inverse for col2im). The weight gradient's patch rows keep the general moves there
//    (16-byte stores per pixel either way).
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

internal static partial class CpuConv2d
{
    /// <summary>True (the default, unless SLAK_CONV2D_PLANE_MOVES=off): the direct path moves the patches of 2 x 2 /
    /// stride 2 windows on 4 x 4 maps plane by plane (this file); false: the general moves. Settable so that the bench
    /// (conv-patchify --compare plane-moves) can time both in one process and tests can run both.</summary>
    internal static bool PlaneMoves { get; set; } = Avx512F.IsSupported
        && Environment.GetEnvironmentVariable("SLAK_CONV2D_PLANE_MOVES") != "off";

    // 4 or 8 where the plane moves apply (2 x 2 / stride 2 windows on 4 x 4 or 8 x 8 maps), else 0.
    private static int PlaneSide(Conv2dShape s) =>
        PlaneMoves && s.H == s.W && s.H is 4 or 8 && s.Kh == 2 && s.Kw == 2 && s.StrideH == 2 && s.StrideW == 2
        && s.PadH == 0 && s.PadW == 0 ? s.H : 0;

    // Plane position of element d of the permuted plane: block kk = kh*2 + kw holds pixels q = oy*2 + ox, i.e.
    // (2oy + kh)*4 + 2ox + kw.
    private static readonly Vector512<int> KRowsOfPlane = Vector512.Create(
        0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15);

    // Its inverse: plane position p comes from element d of the permuted plane.
    private static readonly Vector512<int> PlaneOfKRows = Vector512.Create(
        0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15);

    // Block q = oy*2 + ox holds pixel q's window (kh*2 + kw order).
    private static readonly Vector512<int> WindowsOfPlane = Vector512.Create(
        0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15);

    /// <summary><see cref="Im2ColBlock"/> for 2 x 2 windows on 4 x 4 maps (P = 4).</summary>
    private static unsafe void Im2ColPlanes16(Conv2dShape s, float* x, int n0, int count, float* col, int ldc)
    {
        var perm = KRowsOfPlane;
        int i = 0;
        for (; i + 4 <= count; i += 4)
        {
            float* img = x + (long)(n0 + i) * s.Cin * 16;
            long imgStride = (long)s.Cin * 16;
            for (int ci = 0; ci < s.Cin; ci++)
            {
                float* pl = img + ci * 16;
                var a0 = Vector512.Shuffle(Vector512.Load(pl), perm);
                var a1 = Vector512.Shuffle(Vector512.Load(pl + imgStride), perm);
                var a2 = Vector512.Shuffle(Vector512.Load(pl + 2 * imgStride), perm);
                var a3 = Vector512.Shuffle(Vector512.Load(pl + 3 * imgStride), perm);
                var (k0, k1, k2, k3) = TransposeBlocks(a0, a1, a2, a3);
                float* dst = col + (long)(ci * 4) * ldc + i * 4;
                k0.Store(dst);
                k1.Store(dst + ldc);
                k2.Store(dst + 2L * ldc);
                k3.Store(dst + 3L * ldc);
            }
        }
        for (; i < count; i++)
        {
            float* img = x + (long)(n0 + i) * s.Cin * 16;
            for (int ci = 0; ci < s.Cin; ci++)
            {
                var a = Vector512.Shuffle(Vector512.Load(img + ci * 16), perm);
                float* dst = col + (long)(ci * 4) * ldc + i * 4;
                a.GetLower().GetLower().Store(dst);
                a.GetLower().GetUpper().Store(dst + ldc);
                a.GetUpper().GetLower().Store(dst + 2L * ldc);
                a.GetUpper().GetUpper().Store(dst + 3L * ldc);
            }
        }
        int used = count * 4, ckk = s.Cin * 4;
        if (used < ldc)
            for (int k = 0; k < ckk; k++) new Span<float>(col + (long)k * ldc + used, ldc - used).Clear();
    }

    /// <summary><see cref="Col2ImBlock"/> for 2 x 2 windows on 4 x 4 maps (P = 4).</summary>
    private static unsafe void Col2ImPlanes16(Conv2dShape s, float* dx, int n0, int count, float* col, int ldc)
    {
        var perm = PlaneOfKRows;
        int i = 0;
        for (; i + 4 <= count; i += 4)
        {
            float* img = dx + (long)(n0 + i) * s.Cin * 16;
            long imgStride = (long)s.Cin * 16;
            for (int ci = 0; ci < s.Cin; ci++)
            {
                float* src = col + (long)(ci * 4) * ldc + i * 4;
                // Rows k of 4 images -> per image its 4 k blocks (the block transpose is its own inverse).
                var (a0, a1, a2, a3) = TransposeBlocks(Vector512.Load(src), Vector512.Load(src + ldc),
                    Vector512.Load(src + 2L * ldc), Vector512.Load(src + 3L * ldc));
                float* pl = img + ci * 16;
                Vector512.Shuffle(a0, perm).Store(pl);
                Vector512.Shuffle(a1, perm).Store(pl + imgStride);
                Vector512.Shuffle(a2, perm).Store(pl + 2 * imgStride);
                Vector512.Shuffle(a3, perm).Store(pl + 3 * imgStride);
            }
        }
        for (; i < count; i++)
        {
            float* img = dx + (long)(n0 + i) * s.Cin * 16;
            for (int ci = 0; ci < s.Cin; ci++)
            {
                float* src = col + (long)(ci * 4) * ldc + i * 4;
                var a = Vector512.Create(
                    Vector256.Create(Vector128.Load(src), Vector128.Load(src + ldc)),
                    Vector256.Create(Vector128.Load(src + 2L * ldc), Vector128.Load(src + 3L * ldc)));
                Vector512.Shuffle(a, perm).Store(img + ci * 16);
            }
        }
    }

    /// <summary><see cref="PatchRows"/> for 2 x 2 windows on 4 x 4 maps (P = 4): per image and channel, one permuted
    /// plane gives the 4 pixels' windows.</summary>
    private static unsafe void PatchRowsPlanes16(Conv2dShape s, float* x, int n0, int count, float* patches, int ld)
    {
        var perm = WindowsOfPlane;
        for (int i = 0; i < count; i++)
        {
            float* img = x + (long)(n0 + i) * s.Cin * 16;
            float* row = patches + (long)(i * 4) * ld;
            for (int ci = 0; ci < s.Cin; ci++)
            {
                var a = Vector512.Shuffle(Vector512.Load(img + ci * 16), perm);
                float* dst = row + ci * 4;
                a.GetLower().GetLower().Store(dst);
                a.GetLower().GetUpper().Store(dst + ld);
                a.GetUpper().GetLower().Store(dst + 2L * ld);
                a.GetUpper().GetUpper().Store(dst + 3L * ld);
            }
        }
    }

    // 8 x 8 planes. Table t of a two-source permutation is row pair t (rows 2oy, 2oy + 1 of a pair of output rows);
    // element kh*8 + 2ox + kw of row pair oy is x[2oy + kh, 2ox + kw]. For one kh: [kw = 0: pair 0's 4 pixels, pair 1's
    // 4 pixels, kw = 1: the same].
    private static readonly Vector512<int> PairsKh0 = Vector512.Create(
        0, 2, 4, 6, 16, 18, 20, 22, 1, 3, 5, 7, 17, 19, 21, 23);
    private static readonly Vector512<int> PairsKh1 = Vector512.Create(
        8, 10, 12, 14, 24, 26, 28, 30, 9, 11, 13, 15, 25, 27, 29, 31);

    // The inverse: row pair 0 (or 1) of two output rows from table kh = [kw = 0: 8 pixels, kw = 1: 8 pixels].
    private static readonly Vector512<int> FirstPair = Vector512.Create(
        0, 8, 1, 9, 2, 10, 3, 11, 16, 24, 17, 25, 18, 26, 19, 27);
    private static readonly Vector512<int> SecondPair = Vector512.Create(
        4, 12, 5, 13, 6, 14, 7, 15, 20, 28, 21, 29, 22, 30, 23, 31);

    /// <summary><see cref="Im2ColBlock"/> for 2 x 2 windows on 8 x 8 maps (P = 16).</summary>
    private static unsafe void Im2ColPlanes64(Conv2dShape s, float* x, int n0, int count, float* col, int ldc)
    {
        var kh0 = PairsKh0;
        var kh1 = PairsKh1;
        for (int i = 0; i < count; i++)
        {
            float* img = x + (long)(n0 + i) * s.Cin * 64;
            for (int ci = 0; ci < s.Cin; ci++)
            {
                float* pl = img + ci * 64;
                var r0 = Vector512.Load(pl);
                var r1 = Vector512.Load(pl + 16);
                var r2 = Vector512.Load(pl + 32);
                var r3 = Vector512.Load(pl + 48);
                var u0 = Avx512F.PermuteVar16x32x2(r0, kh0, r1);  // kh 0, output rows 0-1: kw 0 | kw 1
                var v0 = Avx512F.PermuteVar16x32x2(r2, kh0, r3);  // kh 0, output rows 2-3
                var u1 = Avx512F.PermuteVar16x32x2(r0, kh1, r1);
                var v1 = Avx512F.PermuteVar16x32x2(r2, kh1, r3);
                float* dst = col + (long)(ci * 4) * ldc + i * 16;
                Avx512F.Shuffle4x128(u0, v0, 0x44).Store(dst);             // (kh 0, kw 0)
                Avx512F.Shuffle4x128(u0, v0, 0xEE).Store(dst + ldc);       // (kh 0, kw 1)
                Avx512F.Shuffle4x128(u1, v1, 0x44).Store(dst + 2L * ldc);  // (kh 1, kw 0)
                Avx512F.Shuffle4x128(u1, v1, 0xEE).Store(dst + 3L * ldc);  // (kh 1, kw 1)
            }
        }
        int used = count * 16, ckk = s.Cin * 4;
        if (used < ldc)
            for (int k = 0; k < ckk; k++) new Span<float>(col + (long)k * ldc + used, ldc - used).Clear();
    }

    /// <summary><see cref="Col2ImBlock"/> for 2 x 2 windows on 8 x 8 maps (P = 16).</summary>
    private static unsafe void Col2ImPlanes64(Conv2dShape s, float* dx, int n0, int count, float* col, int ldc)
    {
        var first = FirstPair;
        var second = SecondPair;
        for (int i = 0; i < count; i++)
        {
            float* img = dx + (long)(n0 + i) * s.Cin * 64;
            for (int ci = 0; ci < s.Cin; ci++)
            {
                float* src = col + (long)(ci * 4) * ldc + i * 16;
                var k00 = Vector512.Load(src);
                var k01 = Vector512.Load(src + ldc);
                var k10 = Vector512.Load(src + 2L * ldc);
                var k11 = Vector512.Load(src + 3L * ldc);
                var u0 = Avx512F.Shuffle4x128(k00, k01, 0x44);  // kh 0, output rows 0-1: kw 0 | kw 1
                var v0 = Avx512F.Shuffle4x128(k00, k01, 0xEE);  // kh 0, output rows 2-3
                var u1 = Avx512F.Shuffle4x128(k10, k11, 0x44);
                var v1 = Avx512F.Shuffle4x128(k10, k11, 0xEE);
                float* pl = img + ci * 64;
                Avx512F.PermuteVar16x32x2(u0, first, u1).Store(pl);
                Avx512F.PermuteVar16x32x2(u0, second, u1).Store(pl + 16);
                Avx512F.PermuteVar16x32x2(v0, first, v1).Store(pl + 32);
                Avx512F.PermuteVar16x32x2(v0, second, v1).Store(pl + 48);
            }
        }
    }

    // A 4 x 4 transpose of 128-bit blocks: result j holds block j of a0, a1, a2, a3 in that order.
    private static (Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>) TransposeBlocks(
        Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
    {
        var t0 = Avx512F.Shuffle4x128(a0, a1, 0x44);  // a0.b0 a0.b1 a1.b0 a1.b1
        var t1 = Avx512F.Shuffle4x128(a2, a3, 0x44);  // a2.b0 a2.b1 a3.b0 a3.b1
        var t2 = Avx512F.Shuffle4x128(a0, a1, 0xEE);  // a0.b2 a0.b3 a1.b2 a1.b3
        var t3 = Avx512F.Shuffle4x128(a2, a3, 0xEE);  // a2.b2 a2.b3 a3.b2 a3.b3
        return (Avx512F.Shuffle4x128(t0, t1, 0x88), Avx512F.Shuffle4x128(t0, t1, 0xDD),
            Avx512F.Shuffle4x128(t2, t3, 0x88), Avx512F.Shuffle4x128(t2, t3, 0xDD));
    }
}
