// Output passes of the fused BatchNorm sum (CpuBackend.Norm.BatchSum.cs) on maps smaller than a cache line (2x2,
// 1x1), one vector column at a time. The row kernels of CpuBackend.Norm.BatchSumSmallMaps.cs walk one image's range a
// call and load, for every vector of output, the nine per-position constants of the three branches besides the data
// (forward: 3 inputs + 9 rows a vector; backward: dy, 3 inputs + 9 rows), because a vector there spans several
// channels. The constants of a vector position are the same in every image, so these kernels swap the loops: for each
// vector of the part's range they load the nine constants once into registers and walk the n images down the column
// (image stride a pointer step), loading only the data. A range that is not a whole number of vectors ends with one
// vector over its last 16 positions (the overlapped positions computed again to the same values). Every value is the
// row kernels' operations in the same order: the same bits.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether the small-map output passes run one vector column over all images at a time with the constants
    /// in registers (the default; environment variable SLAK_BN_SUM_COLUMNS=0 turns it off) instead of one image's
    /// range a call (the same bits). Internal so that the bench and tests can compare both.</summary>
    internal static bool BatchNormSumSmallColumns { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_BN_SUM_COLUMNS") != "0";

    /// <summary>Whether a small-map part of <paramref name="len"/> positions takes the column kernels.</summary>
    private static bool UseBnSumColumns(int len) => BatchNormSumSmallColumns && len >= WideLine;

    private static bool RowsCover(float[][] rows, int end) => rows.Length == 3 && rows.All(r => r.Length >= end);

    /// <summary>y = ((x_0 - m_0) s_0 + h_0 + ((x_1 - m_1) s_1 + h_1)) + ((x_2 - m_2) s_2 + h_2) over positions
    /// [j0, j0 + len) of all n images (len at least one vector), the constants from the per-position rows.</summary>
    private static void CenterScaleShiftSum3Columns(ReadOnlySpan<float> x0, ReadOnlySpan<float> x1,
        ReadOnlySpan<float> x2, float[][] means, float[][] scales, float[][] shifts, int j0, int len, int n, int row,
        Span<float> y)
    {
        long last = (long)(n - 1) * row + j0 + len;
        if (len < WideLine || last > Math.Min(Math.Min(x0.Length, x1.Length), Math.Min(x2.Length, y.Length))
            || !RowsCover(means, j0 + len) || !RowsCover(scales, j0 + len) || !RowsCover(shifts, j0 + len))
            throw new ArgumentException("columns past the end of a tensor or row");
        ref float r0 = ref MemoryMarshal.GetReference(x0), r1 = ref MemoryMarshal.GetReference(x1);
        ref float r2 = ref MemoryMarshal.GetReference(x2), ry = ref MemoryMarshal.GetReference(y);
        for (int i = 0; i < len; i += WideLine)
        {
            int p = j0 + Math.Min(i, len - WideLine);
            var vm0 = Vector512.Create(means[0].AsSpan(p, WideLine));
            var vs0 = Vector512.Create(scales[0].AsSpan(p, WideLine));
            var vh0 = Vector512.Create(shifts[0].AsSpan(p, WideLine));
            var vm1 = Vector512.Create(means[1].AsSpan(p, WideLine));
            var vs1 = Vector512.Create(scales[1].AsSpan(p, WideLine));
            var vh1 = Vector512.Create(shifts[1].AsSpan(p, WideLine));
            var vm2 = Vector512.Create(means[2].AsSpan(p, WideLine));
            var vs2 = Vector512.Create(scales[2].AsSpan(p, WideLine));
            var vh2 = Vector512.Create(shifts[2].AsSpan(p, WideLine));
            for (nuint img = 0, at = (nuint)p; img < (nuint)n; img++, at += (nuint)row)
            {
                var t0 = (Vector512.LoadUnsafe(ref r0, at) - vm0) * vs0 + vh0;
                var t1 = (Vector512.LoadUnsafe(ref r1, at) - vm1) * vs1 + vh1;
                var t2 = (Vector512.LoadUnsafe(ref r2, at) - vm2) * vs2 + vh2;
                (t0 + t1 + t2).StoreUnsafe(ref ry, at);
            }
        }
    }

    /// <summary>dx_b = (dy k_b + b_b) + x_b a_b for the three branches over positions [j0, j0 + len) of all n images
    /// (len at least one vector; dy read once), the constants from the per-position rows.</summary>
    private static void BatchNormDx3Columns(ReadOnlySpan<float> dy, ReadOnlySpan<float> x0, ReadOnlySpan<float> x1,
        ReadOnlySpan<float> x2, float[][] kRows, float[][] aRows, float[][] bRows, int j0, int len, int n, int row,
        Span<float> dx0, Span<float> dx1, Span<float> dx2)
    {
        long last = (long)(n - 1) * row + j0 + len;
        if (len < WideLine || last > Math.Min(Math.Min(dy.Length, x0.Length), Math.Min(x1.Length, x2.Length))
            || last > Math.Min(dx0.Length, Math.Min(dx1.Length, dx2.Length))
            || !RowsCover(kRows, j0 + len) || !RowsCover(aRows, j0 + len) || !RowsCover(bRows, j0 + len))
            throw new ArgumentException("columns past the end of a tensor or row");
        ref float rg = ref MemoryMarshal.GetReference(dy), r0 = ref MemoryMarshal.GetReference(x0);
        ref float r1 = ref MemoryMarshal.GetReference(x1), r2 = ref MemoryMarshal.GetReference(x2);
        ref float d0 = ref MemoryMarshal.GetReference(dx0), d1 = ref MemoryMarshal.GetReference(dx1);
        ref float d2 = ref MemoryMarshal.GetReference(dx2);
        for (int i = 0; i < len; i += WideLine)
        {
            int p = j0 + Math.Min(i, len - WideLine);
            var k0 = Vector512.Create(kRows[0].AsSpan(p, WideLine));
            var a0 = Vector512.Create(aRows[0].AsSpan(p, WideLine));
            var b0 = Vector512.Create(bRows[0].AsSpan(p, WideLine));
            var k1 = Vector512.Create(kRows[1].AsSpan(p, WideLine));
            var a1 = Vector512.Create(aRows[1].AsSpan(p, WideLine));
            var b1 = Vector512.Create(bRows[1].AsSpan(p, WideLine));
            var k2 = Vector512.Create(kRows[2].AsSpan(p, WideLine));
            var a2 = Vector512.Create(aRows[2].AsSpan(p, WideLine));
            var b2 = Vector512.Create(bRows[2].AsSpan(p, WideLine));
            for (nuint img = 0, at = (nuint)p; img < (nuint)n; img++, at += (nuint)row)
            {
                var g = Vector512.LoadUnsafe(ref rg, at);
                (g * k0 + b0 + Vector512.LoadUnsafe(ref r0, at) * a0).StoreUnsafe(ref d0, at);
                (g * k1 + b1 + Vector512.LoadUnsafe(ref r1, at) * a1).StoreUnsafe(ref d1, at);
                (g * k2 + b2 + Vector512.LoadUnsafe(ref r2, at) * a2).StoreUnsafe(ref d2, at);
            }
        }
    }
}
