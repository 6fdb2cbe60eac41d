// LayerNorm fused with the NCHW -> NHWC permute of the SLaK block (IBackend.NormLayout.cs) on the CPU. The pixels (in
// NHWC order, across images) are split into row blocks over threads; a block walks its pixels in tiles of
// LnTile: the tile's C x LnTile sub-matrix of the input planes (unit-stride runs of up to LnTile floats per channel)
// is transposed into an L1-resident buffer of LnTile contiguous channel rows, and each row is normalised with SIMD
// straight into the NHWC output. Statistics are float64 (two passes over the cached row: sum, then centred squares).
// Backward does the same gather of x, computes each pixel's input-gradient row from the contiguous NHWC gradient row
// and scatters the tile back into the NCHW planes; the parameter gradients accumulate per block in float64 and are
// added in block order, so results depend only on the input and the thread count. The gather and the scatter cover a
// whole run with in-register transposes: 8 channels x 8 pixels (AVX) where the run has 8 pixels, else 4 x 4 (SSE, the
// runs of 4 of a 2 x 2 map), the last block of each direction overlapping the one before (C = 31 = 3 x 8 + 7); with
// SLAK_LAYOUT_TAIL_TRANSPOSE=0, 8 x 8 blocks on the multiples of 8 and the rest element by element. All are pure
// copies: the bits do not depend on the path.
using System.Buffers;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Pixels per transposed tile (one 64-byte run of a float plane).</summary>
    private const int LnTile = 16;

    /// <inheritdoc />
    public void LayerNormNchwToNhwc(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        int c = x.Size(1), hw = x.Size(2) * x.Size(3);
        if (UseImageGroups(hw))
        {
            LayerNormForwardImageGroups(x, weight, bias, eps, y, mean, rstd, nhwc: true);
            return;
        }
        if (UsePixelLanes(hw))
        {
            LayerNormForwardPixelLanes(x, weight, bias, eps, y, mean, rstd, nhwc: true);
            return;
        }
        int rows = checked(x.Size(0) * hw);
        CpuParallel.For(0, RowBlocks(rows, c), blk =>
        {
            var (r0, r1) = RowRange(blk, rows, c);
            var tile = ArrayPool<float>.Shared.Rent(LnTile * c);
            try
            {
                var w = S(weight); var b = S(bias);
                for (int q0 = r0; q0 < r1; q0 += LnTile)
                {
                    int t = Math.Min(LnTile, r1 - q0);
                    GatherPixelRows(S(x), c, hw, q0, t, tile);
                    for (int i = 0; i < t; i++)
                    {
                        int q = q0 + i;
                        var row = tile.AsSpan(i * c, c);
                        var (m, rs) = RowStatistics(row, eps);
                        S(mean)[q] = m;
                        S(rstd)[q] = rs;
                        NormalizeRow(row, m, rs, w, b, S(y).Slice(q * c, c));
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(tile);
            }
        });
    }

    /// <inheritdoc />
    public void LayerNormNchwToNhwcBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                            Tensor dx, Tensor dweight, Tensor dbias)
    {
        int c = x.Size(1), hw = x.Size(2) * x.Size(3);
        if (UseBackwardPixelLanes(hw, nhwc: true))
        {
            LayerNormBackwardLanes(x, weight, mean, rstd, dy, dx, dweight, dbias, nhwc: true);
            return;
        }
        int rows = checked(x.Size(0) * hw);
        int blocks = RowBlocks(rows, c);
        var partW = new double[blocks][];
        var partB = new double[blocks][];
        CpuParallel.For(0, blocks, blk =>
        {
            var (r0, r1) = RowRange(blk, rows, c);
            var tile = ArrayPool<float>.Shared.Rent(LnTile * c);
            var dtile = ArrayPool<float>.Shared.Rent(LnTile * c);
            var accW = new double[c];
            var accB = new double[c];
            try
            {
                var w = S(weight);
                Span<double> tileSa = stackalloc double[LnTile], tileSb = stackalloc double[LnTile];
                for (int q0 = r0; q0 < r1; q0 += LnTile)
                {
                    int t = Math.Min(LnTile, r1 - q0);
                    GatherPixelRows(S(x), c, hw, q0, t, tile);
                    bool tileSums = LayerNormLayoutOneRowPass && LayerNormLayoutTileSums;
                    if (tileSums)
                        LayerNormBackwardTileSums(tile, t, c, S(mean).Slice(q0, t), S(rstd).Slice(q0, t),
                            S(dy).Slice(q0 * c, t * c), w, accW, accB, tileSa, tileSb);
                    for (int i = 0; i < t; i++)
                    {
                        int q = q0 + i;
                        var xhat = tile.AsSpan(i * c, c);
                        var g = S(dy).Slice(q * c, c);
                        float rs = S(rstd)[q];
                        double sa, sb;
                        if (tileSums)
                            (sa, sb) = (tileSa[i], tileSb[i]);
                        else if (LayerNormLayoutOneRowPass)
                            (sa, sb) = LayerNormBackwardRowSums(xhat, S(mean)[q], rs, g, w, accW, accB);
                        else
                        {
                            CenterScaleRow(xhat, S(mean)[q], rs);
                            AddProductWiden(g, xhat, accW);
                            AddWiden(g, accB);
                            (sa, sb) = WeightedGradientSums(g, w, xhat);
                        }
                        // dx = rstd * (g*w - mean(g*w) - xhat * mean(g*w*xhat)), the means in float64.
                        LayerNormDxRow(g, w, xhat, (float)(sa / c), (float)(sb / c), rs, dtile.AsSpan(i * c, c));
                    }
                    ScatterPixelRows(dtile, c, hw, q0, t, S(dx));
                }
                partW[blk] = accW;
                partB[blk] = accB;
            }
            finally
            {
                ArrayPool<float>.Shared.Return(tile);
                ArrayPool<float>.Shared.Return(dtile);
            }
        });
        for (int j = 0; j < c; j++)
        {
            double sw = 0, sb = 0;
            for (int b = 0; b < blocks; b++) { sw += partW[b][j]; sb += partB[b][j]; }
            S(dweight)[j] = (float)sw;
            S(dbias)[j] = (float)sb;
        }
    }

    /// <summary>Whether the fused LayerNorm's backward makes one pass over each pixel's rows for xhat, the parameter
    /// gradients' float64 sums and the two row sums of dx (the default), instead of four (the same values, lane for
    /// lane). Internal so that the bench can time both.</summary>
    internal static bool LayerNormLayoutOneRowPass { get; set; } = true;

    /// <summary>Whether the one-row pass runs a whole tile's rows a channel vector at a time (the default: the
    /// parameter gradients' float64 sums of that vector stay in registers across the tile's pixels, each pixel's two
    /// row sums in a small array) instead of a row at a time. The same operations in the same order for every channel
    /// and every pixel, so the same bits. Internal so that the bench and the tests can compare both.</summary>
    internal static bool LayerNormLayoutTileSums { get; set; } = true;

    /// <summary><see cref="LayerNormBackwardRowSums"/> for the <paramref name="t"/> rows of a tile (row i of
    /// <paramref name="tile"/> and of <paramref name="g"/> is pixel i, mean m[i], 1/std rs[i]), channel vector by
    /// channel vector: accW/accB of a vector are loaded once per tile, and each pixel's (sum of g * w, sum of g * w *
    /// xhat) lands in sa[i], sb[i]. Every channel still adds its pixels in order and every pixel its channel vectors in
    /// order, with the same lane operations, so the results are those of the row-by-row pass bit for bit.</summary>
    private static void LayerNormBackwardTileSums(Span<float> tile, int t, int c, ReadOnlySpan<float> m,
        ReadOnlySpan<float> rs, ReadOnlySpan<float> g, ReadOnlySpan<float> wt, Span<double> accW, Span<double> accB,
        Span<double> sa, Span<double> sb)
    {
        int w = Vector<float>.Count;
        Span<Vector<double>> a = stackalloc Vector<double>[LnTile];
        Span<Vector<double>> b = stackalloc Vector<double>[LnTile];
        a[..t].Clear();
        b[..t].Clear();
        int i = 0;
        for (; i + w <= c; i += w)
            TileSumsVector(tile, t, c, i, m, rs, g, wt, accW, accB, a, b, default, false);
        if (i < c && c >= w && LayerNormLayoutVectorTails)
        {
            // The last whole vector of each row, its earlier lanes weighted by 0 (as the row-by-row pass does).
            var fresh = Vector.GreaterThanOrEqual(LaneIndex, new Vector<int>(w - (c - i)));
            TileSumsVector(tile, t, c, c - w, m, rs, g, wt, accW, accB, a, b, fresh, true);
            i = c;
        }
        for (int p = 0; p < t; p++)
        {
            double sap = Vector.Sum(a[p]), sbp = Vector.Sum(b[p]);
            var row = tile.Slice(p * c, c);
            var gp = g.Slice(p * c, c);
            for (int j = i; j < c; j++)
            {
                float xh = (row[j] - m[p]) * rs[p];
                row[j] = xh;
                accW[j] += (double)gp[j] * xh;
                accB[j] += gp[j];
                double gw = gp[j] * wt[j];
                sap += gw;
                sbp += gw * xh;
            }
            sa[p] = sap;
            sb[p] = sbp;
        }
    }

    /// <summary>The channels [o, o + vector width) of every row of a tile (see
    /// <see cref="LayerNormBackwardTileSums"/>); with <paramref name="tail"/>, only the lanes in
    /// <paramref name="fresh"/> are new (the others already hold xhat and enter the sums with g = 0).</summary>
    private static void TileSumsVector(Span<float> tile, int t, int c, int o, ReadOnlySpan<float> m,
        ReadOnlySpan<float> rs, ReadOnlySpan<float> g, ReadOnlySpan<float> wt, Span<double> accW, Span<double> accB,
        Span<Vector<double>> a, Span<Vector<double>> b, Vector<int> fresh, bool tail)
    {
        int w = Vector<float>.Count, h = Vector<double>.Count;
        var w0 = new Vector<double>(accW.Slice(o, h));
        var w1 = new Vector<double>(accW.Slice(o + h, h));
        var b0 = new Vector<double>(accB.Slice(o, h));
        var b1 = new Vector<double>(accB.Slice(o + h, h));
        var wv = new Vector<float>(wt.Slice(o, w));
        for (int p = 0; p < t; p++)
        {
            var row = tile.Slice(p * c + o, w);
            var old = new Vector<float>(row);
            var xh = (old - new Vector<float>(m[p])) * new Vector<float>(rs[p]);
            var gv = new Vector<float>(g.Slice(p * c + o, w));
            if (tail)
            {
                xh = Vector.ConditionalSelect(fresh, xh, old);
                gv = Vector.ConditionalSelect(fresh, gv, Vector<float>.Zero);
            }
            xh.CopyTo(row);
            Vector.Widen(gv, out var gl, out var gh);
            Vector.Widen(xh, out var xl, out var xu);
            w0 += gl * xl;
            w1 += gh * xu;
            b0 += gl;
            b1 += gh;
            Vector.Widen(gv * wv, out var wl, out var wu);
            a[p] += wl + wu;
            b[p] += wl * xl + wu * xu;
        }
        w0.CopyTo(accW.Slice(o, h));
        w1.CopyTo(accW.Slice(o + h, h));
        b0.CopyTo(accB.Slice(o, h));
        b1.CopyTo(accB.Slice(o + h, h));
    }

    /// <summary>One pass over a pixel's rows: row = xhat = (row - m) * rs in place (float); accW += g * xhat and
    /// accB += g (float64); returns (sum of g * w, sum of g * w * xhat) in float64, g * w rounded to float. The same
    /// operations, lane for lane and in the same order, as <see cref="CenterScaleRow"/>, <see cref="AddProductWiden"/>,
    /// <see cref="AddWiden"/> and <see cref="WeightedGradientSums"/> in turn, so the bits are theirs (with
    /// <see cref="LayerNormLayoutVectorTails"/> off; on, a row's last channels are summed in vector lanes).</summary>
    private static (double Sa, double Sb) LayerNormBackwardRowSums(Span<float> row, float m, float rs, ReadOnlySpan<float> g,
        ReadOnlySpan<float> wt, Span<double> accW, Span<double> accB)
    {
        int i = 0, w = Vector<float>.Count, h = Vector<double>.Count;
        var vm = new Vector<float>(m);
        var vr = new Vector<float>(rs);
        Vector<double> a = default, b = default;
        for (; i + w <= row.Length; i += w)
        {
            var xh = (new Vector<float>(row.Slice(i, w)) - vm) * vr;
            xh.CopyTo(row.Slice(i, w));
            var gv = new Vector<float>(g.Slice(i, w));
            Vector.Widen(gv, out var gl, out var gh);
            Vector.Widen(xh, out var xl, out var xu);
            (new Vector<double>(accW.Slice(i, h)) + gl * xl).CopyTo(accW.Slice(i, h));
            (new Vector<double>(accW.Slice(i + h, h)) + gh * xu).CopyTo(accW.Slice(i + h, h));
            (new Vector<double>(accB.Slice(i, h)) + gl).CopyTo(accB.Slice(i, h));
            (new Vector<double>(accB.Slice(i + h, h)) + gh).CopyTo(accB.Slice(i + h, h));
            Vector.Widen(gv * new Vector<float>(wt.Slice(i, w)), out var wl, out var wu);
            a += wl + wu;
            b += wl * xl + wu * xu;
        }
        if (i < row.Length && row.Length >= w && LayerNormLayoutVectorTails)
        {
            // The last whole vector of the row: its earlier lanes already hold xhat (kept, not recomputed) and enter
            // the sums with g = 0.
            int o = row.Length - w;
            var fresh = Vector.GreaterThanOrEqual(LaneIndex, new Vector<int>(w - (row.Length - i)));
            var old = new Vector<float>(row.Slice(o, w));
            var xh = Vector.ConditionalSelect(fresh, (old - vm) * vr, old);
            xh.CopyTo(row.Slice(o, w));
            var gv = Vector.ConditionalSelect(fresh, new Vector<float>(g.Slice(o, w)), Vector<float>.Zero);
            Vector.Widen(gv, out var gl, out var gh);
            Vector.Widen(xh, out var xl, out var xu);
            (new Vector<double>(accW.Slice(o, h)) + gl * xl).CopyTo(accW.Slice(o, h));
            (new Vector<double>(accW.Slice(o + h, h)) + gh * xu).CopyTo(accW.Slice(o + h, h));
            (new Vector<double>(accB.Slice(o, h)) + gl).CopyTo(accB.Slice(o, h));
            (new Vector<double>(accB.Slice(o + h, h)) + gh).CopyTo(accB.Slice(o + h, h));
            Vector.Widen(gv * new Vector<float>(wt.Slice(o, w)), out var wl, out var wu);
            a += wl + wu;
            b += wl * xl + wu * xu;
            i = row.Length;
        }
        double sa = Vector.Sum(a), sb = Vector.Sum(b);
        for (; i < row.Length; i++)
        {
            float xh = (row[i] - m) * rs;
            row[i] = xh;
            accW[i] += (double)g[i] * xh;
            accB[i] += g[i];
            double gw = g[i] * wt[i];
            sa += gw;
            sb += gw * xh;
        }
        return (sa, sb);
    }

    /// <summary>rows[i * c + ch] = x[img, ch, p] for the <paramref name="count"/> NHWC pixels q0 + i (q = img * hw +
    /// p), a run of consecutive positions of each channel plane at a time.</summary>
    private static void GatherPixelRows(ReadOnlySpan<float> x, int c, int hw, int q0, int count, Span<float> rows)
    {
        if (hw == 1)
        {
            x.Slice(q0 * c, count * c).CopyTo(rows); // a 1 x 1 map: NCHW is NHWC
            return;
        }
        for (int i = 0; i < count;)
        {
            int img = (q0 + i) / hw, p = (q0 + i) - img * hw;
            int run = Math.Min(count - i, hw - p);
            var plane0 = x.Slice(img * c * hw + p, (c - 1) * hw + run);
            var dst0 = rows.Slice(i * c, run * c);
            unsafe
            {
                fixed (float* xp = plane0, rp = dst0) // bounds: the two slices above
                {
                    if (UseTailTransposes(c, run))
                    {
                        CopyTransposed(xp, hw, rp, c, c, run);
                        i += run;
                        continue;
                    }
                    int k8 = LayerNormLayoutSimdTranspose && Avx.IsSupported ? run / 8 * 8 : 0;
                    int c8 = k8 > 0 ? c / 8 * 8 : 0;
                    for (int k0 = 0; k0 < k8; k0 += 8)
                        for (int ch = 0; ch < c8; ch += 8)
                            Transpose8x8(xp + (long)ch * hw + k0, hw, rp + (long)k0 * c + ch, c);
                    for (int ch = 0; ch < c; ch++)
                    {
                        float* src = xp + (long)ch * hw, dst = rp + ch;
                        // What the transposes covered: channels below c8 for the first k8 pixels.
                        for (int k = ch < c8 ? k8 : 0; k < run; k++) dst[(long)k * c] = src[k];
                    }
                }
            }
            i += run;
        }
    }

    /// <summary>The inverse of <see cref="GatherPixelRows"/>: dx[img, ch, p] = rows[i * c + ch].</summary>
    private static void ScatterPixelRows(ReadOnlySpan<float> rows, int c, int hw, int q0, int count, Span<float> dx)
    {
        if (hw == 1)
        {
            rows[..(count * c)].CopyTo(dx.Slice(q0 * c));
            return;
        }
        for (int i = 0; i < count;)
        {
            int img = (q0 + i) / hw, p = (q0 + i) - img * hw;
            int run = Math.Min(count - i, hw - p);
            var plane0 = dx.Slice(img * c * hw + p, (c - 1) * hw + run);
            var src0 = rows.Slice(i * c, run * c);
            unsafe
            {
                fixed (float* dp = plane0, rp = src0) // bounds: the two slices above
                {
                    if (UseTailTransposes(c, run))
                    {
                        CopyTransposed(rp, c, dp, hw, run, c);
                        i += run;
                        continue;
                    }
                    int k8 = LayerNormLayoutSimdTranspose && Avx.IsSupported ? run / 8 * 8 : 0;
                    int c8 = k8 > 0 ? c / 8 * 8 : 0;
                    for (int k0 = 0; k0 < k8; k0 += 8)
                        for (int ch = 0; ch < c8; ch += 8)
                            Transpose8x8(rp + (long)k0 * c + ch, c, dp + (long)ch * hw + k0, hw);
                    for (int ch = 0; ch < c; ch++)
                    {
                        float* dst = dp + (long)ch * hw, src = rp + ch;
                        for (int k = ch < c8 ? k8 : 0; k < run; k++) dst[k] = src[(long)k * c];
                    }
                }
            }
            i += run;
        }
    }

    /// <summary>Whether the fused LayerNorm's gather and scatter use 8 x 8 in-register transposes where they can (the
    /// default) instead of element-by-element copies (the same values). Internal so that the bench can time
    /// both.</summary>
    internal static bool LayerNormLayoutSimdTranspose { get; set; } = true;

    /// <summary>Whether the gather and the scatter cover a run whole with in-register transposes, the last block of
    /// each direction overlapping the one before (the default; SLAK_LAYOUT_TAIL_TRANSPOSE=0 turns it off): 8 x 8
    /// blocks where the run has 8 pixels and the channels number 8, else 4 x 4 blocks (SSE; a 2 x 2 map's runs of 4),
    /// instead of 8 x 8 blocks on the multiples of 8 and the rest element by element (C = 31 left 7 of 31 channels to
    /// strided single-float copies, a 2 x 2 map every element). The overlapped elements are copied again with the
    /// same values, so the bits are those of the element copies. Internal so that the bench and the tests can compare
    /// both.</summary>
    internal static bool LayerNormLayoutTailTransposes { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_LAYOUT_TAIL_TRANSPOSE") != "0";

    private static bool UseTailTransposes(int c, int run) =>
        LayerNormLayoutTailTransposes && LayerNormLayoutSimdTranspose && Avx.IsSupported && c >= 4 && run >= 4;

    /// <summary>dst[j * dstStride + i] = src[i * srcStride + j] for i &lt; <paramref name="rows"/>, j &lt;
    /// <paramref name="cols"/> (both at least 4): 8 x 8 register transposes where both are at least 8, else 4 x 4 ones;
    /// a dimension that is not a multiple of the block ends with a block that overlaps the one before (source and
    /// destination must not overlap).</summary>
    private static unsafe void CopyTransposed(float* src, long srcStride, float* dst, long dstStride, int rows, int cols)
    {
        int b = rows >= 8 && cols >= 8 ? 8 : 4;
        for (int i0 = 0; i0 < rows; i0 += b)
        {
            int i = Math.Min(i0, rows - b);
            for (int j0 = 0; j0 < cols; j0 += b)
            {
                int j = Math.Min(j0, cols - b);
                if (b == 8) Transpose8x8(src + i * srcStride + j, srcStride, dst + j * dstStride + i, dstStride);
                else Transpose4x4(src + i * srcStride + j, srcStride, dst + j * dstStride + i, dstStride);
            }
        }
    }

    /// <summary><see cref="Transpose8x8"/> for 4 x 4 floats (SSE unpacks).</summary>
    private static unsafe void Transpose4x4(float* src, long srcStride, float* dst, long dstStride)
    {
        Transpose4(Sse.LoadVector128(src), Sse.LoadVector128(src + srcStride), Sse.LoadVector128(src + 2 * srcStride),
            Sse.LoadVector128(src + 3 * srcStride), out var o0, out var o1, out var o2, out var o3);
        Sse.Store(dst, o0);
        Sse.Store(dst + dstStride, o1);
        Sse.Store(dst + 2 * dstStride, o2);
        Sse.Store(dst + 3 * dstStride, o3);
    }

    /// <summary>The 4 x 4 transpose of rows a, b, c, d in registers: o_j = (a_j, b_j, c_j, d_j).</summary>
    private static void Transpose4(Vector128<float> a, Vector128<float> b, Vector128<float> c, Vector128<float> d,
        out Vector128<float> o0, out Vector128<float> o1, out Vector128<float> o2, out Vector128<float> o3)
    {
        var t0 = Sse.UnpackLow(a, b);  // a0 b0 a1 b1
        var t1 = Sse.UnpackHigh(a, b); // a2 b2 a3 b3
        var t2 = Sse.UnpackLow(c, d);  // c0 d0 c1 d1
        var t3 = Sse.UnpackHigh(c, d); // c2 d2 c3 d3
        o0 = Sse.MoveLowToHigh(t0, t2);
        o1 = Sse.MoveHighToLow(t2, t0);
        o2 = Sse.MoveLowToHigh(t1, t3);
        o3 = Sse.MoveHighToLow(t3, t1);
    }

    /// <summary>dst[j * dstStride + i] = src[i * srcStride + j] for i, j &lt; 8: eight 8-float rows loaded, transposed
    /// in registers (CpuDwConvTranspose.Transpose, the depthwise engine's) and stored as eight 8-float rows. AVX
    /// only.</summary>
    private static unsafe void Transpose8x8(float* src, long srcStride, float* dst, long dstStride)
    {
        var r0 = Avx.LoadVector256(src);
        var r1 = Avx.LoadVector256(src + srcStride);
        var r2 = Avx.LoadVector256(src + 2 * srcStride);
        var r3 = Avx.LoadVector256(src + 3 * srcStride);
        var r4 = Avx.LoadVector256(src + 4 * srcStride);
        var r5 = Avx.LoadVector256(src + 5 * srcStride);
        var r6 = Avx.LoadVector256(src + 6 * srcStride);
        var r7 = Avx.LoadVector256(src + 7 * srcStride);
        CpuDwConvTranspose.Transpose(r0, r1, r2, r3, r4, r5, r6, r7,
            out var o0, out var o1, out var o2, out var o3, out var o4, out var o5, out var o6, out var o7);
        Avx.Store(dst, o0);
        Avx.Store(dst + dstStride, o1);
        Avx.Store(dst + 2 * dstStride, o2);
        Avx.Store(dst + 3 * dstStride, o3);
        Avx.Store(dst + 4 * dstStride, o4);
        Avx.Store(dst + 5 * dstStride, o5);
        Avx.Store(dst + 6 * dstStride, o6);
        Avx.Store(dst + 7 * dstStride, o7);
    }

    /// <summary>Whether the fused LayerNorm's row kernels (statistics, output, backward sums, dx) finish a row whose
    /// channel count is not a multiple of the vector width with its last whole vector, the lanes already done weighted
    /// by 0 in the sums and written again with the same values (the default), instead of one channel at a time (C = 31
    /// leaves 7 of 31). Internal so that the bench can time both.</summary>
    internal static bool LayerNormLayoutVectorTails { get; set; } = true;

    /// <summary>0, 1, 2, ... in the lanes of a Vector&lt;int&gt;.</summary>
    private static readonly Vector<int> LaneIndex = new(Enumerable.Range(0, Vector<int>.Count).ToArray());

    /// <summary>Widened 0/1 weights of the last whole vector of a row whose last <paramref name="fresh"/> lanes are not
    /// yet done: 1 there, 0 in the lanes before.</summary>
    private static void TailKeep(int fresh, out Vector<double> lo, out Vector<double> hi)
    {
        var fresher = Vector.GreaterThanOrEqual(LaneIndex, new Vector<int>(Vector<float>.Count - fresh));
        var keep = Vector.ConditionalSelect(fresher, Vector<float>.One, Vector<float>.Zero);
        Vector.Widen(keep, out lo, out hi);
    }

    /// <summary>Mean and 1/sqrt(biased variance + eps) of one row, accumulated in float64 (sum, then the sum of
    /// squared deviations from the float64 mean), rounded to float once.</summary>
    private static (float Mean, float Rstd) RowStatistics(ReadOnlySpan<float> row, float eps)
    {
        int i = 0, w = Vector<float>.Count, n = row.Length;
        var s = Vector<double>.Zero;
        for (; i + w <= n; i += w)
        {
            Vector.Widen(new Vector<float>(row.Slice(i, w)), out var lo, out var hi);
            s += lo + hi;
        }
        bool vectorTail = i < n && n >= w && LayerNormLayoutVectorTails;
        Vector<double> kl = default, kh = default;
        if (vectorTail)
        {
            // The last whole vector of the row, its lanes already summed weighted by 0.
            TailKeep(n - i, out kl, out kh);
            Vector.Widen(new Vector<float>(row.Slice(n - w, w)), out var lo, out var hi);
            s += lo * kl + hi * kh;
        }
        double sum = Vector.Sum(s);
        for (int t = vectorTail ? n : i; t < n; t++) sum += row[t];
        double mean = sum / n;
        var vm = new Vector<double>(mean);
        var q = Vector<double>.Zero;
        for (i = 0; i + w <= n; i += w)
        {
            Vector.Widen(new Vector<float>(row.Slice(i, w)), out var lo, out var hi);
            var dl = lo - vm;
            var dh = hi - vm;
            q += dl * dl + dh * dh;
        }
        if (vectorTail)
        {
            Vector.Widen(new Vector<float>(row.Slice(n - w, w)), out var lo, out var hi);
            var dl = (lo - vm) * kl;
            var dh = (hi - vm) * kh;
            q += dl * dl + dh * dh;
            i = n;
        }
        double sq = Vector.Sum(q);
        for (; i < n; i++) { double d = row[i] - mean; sq += d * d; }
        return ((float)mean, (float)(1.0 / Math.Sqrt(sq / n + eps)));
    }

    /// <summary>y = (x - m) * rs * w + b over one row (float).</summary>
    private static void NormalizeRow(ReadOnlySpan<float> x, float m, float rs, ReadOnlySpan<float> wt,
                                     ReadOnlySpan<float> bs, Span<float> y)
    {
        int i = 0, w = Vector<float>.Count;
        var vm = new Vector<float>(m);
        var vr = new Vector<float>(rs);
        for (; i + w <= x.Length; i += w)
        {
            var v = (new Vector<float>(x.Slice(i, w)) - vm) * vr;
            (v * new Vector<float>(wt.Slice(i, w)) + new Vector<float>(bs.Slice(i, w))).CopyTo(y.Slice(i, w));
        }
        if (i < x.Length && x.Length >= w && LayerNormLayoutVectorTails)
        {
            // The last whole vector again: the lanes already written get the same values (element-wise).
            int o = x.Length - w;
            var v = (new Vector<float>(x.Slice(o, w)) - vm) * vr;
            (v * new Vector<float>(wt.Slice(o, w)) + new Vector<float>(bs.Slice(o, w))).CopyTo(y.Slice(o, w));
            return;
        }
        for (; i < x.Length; i++) y[i] = (x[i] - m) * rs * wt[i] + bs[i];
    }

    /// <summary>row = (row - m) * rs in place.</summary>
    private static void CenterScaleRow(Span<float> row, float m, float rs)
    {
        int i = 0, w = Vector<float>.Count;
        var vm = new Vector<float>(m);
        var vr = new Vector<float>(rs);
        for (; i + w <= row.Length; i += w)
            ((new Vector<float>(row.Slice(i, w)) - vm) * vr).CopyTo(row.Slice(i, w));
        for (; i < row.Length; i++) row[i] = (row[i] - m) * rs;
    }

    /// <summary>(sum of g * w, sum of g * w * xhat) over one row, g * w rounded to float as the dx pass uses it, the
    /// sums in float64.</summary>
    private static (double Sa, double Sb) WeightedGradientSums(ReadOnlySpan<float> g, ReadOnlySpan<float> wt,
                                                               ReadOnlySpan<float> xhat)
    {
        int i = 0, w = Vector<float>.Count;
        Vector<double> a = default, b = default;
        for (; i + w <= g.Length; i += w)
        {
            var gw = new Vector<float>(g.Slice(i, w)) * new Vector<float>(wt.Slice(i, w));
            Vector.Widen(gw, out var gl, out var gh);
            Vector.Widen(new Vector<float>(xhat.Slice(i, w)), out var xl, out var xh);
            a += gl + gh;
            b += gl * xl + gh * xh;
        }
        double sa = Vector.Sum(a), sb = Vector.Sum(b);
        for (; i < g.Length; i++)
        {
            double gw = g[i] * wt[i];
            sa += gw;
            sb += gw * xhat[i];
        }
        return (sa, sb);
    }

    /// <summary>dx = (g * w - ma - xhat * mb) * rs over one row (float).</summary>
    private static void LayerNormDxRow(ReadOnlySpan<float> g, ReadOnlySpan<float> wt, ReadOnlySpan<float> xhat,
                                       float ma, float mb, float rs, Span<float> dx)
    {
        int i = 0, w = Vector<float>.Count;
        var va = new Vector<float>(ma);
        var vb = new Vector<float>(mb);
        var vr = new Vector<float>(rs);
        for (; i + w <= g.Length; i += w)
        {
            var gw = new Vector<float>(g.Slice(i, w)) * new Vector<float>(wt.Slice(i, w));
            ((gw - va - new Vector<float>(xhat.Slice(i, w)) * vb) * vr).CopyTo(dx.Slice(i, w));
        }
        if (i < g.Length && g.Length >= w && LayerNormLayoutVectorTails)
        {
            int o = g.Length - w; // element-wise: the lanes already written get the same values
            var gw = new Vector<float>(g.Slice(o, w)) * new Vector<float>(wt.Slice(o, w));
            ((gw - va - new Vector<float>(xhat.Slice(o, w)) * vb) * vr).CopyTo(dx.Slice(o, w));
            return;
        }
        for (; i < g.Length; i++) dx[i] = (g[i] * wt[i] - ma - xhat[i] * mb) * rs;
    }
}
