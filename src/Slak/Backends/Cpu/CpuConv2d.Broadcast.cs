// The micro-kernel of the direct patchify convolution (CpuConv2d.Direct.cs): a small GEMM that needs no packing,
// C[r, l] = init[r] + sum_j A[r*ars + j*ajs] * B[j*ldb + l], with the lanes l of C and B contiguous (Vector512, the
// caller pads them to a multiple of 16) and A read one scalar at a time as a broadcast at any two strides, so that
// the weight (Cout, Cin*Kh*Kw) serves as A both as it is (forward) and transposed (input gradient), and a (Cout,
// pixels) block of dy serves as A for the weight gradient. A tile of up to 4 rows x 4 vectors keeps its 16
// accumulators in registers (the row and vector counts are JIT-time constants through the type arguments, so unused
// accumulators vanish); per step of j it loads up to 4 vectors of B and broadcasts up to 4 values of A for up to 16
// FMAs. Every element of C is one chain of FMAs in j order: the result depends on nothing but the operands.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

/// <summary>Compile-time count (rows or vectors) of a tile of <see cref="CpuConv2d"/>'s broadcast micro-kernel.</summary>
internal interface IConvTileCount
{
    static abstract int N { get; }
}

internal struct ConvT1 : IConvTileCount { public static int N => 1; }
internal struct ConvT2 : IConvTileCount { public static int N => 2; }
internal struct ConvT3 : IConvTileCount { public static int N => 3; }
internal struct ConvT4 : IConvTileCount { public static int N => 4; }

internal static partial class CpuConv2d
{
    /// <summary>C (rows x lanes, row stride ldc) = init + A (rows x depth, strides ars/ajs) * B (depth x lanes, row
    /// stride ldb). <paramref name="lanes"/> must be a multiple of 16. init: C's old content when
    /// <paramref name="accumulate"/>, else rowInit[r] on row r when <paramref name="rowInit"/> is not null, else 0.</summary>
    private static unsafe void BroadcastGemm(int rows, int lanes, int depth, float* a, int ars, int ajs, float* b,
        int ldb, float* c, int ldc, float* rowInit, bool accumulate)
    {
        int vectors = lanes / 16;
        for (int r = 0; r < rows; r += 4)
        {
            int rr = Math.Min(4, rows - r);
            float* ar = a + (long)r * ars;
            float* cr = c + (long)r * ldc;
            float* ir = rowInit == null ? null : rowInit + r;
            for (int v = 0; v < vectors; v += 4)
            {
                int vv = Math.Min(4, vectors - v);
                float* bv = b + v * 16, cv = cr + v * 16;
                switch (rr)
                {
                    case 4: Rows<ConvT4>(vv, depth, ar, ars, ajs, bv, ldb, cv, ldc, ir, accumulate); break;
                    case 3: Rows<ConvT3>(vv, depth, ar, ars, ajs, bv, ldb, cv, ldc, ir, accumulate); break;
                    case 2: Rows<ConvT2>(vv, depth, ar, ars, ajs, bv, ldb, cv, ldc, ir, accumulate); break;
                    default: Rows<ConvT1>(vv, depth, ar, ars, ajs, bv, ldb, cv, ldc, ir, accumulate); break;
                }
            }
        }
    }

    private static unsafe void Rows<TR>(int vectors, int depth, float* a, int ars, int ajs, float* b, int ldb,
        float* c, int ldc, float* rowInit, bool accumulate) where TR : struct, IConvTileCount
    {
        switch (vectors)
        {
            case 4: Tile<TR, ConvT4>(depth, a, ars, ajs, b, ldb, c, ldc, rowInit, accumulate); break;
            case 3: Tile<TR, ConvT3>(depth, a, ars, ajs, b, ldb, c, ldc, rowInit, accumulate); break;
            case 2: Tile<TR, ConvT2>(depth, a, ars, ajs, b, ldb, c, ldc, rowInit, accumulate); break;
            default: Tile<TR, ConvT1>(depth, a, ars, ajs, b, ldb, c, ldc, rowInit, accumulate); break;
        }
    }

