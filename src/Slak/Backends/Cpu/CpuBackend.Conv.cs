// Matrix multiply and convolution entry points of the CPU backend. They validate nothing (Slak.F did) and forward
// to the span kernels: CpuGemm, CpuConv2d (dense), CpuDwConv (depthwise, large rectangular kernels).
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, Tensor b, float beta, Tensor c) =>
        InterimKernels.Sgemm(transA, transB, m, n, k, alpha, S(a), transA ? m : k, S(b), transB ? k : n, beta, S(c), n);

    /// <inheritdoc />
    public void Conv2dForward(Tensor x, Tensor w, Tensor? bias, Tensor y, int strideH, int strideW, int padH, int padW) =>
        InterimKernels.Conv2dForward(x, w, bias, y, strideH, strideW, padH, padW);

    /// <inheritdoc />
    public void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int strideH, int strideW, int padH, int padW) =>
        InterimKernels.Conv2dBackwardData(dy, w, dx, strideH, strideW, padH, padW);

    /// <inheritdoc />
    public void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor? dbias, int strideH, int strideW, int padH, int padW) =>
        InterimKernels.Conv2dBackwardFilter(x, dy, dw, dbias, strideH, strideW, padH, padW);

    /// <inheritdoc />
    public void DwConv2dForward(Tensor x, Tensor w, Tensor? mask, Tensor y) => InterimKernels.DwForward(x, w, mask, y);

    /// <inheritdoc />
    public void DwConv2dBackwardData(Tensor dy, Tensor w, Tensor? mask, Tensor dx) => InterimKernels.DwBackwardData(dy, w, mask, dx);

    /// <inheritdoc />
    public void DwConv2dBackwardFilter(Tensor x, Tensor dy, Tensor? mask, Tensor dw, bool skipMasked) =>
        InterimKernels.DwBackwardFilter(x, dy, mask, dw, skipMasked);
}

