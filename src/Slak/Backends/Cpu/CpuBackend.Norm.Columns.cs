// Column sums for the CPU BatchNorm2d kernels. An NCHW batch is n rows (one per image) of C*H*W positions; BatchNorm's
// reductions are sums down each position's column, then over the H*W positions of each channel. Summing image rows
// into a double row per image group (the earlier scheme, kept as BatchNormColumnSums = false) reads and writes the
// double accumulators once per image: 4 bytes of input cost 16-32 bytes of accumulator traffic. Here a block of
// 2 * Vector<float>.Count adjacent positions is summed down all n images in registers (float64, images in order), so
// the inputs are read once and each accumulator is stored once. Threads take contiguous ranges of position blocks;
// every position's sum runs over the images in the same order whatever the split, so the bits do not depend on the
// thread count. A range that starts or ends inside a block (the channel ranges of CpuBackend.Norm.BatchChannels.cs) has
// its edge positions summed by an overlapping whole block, not one by one down the images.
using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Whether the BatchNorm2d reductions (training statistics, backward sums) sum down position columns in
    /// registers (the default) instead of adding image rows into per-group double rows. Internal so that the bench
    /// can time both.</summary>
    internal static bool BatchNormColumnSums { get; set; } = true;

    /// <summary>Position-wise sums over the n images of a row-major (n, row) pair, rented from the shared pool (the
    /// caller returns it): [j] = sum of a[img, j] and [row + j] = sum of a[img, j] * b[img, j], both in float64 (the
    /// products are exact), images summed in order. Parallel over position ranges when the tensor is at least
    /// <see cref="BatchNormSerialBelow"/> elements.</summary>
    private static double[] ColumnSums(Tensor a, Tensor b, int n, int row)
    {
        var sums = ArrayPool<double>.Shared.Rent(2 * row);
        int blk = 2 * Vector<float>.Count;
        int blocks = row / blk;
        long numel = (long)n * row;
        int parts = numel < BatchNormSerialBelow ? 1 : Math.Max(1, Math.Min(blocks, CpuParallel.Threads));
        CpuParallel.For(0, parts, part =>
        {
            int j0 = (int)((long)blocks * part / parts) * blk;
            int j1 = part == parts - 1 ? row : (int)((long)blocks * (part + 1) / parts) * blk;
            ColumnSumsRange(S(a), S(b), n, row, j0, j1, sums.AsSpan(0, row), sums.AsSpan(row, row));
        });
        return sums;
    }

    /// <summary><see cref="ColumnSums"/> for positions [j0, j1): whole blocks in registers on the grid of blocks that
    /// starts at position 0; a partial block at either end (a range that starts or ends between grid points, or a row
    /// that is not a whole number of blocks) as one whole block that overlaps it, computed into a buffer of which only
    /// the range's positions are kept (the neighbouring positions are read, never written); one by one only in rows
    /// shorter than a block. Each position's sums are the same whichever block computes them.</summary>
    private static void ColumnSumsRange(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int n, int row, int j0, int j1,
                                        Span<double> sumA, Span<double> sumAb)
    {
        int blk = 2 * Vector<float>.Count;
        ref float ra = ref MemoryMarshal.GetReference(a);
        ref float rb = ref MemoryMarshal.GetReference(b);
        if (row < blk || !BatchNormColumnEdgeBlocks)
        {
            int jb = row < blk ? j0 : j0 + (j1 - j0) / blk * blk;
            for (int jj = j0; jj + blk <= jb; jj += blk)
                ColumnBlock(ref ra, ref rb, n, row, jj, sumA.Slice(jj, blk), sumAb.Slice(jj, blk));
            ColumnSumsOneByOne(a, b, n, row, jb, j1, sumA, sumAb);
            return;
        }
        Span<double> bufA = stackalloc double[blk];
        Span<double> bufAb = stackalloc double[blk];
        int j = j0;
        while (j < j1)
        {
            int start = j / blk * blk;
            if (start == j && j + blk <= j1)
            {
                ColumnBlock(ref ra, ref rb, n, row, j, sumA.Slice(j, blk), sumAb.Slice(j, blk));
                j += blk;
                continue;
            }
            start = Math.Min(start, row - blk);
            int end = Math.Min(j1, start + blk);
            ColumnBlock(ref ra, ref rb, n, row, start, bufA, bufAb);
            bufA.Slice(j - start, end - j).CopyTo(sumA.Slice(j, end - j));
            bufAb.Slice(j - start, end - j).CopyTo(sumAb.Slice(j, end - j));
            j = end;
        }
    }

    /// <summary>Whether <see cref="ColumnSumsRange"/> computes the partial blocks at a range's ends as overlapping
    /// whole blocks (the default) instead of one position at a time down the images (the same bits). Internal so that the
    /// bench can time both.</summary>
    internal static bool BatchNormColumnEdgeBlocks { get; set; } = true;

    /// <summary>The sums of the block of 2 * Vector&lt;float&gt;.Count positions starting at <paramref name="j"/> down
    /// the n images, in registers (float64, images in order), stored to the first block of the two outputs.</summary>
    private static void ColumnBlock(ref float ra, ref float rb, int n, int row, int j, Span<double> sumA,
                                    Span<double> sumAb)
    {
        int w = Vector<float>.Count, h = Vector<double>.Count;
        Vector<double> s0 = default, s1 = default, s2 = default, s3 = default;
        Vector<double> p0 = default, p1 = default, p2 = default, p3 = default;
        nuint off = (nuint)j;
        for (int img = 0; img < n; img++, off += (nuint)row)
        {
            Vector.Widen(Vector.LoadUnsafe(ref ra, off), out var a0, out var a1);
            Vector.Widen(Vector.LoadUnsafe(ref ra, off + (nuint)w), out var a2, out var a3);
            Vector.Widen(Vector.LoadUnsafe(ref rb, off), out var b0, out var b1);
            Vector.Widen(Vector.LoadUnsafe(ref rb, off + (nuint)w), out var b2, out var b3);
            s0 += a0; s1 += a1; s2 += a2; s3 += a3;
            p0 += a0 * b0; p1 += a1 * b1; p2 += a2 * b2; p3 += a3 * b3;
        }
        s0.CopyTo(sumA); s1.CopyTo(sumA.Slice(h)); s2.CopyTo(sumA.Slice(2 * h)); s3.CopyTo(sumA.Slice(3 * h));
        p0.CopyTo(sumAb); p1.CopyTo(sumAb.Slice(h)); p2.CopyTo(sumAb.Slice(2 * h)); p3.CopyTo(sumAb.Slice(3 * h));
    }

    /// <summary>The column sums of positions [j0, j1), one position at a time down the images.</summary>
    private static void ColumnSumsOneByOne(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int n, int row, int j0, int j1,
                                           Span<double> sumA, Span<double> sumAb)
    {
        for (int j = j0; j < j1; j++)
        {
            double s = 0, p = 0;
            for (int img = 0, i = j; img < n; img++, i += row)
            {
                double v = a[i];
                s += v;
                p += v * b[i];
            }
            sumA[j] = s;
            sumAb[j] = p;
        }
    }
}
