// The channels-first LayerNorm backward of the CPU backend on maps of up to 4 x 4, over each image's C*H*W values as
// one flat row. The per-plane path (CpuBackend.Norm.cs) makes two vector kernel calls and two horizontal sums per
// channel plane, which on a 4x4 map is all overhead, and its small-map path below 16 positions is scalar. Here the row is walked in
// float vectors whose lanes map to positions p = j mod H*W: when H*W divides the vector width or the vector width
// divides H*W, a vector's positions repeat with period max(width, H*W), so the per-position mean and 1/std, and the
// per-position sums over the channels, are period-long double rows indexed by j mod period. Everything is float64 as
// in the small-map path: xhat = (x - mu) * rs, gh = g * w; per position ma = mean over C of gh and mb = mean over C of
// gh * xhat (period rows folded onto the H*W positions, then divided by C); dx = rs * (gh - ma - xhat * mb), rounded
// once. The parameter gradients accumulate per position (dweight: g * xhat, dbias: g) down a fixed part of
// LncfImagesPerPart images, then fold per channel over positions, then over the parts in order: the bits do not depend
// on the thread count.
using System.Buffers;
using System.Numerics;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <summary>Maps with fewer positions (H*W) than this take the flat channels-first LayerNorm backward (when H*W
    /// divides, or is a multiple of, the float vector width); 0 turns it off (the bench's 'before'). Measured with
    /// norm-step (slak_nano's and slak_nano64's shapes, batch 128, 2 threads): 0.3x the old time on 2 x 2 maps, 0.6x on
    /// 4 x 4, but 1.04-1.18x on 8 x 8 (the per-plane path's xhat and g * w are float; here float64) and 1.9x on 16 x 16
    /// (a part's float64 rows, 190 KB with 31 channels, overflow the L1).</summary>
    internal static int LayerNormChannelsFirstFlatBelow { get; set; } = 32;

    /// <summary>Images per part of the flat path (a part's parameter-gradient sums are added in part order).</summary>
    private const int LncfImagesPerPart = 8;

    private static bool UseLncfFlat(int hw)
    {
        int w = Vector<float>.Count;
        return hw < LayerNormChannelsFirstFlatBelow && (hw % w == 0 || w % hw == 0);
    }

    private static void LayerNormChannelsFirstBackwardFlat(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                                           Tensor dx, Tensor dweight, Tensor dbias)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3), row = c * hw;
        int period = Math.Max(Vector<float>.Count, hw);
        int parts = (n + LncfImagesPerPart - 1) / LncfImagesPerPart;
        var wRow = ArrayPool<double>.Shared.Rent(row);
        var partial = new double[parts][];
        try
        {
            for (int ch = 0; ch < c; ch++) wRow.AsSpan(ch * hw, hw).Fill(S(weight)[ch]);
            CpuParallel.For(0, parts, x.Numel, part =>
            {
                var acc = ArrayPool<double>.Shared.Rent(2 * row);
                var rows = ArrayPool<double>.Shared.Rent(4 * period);
                Array.Clear(acc, 0, 2 * row);
                for (int img = part * LncfImagesPerPart, end = Math.Min(n, img + LncfImagesPerPart); img < end; img++)
                {
                    int off = img * row;
                    LncfFlatImage(S(x).Slice(off, row), S(dy).Slice(off, row), S(mean).Slice(img * hw, hw),
                        S(rstd).Slice(img * hw, hw), wRow.AsSpan(0, row), c, hw, period, rows, acc,
                        S(dx).Slice(off, row));
                }
                ArrayPool<double>.Shared.Return(rows);
                partial[part] = acc;
            });
            for (int ch = 0; ch < c; ch++)
            {
                double sw = 0, sb = 0;
                for (int part = 0; part < parts; part++)
                {
                    sw += FoldChannel(partial[part], ch, hw);
                    sb += FoldChannel(partial[part].AsSpan(row), ch, hw);
                }
                S(dweight)[ch] = (float)sw;
                S(dbias)[ch] = (float)sb;
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(wRow);
            foreach (var p in partial)
                if (p is not null) ArrayPool<double>.Shared.Return(p);
        }
    }

    /// <summary>One image of <see cref="LayerNormChannelsFirstBackwardFlat"/>: <paramref name="rows"/> holds four
    /// period-long double rows (mu, rs, then the sums and means of gh and gh * xhat); <paramref name="acc"/> gains the
    /// image's g * xhat in [0, row) and g in [row, 2 row).</summary>
    private static void LncfFlatImage(ReadOnlySpan<float> x, ReadOnlySpan<float> g, ReadOnlySpan<float> mu,
        ReadOnlySpan<float> rs, ReadOnlySpan<double> wRow, int c, int hw, int period, double[] rows, double[] acc,
        Span<float> dx)
    {
        int row = x.Length, w = Vector<float>.Count, h = Vector<double>.Count;
        var muP = rows.AsSpan(0, period);
        var rsP = rows.AsSpan(period, period);
        var ma = rows.AsSpan(2 * period, period);
        var mb = rows.AsSpan(3 * period, period);
        for (int k = 0; k < period; k++)
        {
            muP[k] = mu[k % hw];
            rsP[k] = rs[k % hw];
        }
        ma.Clear();
        mb.Clear();
        var dwAcc = acc.AsSpan(0, row);
        var dbAcc = acc.AsSpan(row, row);
        int j = 0, kv = 0;
        for (; j + w <= row; j += w)
        {
            Vector.Widen(new Vector<float>(x.Slice(j, w)), out var x0, out var x1);
            Vector.Widen(new Vector<float>(g.Slice(j, w)), out var g0, out var g1);
            var xh0 = (x0 - new Vector<double>(muP.Slice(kv, h))) * new Vector<double>(rsP.Slice(kv, h));
            var xh1 = (x1 - new Vector<double>(muP.Slice(kv + h, h))) * new Vector<double>(rsP.Slice(kv + h, h));
            var gh0 = g0 * new Vector<double>(wRow.Slice(j, h));
            var gh1 = g1 * new Vector<double>(wRow.Slice(j + h, h));
            (new Vector<double>(ma.Slice(kv, h)) + gh0).CopyTo(ma.Slice(kv, h));
            (new Vector<double>(ma.Slice(kv + h, h)) + gh1).CopyTo(ma.Slice(kv + h, h));
            (new Vector<double>(mb.Slice(kv, h)) + gh0 * xh0).CopyTo(mb.Slice(kv, h));
            (new Vector<double>(mb.Slice(kv + h, h)) + gh1 * xh1).CopyTo(mb.Slice(kv + h, h));
            (new Vector<double>(dwAcc.Slice(j, h)) + g0 * xh0).CopyTo(dwAcc.Slice(j, h));
            (new Vector<double>(dwAcc.Slice(j + h, h)) + g1 * xh1).CopyTo(dwAcc.Slice(j + h, h));
            (new Vector<double>(dbAcc.Slice(j, h)) + g0).CopyTo(dbAcc.Slice(j, h));
            (new Vector<double>(dbAcc.Slice(j + h, h)) + g1).CopyTo(dbAcc.Slice(j + h, h));
            kv += w;
            if (kv == period) kv = 0;
        }
        for (int jt = j; jt < row; jt++)
        {
            int k = jt % period;
            double gv = g[jt], xh = (x[jt] - muP[k]) * rsP[k], gh = gv * wRow[jt];
            ma[k] += gh;
            mb[k] += gh * xh;
            dwAcc[jt] += gv * xh;
            dbAcc[jt] += gv;
        }
        // Fold the period rows onto the positions (period / hw lanes each, in lane order), divide by C, spread back.
        double invC = 1.0 / c;
        for (int p = 0; p < hw; p++)
        {
            double sa = 0, sb = 0;
            for (int k = p; k < period; k += hw) { sa += ma[k]; sb += mb[k]; }
            ma[p] = sa * invC;
            mb[p] = sb * invC;
        }
        for (int k = hw; k < period; k++) { ma[k] = ma[k - hw]; mb[k] = mb[k - hw]; }
        kv = 0;
        for (j = 0; j + w <= row; j += w)
        {
            Vector.Widen(new Vector<float>(x.Slice(j, w)), out var x0, out var x1);
            Vector.Widen(new Vector<float>(g.Slice(j, w)), out var g0, out var g1);
            var r0 = new Vector<double>(rsP.Slice(kv, h));
            var r1 = new Vector<double>(rsP.Slice(kv + h, h));
            var xh0 = (x0 - new Vector<double>(muP.Slice(kv, h))) * r0;
            var xh1 = (x1 - new Vector<double>(muP.Slice(kv + h, h))) * r1;
            var gh0 = g0 * new Vector<double>(wRow.Slice(j, h));
            var gh1 = g1 * new Vector<double>(wRow.Slice(j + h, h));
            var d0 = r0 * (gh0 - new Vector<double>(ma.Slice(kv, h)) - xh0 * new Vector<double>(mb.Slice(kv, h)));
            var d1 = r1 * (gh1 - new Vector<double>(ma.Slice(kv + h, h))
                           - xh1 * new Vector<double>(mb.Slice(kv + h, h)));
            Vector.Narrow(d0, d1).CopyTo(dx.Slice(j, w));
            kv += w;
            if (kv == period) kv = 0;
        }
        for (; j < row; j++)
        {
            int k = j % period;
            double xh = (x[j] - muP[k]) * rsP[k], gh = g[j] * wRow[j];
            dx[j] = (float)(rsP[k] * (gh - ma[k] - xh * mb[k]));
        }
    }
}
