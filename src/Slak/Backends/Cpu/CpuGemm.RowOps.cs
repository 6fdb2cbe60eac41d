// Row loops of the GEMM epilogues and of the block MLP over narrow matrices: a bias added to every row of a block of C
// and the column sums of a block (the bias gradients). The MLP's rows are 31-249 floats, and one TensorPrimitives call
// per row (span checks, a vector loop of 1-15 iterations and a tail) cost 30-60 cycles per 31-float row: about a
// tenth of the forward product's own time per row at slak_nano's first stage. Here the bias (or the running sums)
// stays in registers, 64 columns at a time, and the rows stream past it with masked loads and stores at the ragged
// end. Every element is added in the same order as the per-row loop (c + b; acc + row, row after row), so the
// results are the same bits.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

/// <summary>Bias rows and column sums over row-major blocks (see the file comment).</summary>
internal static unsafe class CpuRowOps
{
    /// <summary>False (the default): the register loops of this file, and the block MLP's balanced blocks,
    /// whole-block GELU' and weights packed once per call (CpuMlp.cs), and the GEMM's row-major A read in place at
    /// k &lt;= 64 (CpuGemm.cs). True (SLAK_MLP_LEGACY=1): one TensorPrimitives call per row and the block
    /// partition before, for benchmarks comparing the two (bench mlp-step) and tests. Internal and settable.</summary>
    internal static bool Legacy { get; set; } = Environment.GetEnvironmentVariable("SLAK_MLP_LEGACY") == "1";

    private static bool Vectorized => !Legacy && Avx512F.IsSupported;

    /// <summary>c[i * ldc + j] += bias[j] for i in [0, rows), j in [0, cols).</summary>
    public static void AddBias(float* c, int ldc, int rows, int cols, float* bias)
    {
        if (!Vectorized)
        {
            var b = new ReadOnlySpan<float>(bias, cols);
            for (int i = 0; i < rows; i++)
            {
                var row = new Span<float>(c + (long)i * ldc, cols);
                TensorPrimitives.Add(row, b, row);
            }
            return;
        }
        for (int j0 = 0; j0 < cols; j0 += 64)
        {
            int w = Math.Min(64, cols - j0);
            var m0 = Mask(w); var m1 = Mask(w - 16); var m2 = Mask(w - 32); var m3 = Mask(w - 48);
            var b0 = Load(bias + j0, m0); var b1 = Load(bias + j0 + 16, m1);
            var b2 = Load(bias + j0 + 32, m2); var b3 = Load(bias + j0 + 48, m3);
            float* ci = c + j0;
            for (int i = 0; i < rows; i++, ci += ldc)
            {
                Avx512F.MaskStore(ci, m0, Load(ci, m0) + b0);
                if (w <= 16) continue;
                Avx512F.MaskStore(ci + 16, m1, Load(ci + 16, m1) + b1);
                if (w <= 32) continue;
                Avx512F.MaskStore(ci + 32, m2, Load(ci + 32, m2) + b2);
                if (w <= 48) continue;
                Avx512F.MaskStore(ci + 48, m3, Load(ci + 48, m3) + b3);
            }
        }
    }

    /// <summary>acc[j] += src[i * ld + j] for i = 0, 1, ..., rows - 1 in that order (float sums), j in [0,
    /// cols).</summary>
    public static void AccumulateColumns(float* src, int ld, int rows, int cols, float* acc)
    {
        if (!Vectorized)
        {
            var a = new Span<float>(acc, cols);
            for (int i = 0; i < rows; i++) TensorPrimitives.Add(a, new ReadOnlySpan<float>(src + (long)i * ld, cols), a);
            return;
        }
        for (int j0 = 0; j0 < cols; j0 += 64)
        {
            int w = Math.Min(64, cols - j0);
            var m0 = Mask(w); var m1 = Mask(w - 16); var m2 = Mask(w - 32); var m3 = Mask(w - 48);
            var s0 = Load(acc + j0, m0); var s1 = Load(acc + j0 + 16, m1);
            var s2 = Load(acc + j0 + 32, m2); var s3 = Load(acc + j0 + 48, m3);
            float* si = src + j0;
            // Masked-off lanes load zeros and stay zero; the four vectors are summed whatever w, which costs the
            // narrow rows (31 floats) nothing measurable and keeps the loop free of branches.
            for (int i = 0; i < rows; i++, si += ld)
            {
                s0 += Load(si, m0);
                s1 += Load(si + 16, m1);
                s2 += Load(si + 32, m2);
                s3 += Load(si + 48, m3);
            }
            Avx512F.MaskStore(acc + j0, m0, s0);
            Avx512F.MaskStore(acc + j0 + 16, m1, s1);
            Avx512F.MaskStore(acc + j0 + 32, m2, s2);
            Avx512F.MaskStore(acc + j0 + 48, m3, s3);
        }
    }

    // Lanes [0, count) set (none when count <= 0, all when count >= 16).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Mask(int count)
        => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    // A masked load never touches the masked-off lanes' memory (no fault past the end of a row or buffer).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load(float* p, Vector512<float> mask)
        => Avx512F.MaskLoad(p, mask, Vector512<float>.Zero);
}
