// Patch moves of the 2 x 2 / stride 2 convolution on 4 x 4 maps (slak_nano's ds2, 62 -> 124, and slak_nano64's ds3,
// 124 -> 249): a channel's whole 4 x 4 plane is one Vector512, and its 4 windows are a fixed permutation of it. The
// general moves of CpuConv2d.Direct.cs handle such a plane as 4 window rows of 2 pixels each, with 8-byte stores and
// the loop and address work of 4 iterations: for a block of 16 images that took about as long as the block's GEMM.
// Here each plane is one load, one permutation and vector stores:
//   im2col  col[(ci*4 + kh*2 + kw), i*4 + oy*2 + ox] = x[n, ci, 2oy + kh, 2ox + kw]: the permuted plane's 4 blocks of
//           4 floats are the 4 k rows of the image's 4 pixels; 4 images at a time, a 4 x 4 transpose of 128-bit blocks
//           makes each k row one 16-float store;
//   col2im  the inverse, into dx (every dx entry lies under exactly one window, so the plane is stored whole);
//   patch rows (weight gradient) patches[i*4 + q, ci*4 + kk]: the permuted plane's 4 blocks are the 4 pixels' windows.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

internal static partial class CpuConv2d
{
    /// <summary>True (the default, unless SLAK_CONV2D_PLANE16=off): the direct path moves the patches of 2 x 2 / stride
    /// 2 windows on 4 x 4 maps plane by plane (this file); false: the general moves. Settable so that the bench
    /// (conv-patchify --compare plane16) can time both in one process and tests can run both.</summary>
    internal static bool Plane16Moves { get; set; } = Avx512F.IsSupported
        && Environment.GetEnvironmentVariable("SLAK_CONV2D_PLANE16") != "off";

    private static bool IsPlane16(Conv2dShape s) =>
        Plane16Moves && s.H == 4 && s.W == 4 && s.Kh == 2 && s.Kw == 2 && s.StrideH == 2 && s.StrideW == 2
        && s.PadH == 0 && s.PadW == 0;

    // Plane position of element d of the permuted plane: block kk = kh*2 + kw holds pixels q = oy*2 + ox, i.e.
    // (2oy + kh)*4 + 2ox + kw.
    private static readonly Vector512<int> KRowsOfPlane = Vector512.Create(0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15);

    // Its inverse: plane position p comes from element d of the permuted plane.
    private static readonly Vector512<int> PlaneOfKRows = Vector512.Create(0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15);

    // Block q = oy*2 + ox holds pixel q's window (kh*2 + kw order).
    private static readonly Vector512<int> WindowsOfPlane = Vector512.Create(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15);

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
