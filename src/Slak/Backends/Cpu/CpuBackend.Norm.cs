// Normalization kernels of the CPU backend: LayerNorm over the last dim (block norm, head norm), LayerNorm over the
// channels of an NCHW tensor (stem/downsample norms), BatchNorm2d (one per large-kernel branch). Statistics are
// accumulated in double; the per-row/per-pixel/per-channel work is split over threads.
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
                double sum = 0;
                for (int j = 0; j < c; j++) sum += xs[j];
                double mu = sum / c, sq = 0;
                for (int j = 0; j < c; j++) { double d = xs[j] - mu; sq += d * d; }
                float rs = (float)(1.0 / Math.Sqrt(sq / c + eps)), m = (float)mu;
                for (int j = 0; j < c; j++) ys[j] = (xs[j] - m) * rs * w[j] + b[j];
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
        CpuParallel.For(0, RowBlocks(rows, c), blk =>
        {
            var (r0, r1) = RowRange(blk, rows, c);
            var w = S(weight);
            for (int r = r0; r < r1; r++)
            {
                var xs = S(x).Slice(r * c, c);
                var g = S(dy).Slice(r * c, c);
                var d = S(dx).Slice(r * c, c);
                float m = S(mean)[r], rs = S(rstd)[r];
                double a = 0, bsum = 0;
                for (int j = 0; j < c; j++)
                {
                    double xhat = (xs[j] - m) * rs, gh = g[j] * w[j];
                    a += gh;
                    bsum += gh * xhat;
                }
                float ma = (float)(a / c), mb = (float)(bsum / c);
                for (int j = 0; j < c; j++)
                {
                    float xhat = (xs[j] - m) * rs;
                    d[j] = rs * (g[j] * w[j] - ma - xhat * mb);
                }
            }
        });
        var dwAcc = S(dweight);
        ColumnReduce(rows, c, dwAcc, (r, acc) =>
        {
            var xs = S(x).Slice(r * c, c);
            var g = S(dy).Slice(r * c, c);
            float m = S(mean)[r], rs = S(rstd)[r];
            for (int j = 0; j < c; j++) acc[j] += (double)g[j] * ((xs[j] - m) * rs);
        });
        SumToLastDim(dy, dbias);
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

    /// <inheritdoc />
    public void BatchNormTrain(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                               float momentum, float eps, Tensor y, Tensor saveMean, Tensor saveInvStd)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3);
        long count = (long)n * hw;
        CpuParallel.For(0, c, ch =>
        {
            double sum = 0;
            for (int img = 0; img < n; img++)
            {
                var plane = S(x).Slice((img * c + ch) * hw, hw);
                for (int p = 0; p < hw; p++) sum += plane[p];
            }
            double mu = sum / count, sq = 0;
            for (int img = 0; img < n; img++)
            {
                var plane = S(x).Slice((img * c + ch) * hw, hw);
                for (int p = 0; p < hw; p++) { double d = plane[p] - mu; sq += d * d; }
            }
            double var = sq / count;
            float inv = (float)(1.0 / Math.Sqrt(var + eps)), m = (float)mu;
            float scale = S(weight)[ch] * inv, shift = S(bias)[ch] - m * scale;
            for (int img = 0; img < n; img++)
            {
                var plane = S(x).Slice((img * c + ch) * hw, hw);
                var outp = S(y).Slice((img * c + ch) * hw, hw);
                for (int p = 0; p < hw; p++) outp[p] = plane[p] * scale + shift;
            }
            S(saveMean)[ch] = m;
            S(saveInvStd)[ch] = inv;
            double unbiased = count > 1 ? var * count / (count - 1) : var;
            S(runningMean)[ch] = (float)((1 - momentum) * S(runningMean)[ch] + momentum * mu);
            S(runningVar)[ch] = (float)((1 - momentum) * S(runningVar)[ch] + momentum * unbiased);
        });
    }

    /// <inheritdoc />
    public void BatchNormEval(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, float eps, Tensor y)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3);
        CpuParallel.For(0, n * c, plane =>
        {
            int ch = plane % c;
            float scale = S(weight)[ch] / MathF.Sqrt(S(runningVar)[ch] + eps);
            float shift = S(bias)[ch] - S(runningMean)[ch] * scale;
            var xs = S(x).Slice(plane * hw, hw);
            var ys = S(y).Slice(plane * hw, hw);
            for (int p = 0; p < hw; p++) ys[p] = xs[p] * scale + shift;
        });
    }

    /// <inheritdoc />
    public void BatchNormBackward(Tensor x, Tensor weight, Tensor saveMean, Tensor saveInvStd, Tensor dy,
                                  Tensor dx, Tensor dweight, Tensor dbias)
    {
        int n = x.Size(0), c = x.Size(1), hw = x.Size(2) * x.Size(3);
        long count = (long)n * hw;
        CpuParallel.For(0, c, ch =>
        {
            float m = S(saveMean)[ch], inv = S(saveInvStd)[ch];
            double sdy = 0, sdyx = 0;
            for (int img = 0; img < n; img++)
            {
                var xs = S(x).Slice((img * c + ch) * hw, hw);
                var g = S(dy).Slice((img * c + ch) * hw, hw);
                for (int p = 0; p < hw; p++) { sdy += g[p]; sdyx += g[p] * ((xs[p] - m) * inv); }
            }
            S(dweight)[ch] = (float)sdyx;
            S(dbias)[ch] = (float)sdy;
            float k = S(weight)[ch] * inv;
            float meanDy = (float)(sdy / count), meanDyX = (float)(sdyx / count);
            for (int img = 0; img < n; img++)
            {
                var xs = S(x).Slice((img * c + ch) * hw, hw);
                var g = S(dy).Slice((img * c + ch) * hw, hw);
                var d = S(dx).Slice((img * c + ch) * hw, hw);
                for (int p = 0; p < hw; p++) d[p] = k * (g[p] - meanDy - (xs[p] - m) * inv * meanDyX);
            }
        });
    }
}
