// Normalization kernels of the CPU backend: LayerNorm over the last dim (block norm, head norm), LayerNorm over the
// channels of an NCHW tensor (stem/downsample norms); BatchNorm2d is in CpuBackend.Norm.Batch.cs. Rows and planes
// are processed with TensorPrimitives (SIMD); cross-plane and cross-row statistics are accumulated in double; the
// per-row / per-image / per-channel work is split over threads.
using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void LayerNormLastDim(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        int c = weight.Size(0);
        int rows = checked((int)(x.Numel / c));
        CpuParallel.For(0, RowBlocks(rows, c), blk =>
        {
            var (r0, r1) = RowRange(blk, rows, c);
            var w = S(weight); var b = S(bias);
            for (int r = r0; r < r1; r++)
            {
                var xs = S(x).Slice(r * c, c);
                var ys = S(y).Slice(r * c, c);
                // Two passes (mean, then centred squares) on SIMD spans; y holds x - mean in between.
                float m = TensorPrimitives.Sum(xs) / c;
                TensorPrimitives.Subtract(xs, m, ys);
                float rs = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(ys) / c + eps);
                TensorPrimitives.Multiply(ys, rs, ys);
                TensorPrimitives.FusedMultiplyAdd(ys, w, b, ys);
                S(mean)[r] = m;
                S(rstd)[r] = rs;
            }
        });
    }

    /// <inheritdoc />
    public void LayerNormLastDimBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                         Tensor dx, Tensor dweight, Tensor dbias)
    {
        int c = weight.Size(0);
        int rows = checked((int)(x.Numel / c));
        // One pass: each row block computes its dx rows and, from the same xhat, its partial dweight/dbias (double),
        // added in block order afterwards (same blocks as ColumnReduce: deterministic).
        int blocks = RowBlocks(rows, c);
        var partW = new double[blocks][];
        var partB = new double[blocks][];
        CpuParallel.For(0, blocks, blk =>
        {
            var (r0, r1) = RowRange(blk, rows, c);
            var w = S(weight);
            var xhat = new float[c];
            var accW = new double[c];
            var accB = new double[c];
            for (int r = r0; r < r1; r++)
            {
                var xs = S(x).Slice(r * c, c);
                var g = S(dy).Slice(r * c, c);
                var d = S(dx).Slice(r * c, c);
                float m = S(mean)[r], rs = S(rstd)[r];
                // dx = rstd * (g*w - mean(g*w) - xhat * mean(g*w*xhat)), with d holding g*w first.
                TensorPrimitives.Subtract(xs, m, xhat);
                TensorPrimitives.Multiply(xhat, rs, xhat);
                AddProductWiden(g, xhat, accW);
                AddWiden(g, accB);
                TensorPrimitives.Multiply(g, w, d);
                float ma = TensorPrimitives.Sum(d) / c, mb = TensorPrimitives.Dot(d, xhat) / c;
                TensorPrimitives.Subtract(d, ma, d);
                TensorPrimitives.MultiplyAdd(xhat, -mb, d, d);
                TensorPrimitives.Multiply(d, rs, d);
            }
            partW[blk] = accW;
            partB[blk] = accB;
        });
        for (int j = 0; j < c; j++)
        {
            double sw = 0, sb = 0;
            for (int b = 0; b < blocks; b++) { sw += partW[b][j]; sb += partB[b][j]; }
            S(dweight)[j] = (float)sw;
            S(dbias)[j] = (float)sb;
        }
    }

    /// <inheritdoc />
    public void LayerNormChannelsFirst(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3);
        if (UseImageGroups(hw))
        {
            LayerNormForwardImageGroups(x, weight, bias, eps, y, mean, rstd, nhwc: false);
            return;
        }
        if (UsePixelLanes(hw))
        {
            LayerNormForwardPixelLanes(x, weight, bias, eps, y, mean, rstd, nhwc: false);
            return;
        }
        // Per image, statistics run across the channel planes position-wise (SIMD over the H*W positions, double
        // accumulators), so every pass reads whole planes with unit stride.
        CpuParallel.For(0, n, x.Numel, img =>
        {
            var xs = S(x).Slice(img * c * hw, c * hw);
            var ys = S(y).Slice(img * c * hw, c * hw);
            var sum = ArrayPool<double>.Shared.Rent(hw);
            var sq = ArrayPool<double>.Shared.Rent(hw);
            try
            {
                Array.Clear(sum, 0, hw);
                Array.Clear(sq, 0, hw);
                var sumS = sum.AsSpan(0, hw);
                for (int ch = 0; ch < c; ch++) AddWiden(xs.Slice(ch * hw, hw), sumS);
                var mu = S(mean).Slice(img * hw, hw);
                var rs = S(rstd).Slice(img * hw, hw);
                for (int p = 0; p < hw; p++) { sum[p] /= c; mu[p] = (float)sum[p]; }
                for (int ch = 0; ch < c; ch++) AddSquaredDiffDouble(xs.Slice(ch * hw, hw), sumS, sq.AsSpan(0, hw));
                for (int p = 0; p < hw; p++) rs[p] = (float)(1.0 / Math.Sqrt(sq[p] / c + eps));
                var w = S(weight); var b = S(bias);
                for (int ch = 0; ch < c; ch++)
                    NormalizePlane(xs.Slice(ch * hw, hw), mu, rs, w[ch], b[ch], ys.Slice(ch * hw, hw));
            }
            finally
            {
                ArrayPool<double>.Shared.Return(sum);
                ArrayPool<double>.Shared.Return(sq);
            }
        });
    }

    /// <inheritdoc />
    public void LayerNormChannelsFirstBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                               Tensor dx, Tensor dweight, Tensor dbias)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3);
        if (UseBackwardPixelLanes(hw, nhwc: false))
        {
            LayerNormBackwardLanes(x, weight, mean, rstd, dy, dx, dweight, dbias, nhwc: false);
            return;
        }
        if (UseLncfFlat(hw))
        {
            LayerNormChannelsFirstBackwardFlat(x, weight, mean, rstd, dy, dx, dweight, dbias);
            return;
        }
        var dwParts = new double[n][];
        var dbParts = new double[n][];
        CpuParallel.For(0, n, x.Numel, img =>
        {
            int baseOff = img * c * hw;
            var mu = S(mean).Slice(img * hw, hw);
            var rs = S(rstd).Slice(img * hw, hw);
            var w = S(weight);
            if (hw < LayerNormChannelsFirstSmallMapBelow)
            {
                var dws = new double[c];
                var dbs = new double[c];
                LncfBackwardSmallMap(S(x).Slice(baseOff, c * hw), S(dy).Slice(baseOff, c * hw), mu, rs, w, c, hw,
                    S(dx).Slice(baseOff, c * hw), dws, dbs);
                dwParts[img] = dws;
                dbParts[img] = dbs;
                return;
            }
            var a = ArrayPool<double>.Shared.Rent(hw);
            var bsum = ArrayPool<double>.Shared.Rent(hw);
            try
            {
                Array.Clear(a, 0, hw);
                Array.Clear(bsum, 0, hw);
                var dwp = new double[c];
                var dbp = new double[c];
                for (int ch = 0; ch < c; ch++)
                {
                    var (dwc, dbc) = LncfBackwardSums(S(x).Slice(baseOff + ch * hw, hw), S(dy).Slice(baseOff + ch * hw, hw),
                        mu, rs, w[ch], a.AsSpan(0, hw), bsum.AsSpan(0, hw));
                    dwp[ch] = dwc;
                    dbp[ch] = dbc;
                }
                if (LayerNormChannelsFirstMeansOnce)
                {
                    // The means over C once per position, so that the dx pass multiplies and subtracts only.
                    TensorPrimitives.Multiply(a.AsSpan(0, hw), 1.0 / c, a.AsSpan(0, hw));
                    TensorPrimitives.Multiply(bsum.AsSpan(0, hw), 1.0 / c, bsum.AsSpan(0, hw));
                    for (int ch = 0; ch < c; ch++)
                        LncfBackwardDx(S(x).Slice(baseOff + ch * hw, hw), S(dy).Slice(baseOff + ch * hw, hw), mu, rs, w[ch],
                            a.AsSpan(0, hw), bsum.AsSpan(0, hw), S(dx).Slice(baseOff + ch * hw, hw));
                }
                else
                {
                    for (int ch = 0; ch < c; ch++)
                        LncfBackwardDxDividing(S(x).Slice(baseOff + ch * hw, hw), S(dy).Slice(baseOff + ch * hw, hw), mu, rs,
                            w[ch], a.AsSpan(0, hw), bsum.AsSpan(0, hw), c, S(dx).Slice(baseOff + ch * hw, hw));
                }
                dwParts[img] = dwp;
                dbParts[img] = dbp;
            }
            finally
            {
                ArrayPool<double>.Shared.Return(a);
                ArrayPool<double>.Shared.Return(bsum);
            }
        });
        for (int ch = 0; ch < c; ch++)
        {
            double sw = 0, sb = 0;
            for (int img = 0; img < n; img++) { sw += dwParts[img][ch]; sb += dbParts[img][ch]; }
            S(dweight)[ch] = (float)sw;
            S(dbias)[ch] = (float)sb;
        }
    }

    /// <summary>Whether the channels-first LayerNorm backward divides its per-position sums by C once per image (the
    /// default) instead of in every channel plane's dx pass (two double vector divisions per vector of output).
    /// Internal so that the bench can time both.</summary>
    internal static bool LayerNormChannelsFirstMeansOnce { get; set; } = true;

    /// <summary>Maps with fewer than this many positions (H*W) take the channels-first LayerNorm backward's small-map
    /// path: one scalar loop over the image's C*H*W values per pass, in double, instead of two vector kernel calls per
    /// channel plane whose vector loops a 2x2 or 1x1 plane never enters. 0 turns the path off (the bench's 'before').</summary>
    internal static int LayerNormChannelsFirstSmallMapBelow { get; set; } = 2 * 8;

    /// <summary>The channels-first LayerNorm backward of one image with a small map, in double: xhat = (x - mu) * rs,
    /// gh = g * w; per position ma = mean over C of gh and mb = mean over C of gh * xhat; dx = rs * (gh - ma - xhat * mb);
    /// per channel dw = sum of g * xhat and db = sum of g over the positions.</summary>
    private static void LncfBackwardSmallMap(ReadOnlySpan<float> x, ReadOnlySpan<float> g, ReadOnlySpan<float> mu,
        ReadOnlySpan<float> rs, ReadOnlySpan<float> w, int c, int hw, Span<float> dx, double[] dw, double[] db)
    {
        Span<double> ma = stackalloc double[hw];
        Span<double> mb = stackalloc double[hw];
        ma.Clear();
        mb.Clear();
        for (int ch = 0, o = 0; ch < c; ch++, o += hw)
        {
            double wc = w[ch], sw = 0, sb = 0;
            for (int p = 0; p < hw; p++)
            {
                double gv = g[o + p], xhat = (x[o + p] - (double)mu[p]) * rs[p], gh = gv * wc;
                ma[p] += gh;
                mb[p] += gh * xhat;
                sw += gv * xhat;
                sb += gv;
            }
            dw[ch] = sw;
            db[ch] = sb;
        }
        double invC = 1.0 / c;
        for (int p = 0; p < hw; p++) { ma[p] *= invC; mb[p] *= invC; }
        for (int ch = 0, o = 0; ch < c; ch++, o += hw)
        {
            double wc = w[ch];
            for (int p = 0; p < hw; p++)
            {
                double xhat = (x[o + p] - (double)mu[p]) * rs[p];
                dx[o + p] = (float)(rs[p] * (g[o + p] * wc - ma[p] - xhat * mb[p]));
            }
        }
    }

    /// <summary>acc[p] += (x[p] - mean[p])^2 in double (mean in double).</summary>
    private static void AddSquaredDiffDouble(ReadOnlySpan<float> x, ReadOnlySpan<double> mean, Span<double> acc)
    {
        int i = 0, w = Vector<float>.Count, h = Vector<double>.Count;
        for (; i + w <= x.Length; i += w)
        {
            Vector.Widen(new Vector<float>(x.Slice(i, w)), out var lo, out var hi);
            var dl = lo - new Vector<double>(mean.Slice(i, h));
            var dh = hi - new Vector<double>(mean.Slice(i + h, h));
            (new Vector<double>(acc.Slice(i, h)) + dl * dl).CopyTo(acc.Slice(i, h));
            (new Vector<double>(acc.Slice(i + h, h)) + dh * dh).CopyTo(acc.Slice(i + h, h));
        }
        for (; i < x.Length; i++) { double d = x[i] - mean[i]; acc[i] += d * d; }
    }

    /// <summary>y = (x - mu) * rs * w + b over one plane (float, left to right).</summary>
    private static void NormalizePlane(ReadOnlySpan<float> x, ReadOnlySpan<float> mu, ReadOnlySpan<float> rs, float wc,
                                       float bc, Span<float> y)
    {
        int i = 0, w = Vector<float>.Count;
        var vw = new Vector<float>(wc);
        var vb = new Vector<float>(bc);
        for (; i + w <= x.Length; i += w)
        {
            var v = (new Vector<float>(x.Slice(i, w)) - new Vector<float>(mu.Slice(i, w))) * new Vector<float>(rs.Slice(i, w));
            (v * vw + vb).CopyTo(y.Slice(i, w));
        }
        for (; i < x.Length; i++) y[i] = (x[i] - mu[i]) * rs[i] * wc + bc;
    }

    /// <summary>For one channel plane, with xhat = (x - mu) * rs and gh = g * w (float): a += gh, bsum += gh * xhat
    /// position-wise (double); returns (sum of g * xhat, sum of g) in double.</summary>
    private static (double Dw, double Db) LncfBackwardSums(ReadOnlySpan<float> x, ReadOnlySpan<float> g,
        ReadOnlySpan<float> mu, ReadOnlySpan<float> rs, float wc, Span<double> a, Span<double> bsum)
    {
        int i = 0, w = Vector<float>.Count, h = Vector<double>.Count;
        var vw = new Vector<float>(wc);
        Vector<double> dw = default, db = default;
        for (; i + w <= x.Length; i += w)
        {
            var gv = new Vector<float>(g.Slice(i, w));
            var xhat = (new Vector<float>(x.Slice(i, w)) - new Vector<float>(mu.Slice(i, w))) * new Vector<float>(rs.Slice(i, w));
            Vector.Widen(xhat, out var xl, out var xh);
            Vector.Widen(gv * vw, out var ghl, out var ghh);
            Vector.Widen(gv, out var gl, out var gh);
            (new Vector<double>(a.Slice(i, h)) + ghl).CopyTo(a.Slice(i, h));
            (new Vector<double>(a.Slice(i + h, h)) + ghh).CopyTo(a.Slice(i + h, h));
            (new Vector<double>(bsum.Slice(i, h)) + ghl * xl).CopyTo(bsum.Slice(i, h));
            (new Vector<double>(bsum.Slice(i + h, h)) + ghh * xh).CopyTo(bsum.Slice(i + h, h));
            dw += gl * xl + gh * xh;
            db += gl + gh;
        }
        double dwc = Vector.Sum(dw), dbc = Vector.Sum(db);
        for (; i < x.Length; i++)
        {
            double xhat = (x[i] - mu[i]) * rs[i];
            double ghs = g[i] * wc;
            a[i] += ghs;
            bsum[i] += ghs * xhat;
            dwc += g[i] * xhat;
            dbc += g[i];
        }
        return (dwc, dbc);
    }

    /// <summary>dx = rs * (g*w - ma - xhat * mb) over one channel plane, with ma, mb the per-position means over C
    /// of g*w and g*w*xhat, in double, rounded once.</summary>
    private static void LncfBackwardDx(ReadOnlySpan<float> x, ReadOnlySpan<float> g, ReadOnlySpan<float> mu,
        ReadOnlySpan<float> rs, float wc, ReadOnlySpan<double> ma, ReadOnlySpan<double> mb, Span<float> dx)
    {
        int i = 0, w = Vector<float>.Count, h = Vector<double>.Count;
        var vw = new Vector<float>(wc);
        for (; i + w <= x.Length; i += w)
        {
            var rsv = new Vector<float>(rs.Slice(i, w));
            var xhat = (new Vector<float>(x.Slice(i, w)) - new Vector<float>(mu.Slice(i, w))) * rsv;
            Vector.Widen(xhat, out var xl, out var xh);
            Vector.Widen(new Vector<float>(g.Slice(i, w)) * vw, out var ghl, out var ghh);
            Vector.Widen(rsv, out var rl, out var rh);
            var dl = rl * (ghl - new Vector<double>(ma.Slice(i, h)) - xl * new Vector<double>(mb.Slice(i, h)));
            var dh = rh * (ghh - new Vector<double>(ma.Slice(i + h, h)) - xh * new Vector<double>(mb.Slice(i + h, h)));
            Vector.Narrow(dl, dh).CopyTo(dx.Slice(i, w));
        }
        for (; i < x.Length; i++)
        {
            double xhat = (x[i] - mu[i]) * rs[i];
            dx[i] = (float)(rs[i] * (g[i] * wc - ma[i] - xhat * mb[i]));
        }
    }

    /// <summary>The dx pass before <see cref="LayerNormChannelsFirstMeansOnce"/>: dx = rs * (g*w - a/C - xhat * bsum / C)
    /// over one channel plane, in double, rounded once.</summary>
    private static void LncfBackwardDxDividing(ReadOnlySpan<float> x, ReadOnlySpan<float> g, ReadOnlySpan<float> mu,
        ReadOnlySpan<float> rs, float wc, ReadOnlySpan<double> a, ReadOnlySpan<double> bsum, int c, Span<float> dx)
    {
        int i = 0, w = Vector<float>.Count, h = Vector<double>.Count;
        var vw = new Vector<float>(wc);
        var vc = new Vector<double>((double)c);
        for (; i + w <= x.Length; i += w)
        {
            var rsv = new Vector<float>(rs.Slice(i, w));
            var xhat = (new Vector<float>(x.Slice(i, w)) - new Vector<float>(mu.Slice(i, w))) * rsv;
            Vector.Widen(xhat, out var xl, out var xh);
            Vector.Widen(new Vector<float>(g.Slice(i, w)) * vw, out var ghl, out var ghh);
            Vector.Widen(rsv, out var rl, out var rh);
            var dl = rl * (ghl - new Vector<double>(a.Slice(i, h)) / vc - xl * new Vector<double>(bsum.Slice(i, h)) / vc);
            var dh = rh * (ghh - new Vector<double>(a.Slice(i + h, h)) / vc - xh * new Vector<double>(bsum.Slice(i + h, h)) / vc);
            Vector.Narrow(dl, dh).CopyTo(dx.Slice(i, w));
        }
        for (; i < x.Length; i++)
        {
            double xhat = (x[i] - mu[i]) * rs[i];
            dx[i] = (float)(rs[i] * (g[i] * wc - a[i] / c - xhat * bsum[i] / c));
        }
    }
}
