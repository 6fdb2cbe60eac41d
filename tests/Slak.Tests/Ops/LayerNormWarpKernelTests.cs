// LayerNorm forward and backward through the backend against float64 references at the shapes that break the CUDA
// kernels of norm.cu. Rows of at most 1,024 take one warp per row (one kernel per row class 128 / 256 / 512 / 1,024;
// 128-bit accesses when the width is a multiple of 4, scalar otherwise); the backward fuses dx with per-chunk
// parameter partials of 4-64 rows, summed in chunk order; wider rows take the block-per-row kernels. Channels-first
// parameter gradients come from partials per (image, 1,024-pixel chunk). Breakers: width 1, widths not a multiple of
// 4 or 32, each class edge (128, 129, 257, 1,024) and just over, one row, many chunks, a mean 100 times the spread,
// 1x1 maps and planes over one pixel chunk. Outputs are NaN-poisoned; repeats agree bit for bit.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class LayerNormWarpKernelTests(string device) : DeviceTest(device)
{
    private const float Eps = 1e-5f;

    private static readonly object[] RowShapes =
    [
        new object[] { 1, 1, 0.0 },
        new object[] { 3, 5, 0.0 },
        new object[] { 70, 124, 100.0 },
        new object[] { 33, 249, -3.0 },
        new object[] { 9, 998, 0.5 },
        new object[] { 5, 1024, 0.0 },
        new object[] { 300, 36, 1.0 },
        new object[] { 4, 128, 0.0 },
        new object[] { 4, 129, 0.0 },
        new object[] { 4, 257, 0.0 },
        new object[] { 6, 500, 0.0 },
        new object[] { 2, 1031, 2.0 },
    ];

    private static readonly object[] ChannelsFirstShapes =
    [
        new object[] { 1, 3, 1, 1, 0.0 },
        new object[] { 2, 5, 7, 7, 100.0 },
        new object[] { 3, 4, 33, 35, -1.0 },
        new object[] { 1, 37, 3, 3, 0.5 },
    ];

    [TestCaseSource(nameof(RowShapes))]
    [KernelParity("layernorm_rows128_fwd_kernel", "layernorm_rows256_fwd_kernel", "layernorm_rows512_fwd_kernel",
                  "layernorm_rows1024_fwd_kernel", "layernorm_rows128_bwd_kernel", "layernorm_rows256_bwd_kernel",
                  "layernorm_rows512_bwd_kernel", "layernorm_rows1024_bwd_kernel", "layernorm_param_finalize_kernel",
                  "layernorm_fwd_kernel", "layernorm_bwd_data_kernel", "layernorm_bwd_param_partial_kernel")]
    public void LastDimMatchesFloat64(int rows, int c, double mu)
    {
        string shape = $"({rows},{c}), x ~ N({mu}, 1)";
        var (x, rx) = RandN([rows, c], 1, mu);
        var (w, rw) = RandN([c]);
        var (b, rb) = RandN([c]);
        var (dy, rdy) = RandN([rows, c]);
        var y = Poisoned(rows, c);
        var mean = Poisoned(rows);
        var rstd = Poisoned(rows);
        x.Backend.LayerNormLastDim(x, w, b, Eps, y, mean, rstd);
        Expect.AllClose(y, Reference.LayerNorm(rx, rw, rb, Eps), 1e-4, 1e-4, Ctx($"y {shape}"));

        var (em, er, edx, edw, edb) = LastDimBackward(rx.Data, rw.Data, rdy.Data, rows, c);
        Expect.AllClose(mean.ToArray(), em, 1e-5, 1e-6, Ctx($"mean {shape}"));
        Expect.AllClose(rstd.ToArray(), er, 1e-5, 1e-4, Ctx($"1/std {shape}"));
        var dx = Poisoned(rows, c);
        var dw = Poisoned(c);
        var db = Poisoned(c);
        x.Backend.LayerNormLastDimBackward(x, w, mean, rstd, dy, dx, dw, db);
        Expect.AllClose(dx.ToArray(), edx, 1e-4, 1e-3, Ctx($"dx {shape}"));
        Expect.AllClose(dw.ToArray(), edw, 1e-4 * rows, 1e-4, Ctx($"dweight {shape}"));
        Expect.AllClose(db.ToArray(), edb, 1e-5 * rows, 1e-5, Ctx($"dbias {shape}"));

        var dx2 = Poisoned(rows, c);
        var dw2 = Poisoned(c);
        var db2 = Poisoned(c);
        x.Backend.LayerNormLastDimBackward(x, w, mean, rstd, dy, dx2, dw2, db2);
        Expect.Exactly(dx2.ToArray(), dx.ToArray(), Ctx($"dx repeat {shape}"));
        Expect.Exactly(dw2.ToArray(), dw.ToArray(), Ctx($"dweight repeat {shape}"));
        Expect.Exactly(db2.ToArray(), db.ToArray(), Ctx($"dbias repeat {shape}"));
    }

    [TestCaseSource(nameof(ChannelsFirstShapes))]
    [KernelParity("layernorm_cf_fwd_kernel", "layernorm_cf_bwd_data_kernel", "layernorm_cf_bwd_param_partial_kernel",
                  "layernorm_param_finalize_kernel")]
    public void ChannelsFirstMatchesFloat64(int n, int c, int h, int wd, double mu)
    {
        string shape = $"{n}x{c}x{h}x{wd}, x ~ N({mu}, 1)";
        int hw = h * wd;
        var (x, rx) = RandN([n, c, h, wd], 1, mu);
        var (w, rw) = RandN([c]);
        var (b, rb) = RandN([c]);
        var (dy, rdy) = RandN([n, c, h, wd]);
        var y = Poisoned(n, c, h, wd);
        var mean = Poisoned(n, h, wd);
        var rstd = Poisoned(n, h, wd);
        x.Backend.LayerNormChannelsFirst(x, w, b, Eps, y, mean, rstd);
        Expect.AllClose(y, Reference.LayerNormChannelsFirst(rx, rw, rb, Eps), 1e-4, 1e-4, Ctx($"y {shape}"));

        // The same arithmetic as rows of c after moving the channels last.
        var xl = ChannelsLast(rx.Data, n, c, hw);
        var gl = ChannelsLast(rdy.Data, n, c, hw);
        var (_, _, edxl, edw, edb) = LastDimBackward(xl, rw.Data, gl, n * hw, c);
        var dx = Poisoned(n, c, h, wd);
        var dw = Poisoned(c);
        var db = Poisoned(c);
        x.Backend.LayerNormChannelsFirstBackward(x, w, mean, rstd, dy, dx, dw, db);
        Expect.AllClose(dx.ToArray(), ChannelsFirst(edxl, n, c, hw), 1e-4, 1e-3, Ctx($"dx {shape}"));
        Expect.AllClose(dw.ToArray(), edw, 1e-4 * n * hw, 1e-4, Ctx($"dweight {shape}"));
        Expect.AllClose(db.ToArray(), edb, 1e-5 * n * hw, 1e-5, Ctx($"dbias {shape}"));

        var dw2 = Poisoned(c);
        var db2 = Poisoned(c);
        x.Backend.LayerNormChannelsFirstBackward(x, w, mean, rstd, dy, Poisoned(n, c, h, wd), dw2, db2);
        Expect.Exactly(dw2.ToArray(), dw.ToArray(), Ctx($"dweight repeat {shape}"));
        Expect.Exactly(db2.ToArray(), db.ToArray(), Ctx($"dbias repeat {shape}"));
    }

    // Float64 LayerNorm over rows of c: mean, 1/std, dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w,
    // dweight = sum dy * xhat, dbias = sum dy.
    private static (double[] Mean, double[] Rstd, double[] Dx, double[] Dw, double[] Db) LastDimBackward(
        double[] x, double[] w, double[] dy, int rows, int c)
    {
        var mean = new double[rows];
        var rstd = new double[rows];
        var dx = new double[x.Length];
        var dw = new double[c];
        var db = new double[c];
        var xhat = new double[c];
        for (int r = 0; r < rows; r++)
        {
            int o = r * c;
            double s = 0;
            for (int j = 0; j < c; j++) s += x[o + j];
            double m = s / c, sq = 0;
            for (int j = 0; j < c; j++) sq += (x[o + j] - m) * (x[o + j] - m);
            double rs = 1 / Math.Sqrt(sq / c + Eps);
            mean[r] = m;
            rstd[r] = rs;
            double a = 0, bsum = 0;
            for (int j = 0; j < c; j++)
            {
                xhat[j] = (x[o + j] - m) * rs;
                double g = dy[o + j] * w[j];
                a += g;
                bsum += g * xhat[j];
                dw[j] += dy[o + j] * xhat[j];
                db[j] += dy[o + j];
            }
            for (int j = 0; j < c; j++) dx[o + j] = rs * (dy[o + j] * w[j] - a / c - xhat[j] * bsum / c);
        }
        return (mean, rstd, dx, dw, db);
    }

    private static double[] ChannelsLast(double[] v, int n, int c, int hw)
    {
        var o = new double[v.Length];
        for (int b = 0; b < n; b++) for (int ch = 0; ch < c; ch++) for (int p = 0; p < hw; p++)
            o[((long)b * hw + p) * c + ch] = v[((long)b * c + ch) * hw + p];
        return o;
    }

    private static double[] ChannelsFirst(double[] v, int n, int c, int hw)
    {
        var o = new double[v.Length];
        for (int b = 0; b < n; b++) for (int ch = 0; ch < c; ch++) for (int p = 0; p < hw; p++)
            o[((long)b * c + ch) * hw + p] = v[((long)b * hw + p) * c + ch];
        return o;
    }
}
