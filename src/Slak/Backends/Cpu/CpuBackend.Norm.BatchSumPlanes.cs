// Output passes of the fused BatchNorm sum (CpuBackend.Norm.BatchSum.cs) one channel plane at a time on maps of whole
// lines (backward: 4x4, 8x8, 16x16; forward: 4x4 only, where it measured faster). The wide kernels
// (CpuBackend.Norm.BatchSumWide.cs) are called once per image and channel: at 4x4 (slak_nano's stage 2, slak_nano64's
// stage 3) that call writes one vector, after slicing four or seven spans and broadcasting nine scalars. These kernels
// take one channel of the part and walk its n images inside, with the channel's scalars broadcast once and the image
// stride a pointer step. The values are the wide kernels' operations in the same order: the same bits.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether the three-branch wide output passes run one channel plane a call (the default: the backward
    /// on maps of whole lines, the forward below 8x8; environment variable SLAK_BN_SUM_PLANES=0 turns it off)
    /// instead of one image and channel a call (the same bits). Internal so that the bench and tests can compare
    /// both.</summary>
    internal static bool BatchNormSumPlanes { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_BN_SUM_PLANES") != "0";

    /// <summary><see cref="CenterScaleShiftSum3"/> over channel positions [p, p + hw) of all n images (hw a multiple of
    /// 16, image stride row), the channel's scalars at index p of the rows.</summary>
    private static void CenterScaleShiftSum3Plane(ReadOnlySpan<float> x0, ReadOnlySpan<float> x1,
        ReadOnlySpan<float> x2, float[][] means, float[][] scales, float[][] shifts, int p, int n, int row, int hw, Span<float> y)
    {
        if ((long)(n - 1) * row + p + hw > Math.Min(Math.Min(x0.Length, x1.Length), Math.Min(x2.Length, y.Length)))
            throw new ArgumentException("plane past the end of a tensor");
        ref float r0 = ref MemoryMarshal.GetReference(x0), r1 = ref MemoryMarshal.GetReference(x1);
        ref float r2 = ref MemoryMarshal.GetReference(x2), ry = ref MemoryMarshal.GetReference(y);
        Vector512<float> vm0 = Vector512.Create(means[0][p]), vs0 = Vector512.Create(scales[0][p]);
        Vector512<float> vh0 = Vector512.Create(shifts[0][p]), vm1 = Vector512.Create(means[1][p]);
        Vector512<float> vs1 = Vector512.Create(scales[1][p]), vh1 = Vector512.Create(shifts[1][p]);
        Vector512<float> vm2 = Vector512.Create(means[2][p]), vs2 = Vector512.Create(scales[2][p]);
        Vector512<float> vh2 = Vector512.Create(shifts[2][p]);
        for (nuint img = 0, start = (nuint)p; img < (nuint)n; img++, start += (nuint)row)
            for (nuint at = start, end = start + (nuint)hw; at < end; at += WideLine)
            {
                var t0 = (Vector512.LoadUnsafe(ref r0, at) - vm0) * vs0 + vh0;
                var t1 = (Vector512.LoadUnsafe(ref r1, at) - vm1) * vs1 + vh1;
                var t2 = (Vector512.LoadUnsafe(ref r2, at) - vm2) * vs2 + vh2;
                (t0 + t1 + t2).StoreUnsafe(ref ry, at);
            }
    }

    /// <summary><see cref="BatchNormDx3"/> over channel positions [p, p + hw) of all n images (hw a multiple of 16,
    /// image stride row), the channel's k, a, b at index p of the rows.</summary>
    private static void BatchNormDx3Plane(ReadOnlySpan<float> dy, ReadOnlySpan<float> x0, ReadOnlySpan<float> x1,
        ReadOnlySpan<float> x2, float[][] kRows, float[][] aRows, float[][] bRows, int p, int n, int row, int hw,
        Span<float> dx0, Span<float> dx1, Span<float> dx2)
    {
        long last = (long)(n - 1) * row + p + hw;
        if (last > Math.Min(Math.Min(dy.Length, x0.Length), Math.Min(x1.Length, x2.Length))
            || last > Math.Min(dx0.Length, Math.Min(dx1.Length, dx2.Length)))
            throw new ArgumentException("plane past the end of a tensor");
        ref float rg = ref MemoryMarshal.GetReference(dy), r0 = ref MemoryMarshal.GetReference(x0);
        ref float r1 = ref MemoryMarshal.GetReference(x1), r2 = ref MemoryMarshal.GetReference(x2);
        ref float d0 = ref MemoryMarshal.GetReference(dx0), d1 = ref MemoryMarshal.GetReference(dx1);
        ref float d2 = ref MemoryMarshal.GetReference(dx2);
        Vector512<float> k0 = Vector512.Create(kRows[0][p]), a0 = Vector512.Create(aRows[0][p]);
        Vector512<float> b0 = Vector512.Create(bRows[0][p]), k1 = Vector512.Create(kRows[1][p]);
        Vector512<float> a1 = Vector512.Create(aRows[1][p]), b1 = Vector512.Create(bRows[1][p]);
        Vector512<float> k2 = Vector512.Create(kRows[2][p]), a2 = Vector512.Create(aRows[2][p]);
        Vector512<float> b2 = Vector512.Create(bRows[2][p]);
        for (nuint img = 0, start = (nuint)p; img < (nuint)n; img++, start += (nuint)row)
            for (nuint at = start, end = start + (nuint)hw; at < end; at += WideLine)
            {
                var g = Vector512.LoadUnsafe(ref rg, at);
                (g * k0 + b0 + Vector512.LoadUnsafe(ref r0, at) * a0).StoreUnsafe(ref d0, at);
                (g * k1 + b1 + Vector512.LoadUnsafe(ref r1, at) * a1).StoreUnsafe(ref d1, at);
                (g * k2 + b2 + Vector512.LoadUnsafe(ref r2, at) * a2).StoreUnsafe(ref d2, at);
            }
    }
}