    // One tile: TR.N rows x TV.N vectors of C.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile<TR, TV>(int depth, float* a, int ars, int ajs, float* b, int ldb, float* c, int ldc,
        float* rowInit, bool accumulate) where TR : struct, IConvTileCount where TV : struct, IConvTileCount
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        if (accumulate)
        {
            c00 = Vector512.Load(c + 0 * (long)ldc + 0);
            if (TV.N > 1) c01 = Vector512.Load(c + 0 * (long)ldc + 16);
            if (TV.N > 2) c02 = Vector512.Load(c + 0 * (long)ldc + 32);
            if (TV.N > 3) c03 = Vector512.Load(c + 0 * (long)ldc + 48);
            if (TR.N > 1) c10 = Vector512.Load(c + 1 * (long)ldc + 0);
            if (TR.N > 1 && TV.N > 1) c11 = Vector512.Load(c + 1 * (long)ldc + 16);
            if (TR.N > 1 && TV.N > 2) c12 = Vector512.Load(c + 1 * (long)ldc + 32);
            if (TR.N > 1 && TV.N > 3) c13 = Vector512.Load(c + 1 * (long)ldc + 48);
            if (TR.N > 2) c20 = Vector512.Load(c + 2 * (long)ldc + 0);
            if (TR.N > 2 && TV.N > 1) c21 = Vector512.Load(c + 2 * (long)ldc + 16);
            if (TR.N > 2 && TV.N > 2) c22 = Vector512.Load(c + 2 * (long)ldc + 32);
            if (TR.N > 2 && TV.N > 3) c23 = Vector512.Load(c + 2 * (long)ldc + 48);
            if (TR.N > 3) c30 = Vector512.Load(c + 3 * (long)ldc + 0);
            if (TR.N > 3 && TV.N > 1) c31 = Vector512.Load(c + 3 * (long)ldc + 16);
            if (TR.N > 3 && TV.N > 2) c32 = Vector512.Load(c + 3 * (long)ldc + 32);
            if (TR.N > 3 && TV.N > 3) c33 = Vector512.Load(c + 3 * (long)ldc + 48);
        }
        else if (rowInit != null)
        {
            { var v = Vector512.Create(rowInit[0]); c00 = v; if (TV.N > 1) c01 = v; if (TV.N > 2) c02 = v; if (TV.N > 3) c03 = v; }
            if (TR.N > 1) { var v = Vector512.Create(rowInit[1]); c10 = v; if (TV.N > 1) c11 = v; if (TV.N > 2) c12 = v; if (TV.N > 3) c13 = v; }
            if (TR.N > 2) { var v = Vector512.Create(rowInit[2]); c20 = v; if (TV.N > 1) c21 = v; if (TV.N > 2) c22 = v; if (TV.N > 3) c23 = v; }
            if (TR.N > 3) { var v = Vector512.Create(rowInit[3]); c30 = v; if (TV.N > 1) c31 = v; if (TV.N > 2) c32 = v; if (TV.N > 3) c33 = v; }
        }
        long ars2 = 2L * ars, ars3 = 3L * ars;
        for (int j = 0; j < depth; j++)
        {
            float* bj = b + (long)j * ldb;
            float* aj = a + (long)j * ajs;
            var b0 = Vector512.Load(bj);
            var b1 = TV.N > 1 ? Vector512.Load(bj + 16) : default;
            var b2 = TV.N > 2 ? Vector512.Load(bj + 32) : default;
            var b3 = TV.N > 3 ? Vector512.Load(bj + 48) : default;
            var a0 = Vector512.Create(aj[0]);
            c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            if (TV.N > 1) c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            if (TV.N > 2) c02 = Vector512.FusedMultiplyAdd(a0, b2, c02);
            if (TV.N > 3) c03 = Vector512.FusedMultiplyAdd(a0, b3, c03);
            if (TR.N > 1)
            {
                var a1 = Vector512.Create(aj[ars]);
                c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
                if (TV.N > 1) c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
                if (TV.N > 2) c12 = Vector512.FusedMultiplyAdd(a1, b2, c12);
                if (TV.N > 3) c13 = Vector512.FusedMultiplyAdd(a1, b3, c13);
            }
            if (TR.N > 2)
            {
                var a2 = Vector512.Create(aj[ars2]);
                c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
                if (TV.N > 1) c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
                if (TV.N > 2) c22 = Vector512.FusedMultiplyAdd(a2, b2, c22);
                if (TV.N > 3) c23 = Vector512.FusedMultiplyAdd(a2, b3, c23);
            }
            if (TR.N > 3)
            {
                var a3 = Vector512.Create(aj[ars3]);
                c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
                if (TV.N > 1) c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
                if (TV.N > 2) c32 = Vector512.FusedMultiplyAdd(a3, b2, c32);
                if (TV.N > 3) c33 = Vector512.FusedMultiplyAdd(a3, b3, c33);
            }
        }
        c00.Store(c + 0 * (long)ldc + 0);
        if (TV.N > 1) c01.Store(c + 0 * (long)ldc + 16);
        if (TV.N > 2) c02.Store(c + 0 * (long)ldc + 32);
        if (TV.N > 3) c03.Store(c + 0 * (long)ldc + 48);
        if (TR.N > 1) c10.Store(c + 1 * (long)ldc + 0);
        if (TR.N > 1 && TV.N > 1) c11.Store(c + 1 * (long)ldc + 16);
        if (TR.N > 1 && TV.N > 2) c12.Store(c + 1 * (long)ldc + 32);
        if (TR.N > 1 && TV.N > 3) c13.Store(c + 1 * (long)ldc + 48);
        if (TR.N > 2) c20.Store(c + 2 * (long)ldc + 0);
        if (TR.N > 2 && TV.N > 1) c21.Store(c + 2 * (long)ldc + 16);
        if (TR.N > 2 && TV.N > 2) c22.Store(c + 2 * (long)ldc + 32);
        if (TR.N > 2 && TV.N > 3) c23.Store(c + 2 * (long)ldc + 48);
        if (TR.N > 3) c30.Store(c + 3 * (long)ldc + 0);
        if (TR.N > 3 && TV.N > 1) c31.Store(c + 3 * (long)ldc + 16);
        if (TR.N > 3 && TV.N > 2) c32.Store(c + 3 * (long)ldc + 32);
        if (TR.N > 3 && TV.N > 3) c33.Store(c + 3 * (long)ldc + 48);

    }
}
