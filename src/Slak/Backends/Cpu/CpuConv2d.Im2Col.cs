// im2col / col2im of CpuConv2d. The column matrix of one image is (Cin*Kh*Kw, OutH*OutW): row (ci, kh, kw) holds,
// for every output pixel, the input value under that tap (0 in the padding). When kernel == stride and there is
// no padding (SLaK's stem and downsampling layers) windows neither overlap nor leave the image, so both directions
// are plain strided copies.
namespace Slak.Backends.Cpu;

internal static partial class CpuConv2d
{
    private static bool IsPatchify(Conv2dShape s)
        => s.Kh == s.StrideH && s.Kw == s.StrideW && s.PadH == 0 && s.PadW == 0;

    private static ReadOnlySpan<float> Im2Col(Conv2dShape s, ReadOnlySpan<float> x, Span<float> col)
    {
        int oh = s.OutH, ow = s.OutW, p = oh * ow;
        if (IsPatchify(s))
        {
            for (int ci = 0; ci < s.Cin; ci++)
                for (int kh = 0; kh < s.Kh; kh++)
                    for (int kw = 0; kw < s.Kw; kw++)
                    {
                        var dst = col.Slice(((ci * s.Kh + kh) * s.Kw + kw) * p, p);
                        for (int y = 0; y < oh; y++)
                        {
                            var src = x.Slice((ci * s.H + y * s.Kh + kh) * s.W + kw);
                            var d = dst.Slice(y * ow, ow);
                            for (int xo = 0; xo < ow; xo++) d[xo] = src[xo * s.Kw];
                        }
                    }
            return col[..(s.Cin * s.Kh * s.Kw * p)];
        }

        for (int ci = 0; ci < s.Cin; ci++)
            for (int kh = 0; kh < s.Kh; kh++)
                for (int kw = 0; kw < s.Kw; kw++)
                {
                    var dst = col.Slice(((ci * s.Kh + kh) * s.Kw + kw) * p, p);
                    var (x0, x1) = ValidOutputRange(kw, s.PadW, s.StrideW, s.W, ow);
                    for (int y = 0; y < oh; y++)
                    {
                        var d = dst.Slice(y * ow, ow);
                        int ih = y * s.StrideH - s.PadH + kh;
                        if ((uint)ih >= (uint)s.H)
                        {
                            d.Clear();
                            continue;
                        }
                        var src = x.Slice((ci * s.H + ih) * s.W);
                        d[..x0].Clear();
                        d[x1..].Clear();
                        if (s.StrideW == 1)
                            src.Slice(x0 - s.PadW + kw, x1 - x0).CopyTo(d[x0..x1]);
                        else
                            for (int xo = x0; xo < x1; xo++) d[xo] = src[xo * s.StrideW - s.PadW + kw];
                    }
                }
        return col[..(s.Cin * s.Kh * s.Kw * p)];
    }

    // Adds every column entry back onto the input pixel it was read from; dx is overwritten.
    private static void Col2Im(Conv2dShape s, ReadOnlySpan<float> col, Span<float> dx)
    {
        int oh = s.OutH, ow = s.OutW, p = oh * ow;
        dx.Clear();
        bool patchify = IsPatchify(s);
        for (int ci = 0; ci < s.Cin; ci++)
            for (int kh = 0; kh < s.Kh; kh++)
                for (int kw = 0; kw < s.Kw; kw++)
                {
                    var src = col.Slice(((ci * s.Kh + kh) * s.Kw + kw) * p, p);
                    if (patchify)
                    {
                        for (int y = 0; y < oh; y++)
                        {
                            var d = dx.Slice((ci * s.H + y * s.Kh + kh) * s.W + kw);
                            var c = src.Slice(y * ow, ow);
                            for (int xo = 0; xo < ow; xo++) d[xo * s.Kw] = c[xo];
                        }
                        continue;
                    }
                    var (x0, x1) = ValidOutputRange(kw, s.PadW, s.StrideW, s.W, ow);
                    for (int y = 0; y < oh; y++)
                    {
                        int ih = y * s.StrideH - s.PadH + kh;
                        if ((uint)ih >= (uint)s.H) continue;
                        var d = dx.Slice((ci * s.H + ih) * s.W);
                        var c = src.Slice(y * ow, ow);
                        for (int xo = x0; xo < x1; xo++) d[xo * s.StrideW - s.PadW + kw] += c[xo];
                    }
                }
    }

    // Output columns [x0, x1) whose tap kw lands inside the input row: 0 <= xo*stride - pad + kw < w.
    private static (int X0, int X1) ValidOutputRange(int kw, int pad, int stride, int w, int ow)
    {
        int x0 = Math.Max(0, (pad - kw + stride - 1) / stride);
        int x1 = Math.Min(ow, (w - 1 + pad - kw) / stride + 1);
        if (w - 1 + pad - kw < 0) x1 = 0;
        return (Math.Min(x0, ow), Math.Max(Math.Min(x0, ow), x1));
    }
}