/// <summary>Plain, correct kernels used until the optimized span kernels are wired in.</summary>
internal static class InterimKernels
{
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, Span<float> a, int lda,
                             Span<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        float[] bt;
        if (transB)
        {
            bt = new float[k * n];
            for (int p = 0; p < k; p++) for (int j = 0; j < n; j++) bt[p * n + j] = b[j * ldb + p];
        }
        else
        {
            bt = new float[k * n];
            for (int p = 0; p < k; p++) b.Slice(p * ldb, n).CopyTo(bt.AsSpan(p * n, n));
        }
        var aa = a.ToArray();
        var cc = new float[(long)m * n];
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) cc[(long)i * n + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
        CpuParallel.For(0, m, i =>
        {
            var row = cc.AsSpan(i * n, n);
            for (int p = 0; p < k; p++)
            {
                float av = alpha * (transA ? aa[p * lda + i] : aa[i * lda + p]);
                if (av != 0) TensorPrimitives.MultiplyAdd(bt.AsSpan(p * n, n), av, row, row);
            }
        });
        for (int i = 0; i < m; i++) cc.AsSpan(i * n, n).CopyTo(c.Slice(i * ldc, n));
    }

    public static void Conv2dForward(Tensor x, Tensor w, Tensor? bias, Tensor y, int sh, int sw, int ph, int pw)
    {
        int n = x.Size(0), ci = x.Size(1), h = x.Size(2), wd = x.Size(3);
        int co = w.Size(0), kh = w.Size(2), kw = w.Size(3), oh = y.Size(2), ow = y.Size(3);
        var xs = x.Data.ToArray(); var ws = w.Data.ToArray(); var bs = bias?.Data.ToArray();
        var ys = new float[y.Numel];
        CpuParallel.For(0, n * co, no =>
        {
            int img = no / co, o = no % co;
            for (int r = 0; r < oh; r++)
                for (int q = 0; q < ow; q++)
                {
                    double acc = bs is null ? 0 : bs[o];
                    for (int c = 0; c < ci; c++)
                        for (int i = 0; i < kh; i++)
                        {
                            int hi = r * sh - ph + i;
                            if (hi < 0 || hi >= h) continue;
                            for (int j = 0; j < kw; j++)
                            {
                                int wi = q * sw - pw + j;
                                if (wi < 0 || wi >= wd) continue;
                                acc += xs[((img * ci + c) * h + hi) * wd + wi] * ws[((o * ci + c) * kh + i) * kw + j];
                            }
                        }
                    ys[((img * co + o) * oh + r) * ow + q] = (float)acc;
                }
        });
        ys.CopyTo(y.Data);
    }

    public static void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int sh, int sw, int ph, int pw)
    {
        int n = dx.Size(0), ci = dx.Size(1), h = dx.Size(2), wd = dx.Size(3);
        int co = w.Size(0), kh = w.Size(2), kw = w.Size(3), oh = dy.Size(2), ow = dy.Size(3);
        var g = dy.Data.ToArray(); var ws = w.Data.ToArray();
        var d = new float[dx.Numel];
        CpuParallel.For(0, n * ci, nc =>
        {
            int img = nc / ci, c = nc % ci;
            for (int o = 0; o < co; o++)
                for (int r = 0; r < oh; r++)
                    for (int q = 0; q < ow; q++)
                    {
                        float gv = g[((img * co + o) * oh + r) * ow + q];
                        for (int i = 0; i < kh; i++)
                        {
                            int hi = r * sh - ph + i;
                            if (hi < 0 || hi >= h) continue;
                            for (int j = 0; j < kw; j++)
                            {
                                int wi = q * sw - pw + j;
                                if (wi < 0 || wi >= wd) continue;
                                d[((img * ci + c) * h + hi) * wd + wi] += gv * ws[((o * ci + c) * kh + i) * kw + j];
                            }
                        }
                    }
        });
        d.CopyTo(dx.Data);
    }

    public static void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor? dbias, int sh, int sw, int ph, int pw)
    {
        int n = x.Size(0), ci = x.Size(1), h = x.Size(2), wd = x.Size(3);
        int co = dw.Size(0), kh = dw.Size(2), kw = dw.Size(3), oh = dy.Size(2), ow = dy.Size(3);
        var xs = x.Data.ToArray(); var g = dy.Data.ToArray();
        var d = new float[dw.Numel];
        var db = new float[co];
        CpuParallel.For(0, co, o =>
        {
            double bsum = 0;
            for (int img = 0; img < n; img++)
                for (int r = 0; r < oh; r++)
                    for (int q = 0; q < ow; q++)
                    {
                        float gv = g[((img * co + o) * oh + r) * ow + q];
                        bsum += gv;
                        for (int c = 0; c < ci; c++)
                            for (int i = 0; i < kh; i++)
                            {
                                int hi = r * sh - ph + i;
                                if (hi < 0 || hi >= h) continue;
                                for (int j = 0; j < kw; j++)
                                {
                                    int wi = q * sw - pw + j;
                                    if (wi < 0 || wi >= wd) continue;
                                    d[((o * ci + c) * kh + i) * kw + j] += gv * xs[((img * ci + c) * h + hi) * wd + wi];
                                }
                            }
                    }
            db[o] = (float)bsum;
        });
        d.CopyTo(dw.Data);
        if (dbias is not null) db.CopyTo(dbias.Data);
    }

    private static float[] Effective(Tensor w, Tensor? mask)
    {
        var ws = w.Data.ToArray();
        if (mask is not null) { var m = mask.Data; for (int i = 0; i < ws.Length; i++) ws[i] *= m[i]; }
        return ws;
    }

    public static void DwForward(Tensor x, Tensor w, Tensor? mask, Tensor y)
    {
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), wd = x.Size(3), kh = w.Size(2), kw = w.Size(3);
        var ws = Effective(w, mask); var xs = x.Data.ToArray(); var ys = new float[y.Numel];
        CpuParallel.For(0, n * c, plane =>
        {
            int ch = plane % c;
            for (int r = 0; r < h; r++)
                for (int q = 0; q < wd; q++)
                {
                    float acc = 0;
                    for (int i = 0; i < kh; i++)
                    {
                        int hi = r - kh / 2 + i;
                        if (hi < 0 || hi >= h) continue;
                        for (int j = 0; j < kw; j++)
                        {
                            int wi = q - kw / 2 + j;
                            if (wi < 0 || wi >= wd) continue;
                            acc += xs[(plane * h + hi) * wd + wi] * ws[(ch * kh + i) * kw + j];
                        }
                    }
                    ys[(plane * h + r) * wd + q] = acc;
                }
        });
        ys.CopyTo(y.Data);
    }

    public static void DwBackwardData(Tensor dy, Tensor w, Tensor? mask, Tensor dx)
    {
        int n = dx.Size(0), c = dx.Size(1), h = dx.Size(2), wd = dx.Size(3), kh = w.Size(2), kw = w.Size(3);
        var ws = Effective(w, mask); var g = dy.Data.ToArray(); var d = new float[dx.Numel];
        CpuParallel.For(0, n * c, plane =>
        {
            int ch = plane % c;
            for (int r = 0; r < h; r++)
                for (int q = 0; q < wd; q++)
                {
                    float gv = g[(plane * h + r) * wd + q];
                    for (int i = 0; i < kh; i++)
                    {
                        int hi = r - kh / 2 + i;
                        if (hi < 0 || hi >= h) continue;
                        for (int j = 0; j < kw; j++)
                        {
                            int wi = q - kw / 2 + j;
                            if (wi < 0 || wi >= wd) continue;
                            d[(plane * h + hi) * wd + wi] += gv * ws[(ch * kh + i) * kw + j];
                        }
                    }
                }
        });
        d.CopyTo(dx.Data);
    }

    public static void DwBackwardFilter(Tensor x, Tensor dy, Tensor? mask, Tensor dw, bool skipMasked)
    {
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), wd = x.Size(3), kh = dw.Size(2), kw = dw.Size(3);
        var xs = x.Data.ToArray(); var g = dy.Data.ToArray(); var d = new float[dw.Numel];
        var m = mask?.Data.ToArray();
        CpuParallel.For(0, c, ch =>
        {
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                {
                    if (skipMasked && m is not null && m[(ch * kh + i) * kw + j] == 0) continue;
                    double acc = 0;
                    for (int img = 0; img < n; img++)
                    {
                        int plane = img * c + ch;
                        for (int r = 0; r < h; r++)
                        {
                            int hi = r - kh / 2 + i;
                            if (hi < 0 || hi >= h) continue;
                            for (int q = 0; q < wd; q++)
                            {
                                int wi = q - kw / 2 + j;
                                if (wi < 0 || wi >= wd) continue;
                                acc += g[(plane * h + r) * wd + q] * xs[(plane * h + hi) * wd + wi];
                            }
                        }
                    }
                    d[(ch * kh + i) * kw + j] = (float)acc;
                }
        });
        d.CopyTo(dw.Data);
    }
}
