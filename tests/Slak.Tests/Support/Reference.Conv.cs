// Reference convolutions in float64: dense Conv2d (stride, zero padding, optional bias) and the depthwise "same"
// convolution with rectangular odd kernels and an optional weight mask, written as the textbook sums.
namespace Slak.Tests.Support;

public static partial class Reference
{
    /// <summary>Dense conv: x (N, Cin, H, W), w (Cout, Cin, Kh, Kw), bias (Cout) or null.</summary>
    public static RefTensor Conv2d(RefTensor x, RefTensor w, RefTensor? bias, int strideH, int strideW, int padH, int padW)
    {
        int n = x.Size(0), ci = x.Size(1), h = x.Size(2), wd = x.Size(3);
        int co = w.Size(0), kh = w.Size(2), kw = w.Size(3);
        int oh = (h + 2 * padH - kh) / strideH + 1, ow = (wd + 2 * padW - kw) / strideW + 1;
        var y = new RefTensor(n, co, oh, ow);
        for (int b = 0; b < n; b++)
            for (int o = 0; o < co; o++)
                for (int r = 0; r < oh; r++)
                    for (int q = 0; q < ow; q++)
                    {
                        double s = bias is null ? 0 : bias[o];
                        for (int c = 0; c < ci; c++)
                            for (int i = 0; i < kh; i++)
                                for (int j = 0; j < kw; j++)
                                {
                                    int hi = r * strideH - padH + i, wi = q * strideW - padW + j;
                                    if (hi >= 0 && hi < h && wi >= 0 && wi < wd) s += x[b, c, hi, wi] * w[o, c, i, j];
                                }
                        y[b, o, r, q] = s;
                    }
        return y;
    }

    /// <summary>Depthwise conv, stride 1, padding (Kh/2, Kw/2): x (N, C, H, W), w (C, 1, Kh, Kw), mask like w or
    /// null.</summary>
    public static RefTensor DepthwiseConv2d(RefTensor x, RefTensor w, RefTensor? mask)
    {
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), wd = x.Size(3), kh = w.Size(2), kw = w.Size(3);
        var y = new RefTensor(x.Shape);
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
                for (int r = 0; r < h; r++)
                    for (int q = 0; q < wd; q++)
                    {
                        double s = 0;
                        for (int i = 0; i < kh; i++)
                            for (int j = 0; j < kw; j++)
                            {
                                int hi = r - kh / 2 + i, wi = q - kw / 2 + j;
                                if (hi < 0 || hi >= h || wi < 0 || wi >= wd) continue;
                                double m = mask is null ? 1 : mask[ch, 0, i, j];
                                s += x[b, ch, hi, wi] * w[ch, 0, i, j] * m;
                            }
                        y[b, ch, r, q] = s;
                    }
        return y;
    }

    /// <summary>Weight gradient of the depthwise "same" convolution over flat NCHW arrays:
    /// dw[c, i, j] = sum over images and outputs of dy[img, c, oh, ow] * x[img, c, oh + i - kh/2, ow + j - kw/2]
    /// (zero padding), in float64; dw is (C, Kh, Kw).</summary>
    public static double[] DepthwiseWeightGrad(float[] x, float[] dy, int n, int c, int h, int w, int kh, int kw)
    {
        var dw = new double[c * kh * kw];
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                {
                    double s = 0;
                    for (int img = 0; img < n; img++)
                    {
                        long plane = ((long)img * c + ch) * h * w;
                        for (int oh = 0; oh < h; oh++)
                        {
                            int ih = oh + i - kh / 2;
                            if (ih < 0 || ih >= h) continue;
                            for (int ow = 0; ow < w; ow++)
                            {
                                int iw = ow + j - kw / 2;
                                if (iw >= 0 && iw < w) s += (double)x[plane + ih * w + iw] * dy[plane + oh * w + ow];
                            }
                        }
                    }
                    dw[(ch * kh + i) * kw + j] = s;
                }
        return dw;
    }
}
