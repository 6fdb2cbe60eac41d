// Normalization kernels of the CPU backend: LayerNorm over the last dim (block norm, head norm), LayerNorm over the
// channels of an NCHW tensor (stem/downsample norms); BatchNorm2d is in CpuBackend.BatchNorm.cs. Rows and planes
// are processed with TensorPrimitives (SIMD); cross-plane and cross-row statistics are accumulated in double; the
// per-row / per-image / per-channel work is split over threads.
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

public sealed partial class CpuBackend
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
        CpuParallel.For(0, n, img =>
        {
            var xs = S(x).Slice(img * c * hw, c * hw);
            var ys = S(y).Slice(img * c * hw, c * hw);
            var sum = new double[hw];
            var sq = new double[hw];
            for (int ch = 0; ch < c; ch++)
            {
                var plane = xs.Slice(ch * hw, hw);
                for (int p = 0; p < hw; p++) sum[p] += plane[p];
            }
            var mu = S(mean).Slice(img * hw, hw);
            var rs = S(rstd).Slice(img * hw, hw);
            for (int p = 0; p < hw; p++) mu[p] = (float)(sum[p] / c);
            for (int ch = 0; ch < c; ch++)
            {
                var plane = xs.Slice(ch * hw, hw);
                for (int p = 0; p < hw; p++) { double d = plane[p] - (sum[p] / c); sq[p] += d * d; }
            }
            for (int p = 0; p < hw; p++) rs[p] = (float)(1.0 / Math.Sqrt(sq[p] / c + eps));
            var w = S(weight); var b = S(bias);
            for (int ch = 0; ch < c; ch++)
            {
                var plane = xs.Slice(ch * hw, hw);
                var outp = ys.Slice(ch * hw, hw);
                float wc = w[ch], bc = b[ch];
                for (int p = 0; p < hw; p++) outp[p] = (plane[p] - mu[p]) * rs[p] * wc + bc;
            }
        });
    }

    /// <inheritdoc />
    public void LayerNormChannelsFirstBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dy,
                                               Tensor dx, Tensor dweight, Tensor dbias)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3);
        var dwParts = new double[n][];
        var dbParts = new double[n][];
        CpuParallel.For(0, n, img =>
        {
            int baseOff = img * c * hw;
            var mu = S(mean).Slice(img * hw, hw);
            var rs = S(rstd).Slice(img * hw, hw);
            var w = S(weight);
            var a = new double[hw];
            var bsum = new double[hw];
            var dwp = new double[c];
            var dbp = new double[c];
            for (int ch = 0; ch < c; ch++)
            {
                var xs = S(x).Slice(baseOff + ch * hw, hw);
                var g = S(dy).Slice(baseOff + ch * hw, hw);
                double dwc = 0, dbc = 0;
                for (int p = 0; p < hw; p++)
                {
                    double xhat = (xs[p] - mu[p]) * rs[p];
                    double gh = g[p] * w[ch];
                    a[p] += gh;
                    bsum[p] += gh * xhat;
                    dwc += g[p] * xhat;
                    dbc += g[p];
                }
                dwp[ch] = dwc;
                dbp[ch] = dbc;
            }
            for (int ch = 0; ch < c; ch++)
            {
                var xs = S(x).Slice(baseOff + ch * hw, hw);
                var g = S(dy).Slice(baseOff + ch * hw, hw);
                var d = S(dx).Slice(baseOff + ch * hw, hw);
                for (int p = 0; p < hw; p++)
                {
                    double xhat = (xs[p] - mu[p]) * rs[p];
                    d[p] = (float)(rs[p] * (g[p] * w[ch] - a[p] / c - xhat * bsum[p] / c));
                }
            }
            dwParts[img] = dwp;
            dbParts[img] = dbp;
        });
        for (int ch = 0; ch < c; ch++)
        {
            double sw = 0, sb = 0;
            for (int img = 0; img < n; img++) { sw += dwParts[img][ch]; sb += dbParts[img][ch]; }
            S(dweight)[ch] = (float)sw;
            S(dbias)[ch] = (float)sb;
        }
    }
}
