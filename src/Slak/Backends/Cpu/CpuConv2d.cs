// Dense (groups = 1) 2-D convolution on the CPU, NCHW float32: im2col + CpuGemm per image. SLaK's dense convs are
// the stem (4x4 stride 4) and the downsampling layers (2x2 stride 2), where kernel == stride and there is no
// padding: im2col is then a pure rearrangement (space-to-depth) done without bounds checks. Images run in
// parallel with single-threaded GEMMs when the batch covers the thread budget, else one image at a time with a
// multi-threaded GEMM. Patchify shapes (kernel == stride, no padding) go to CpuConv2d.Direct.cs (or, with
// SLAK_CONV2D_PATCHIFY=batched or without AVX-512, CpuConv2d.Batched.cs) instead.
using System.Buffers;

namespace Slak.Backends.Cpu;

/// <summary>Forward and backward kernels of a dense 2-D convolution (NCHW, weight (Cout, Cin, Kh, Kw)).</summary>
internal static partial class CpuConv2d
{
    /// <summary>y = conv(x, w) + bias. x: (N, Cin, H, W); w: (Cout, Cin, Kh, Kw); bias: (Cout) or empty;
    /// y: (N, Cout, OutH, OutW), overwritten.</summary>
    public static void Forward(Conv2dShape shape, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        ReadOnlySpan<float> bias, Span<float> y)
    {
        shape.Validate();
        CheckLength(x, shape.InputSize, nameof(x), "N*Cin*H*W");
        CheckLength(w, shape.WeightSize, nameof(w), "Cout*Cin*Kh*Kw");
        if (bias.Length != 0) CheckLength(bias, shape.Cout, nameof(bias), "Cout (or empty)");
        CheckLength(y, shape.OutputSize, nameof(y), "N*Cout*OutH*OutW");
        if (IsPatchify(shape))
        {
            if (DirectPatchify) DirectForward(shape, x, w, bias, y);
            else PatchifyForward(shape, x, w, bias, y);
            return;
        }
        unsafe
        {
            fixed (float* px = x)
            fixed (float* pw = w)
            fixed (float* pb = bias)
            fixed (float* py = y)
            {
                nint xp = (nint)px, wp = (nint)pw, bp = (nint)pb, yp = (nint)py;
                bool hasBias = bias.Length != 0;
                var s = shape;
                int p = s.OutH * s.OutW, ckk = s.Cin * s.Kh * s.Kw;
                ForImages(s, (n, gemmThreads, col) =>
                {
                    var xn = new ReadOnlySpan<float>((float*)xp + (long)n * s.Cin * s.H * s.W, s.Cin * s.H * s.W);
                    var yn = new Span<float>((float*)yp + (long)n * s.Cout * p, s.Cout * p);
                    var wSpan = new ReadOnlySpan<float>((float*)wp, s.Cout * ckk);
                    float beta = 0f;
                    if (hasBias)
                    {
                        for (int co = 0; co < s.Cout; co++) yn.Slice(co * p, p).Fill(((float*)bp)[co]);
                        beta = 1f;
                    }
                    ReadOnlySpan<float> b = IsPointwise(s) ? xn : Im2Col(s, xn, col);
                    CpuGemm.Sgemm(false, false, s.Cout, p, ckk, 1f, wSpan, ckk, b, p, beta, yn, p, gemmThreads);
                });
            }
        }
    }

    /// <summary>dx = conv_transpose(dy, w): gradient of the loss w.r.t. x. dy: (N, Cout, OutH, OutW);
    /// dx: (N, Cin, H, W), overwritten.</summary>
    public static void BackwardData(Conv2dShape shape, ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx)
    {
        shape.Validate();
        CheckLength(dy, shape.OutputSize, nameof(dy), "N*Cout*OutH*OutW");
        CheckLength(w, shape.WeightSize, nameof(w), "Cout*Cin*Kh*Kw");
        CheckLength(dx, shape.InputSize, nameof(dx), "N*Cin*H*W");
        if (IsPatchify(shape))
        {
            if (DirectPatchify) DirectBackwardData(shape, dy, w, dx);
            else PatchifyBackwardData(shape, dy, w, dx);
            return;
        }
        unsafe
        {
            fixed (float* pdy = dy)
            fixed (float* pw = w)
            fixed (float* pdx = dx)
            {
                nint dyp = (nint)pdy, wp = (nint)pw, dxp = (nint)pdx;
                var s = shape;
                int p = s.OutH * s.OutW, ckk = s.Cin * s.Kh * s.Kw, hw = s.H * s.W;
                ForImages(s, (n, gemmThreads, col) =>
                {
                    var dyn = new ReadOnlySpan<float>((float*)dyp + (long)n * s.Cout * p, s.Cout * p);
                    var dxn = new Span<float>((float*)dxp + (long)n * s.Cin * hw, s.Cin * hw);
                    var wSpan = new ReadOnlySpan<float>((float*)wp, s.Cout * ckk);
                    if (IsPointwise(s))
                    {
                        CpuGemm.Sgemm(true, false, ckk, p, s.Cout, 1f, wSpan, ckk, dyn, p, 0f, dxn, p, gemmThreads);
                        return;
                    }
                    // dcol (Cin*Kh*Kw, P) = W^T (CKK, Cout) * dy_n (Cout, P), then scattered back onto the image.
                    var dcol = col[..(ckk * p)];
                    CpuGemm.Sgemm(true, false, ckk, p, s.Cout, 1f, wSpan, ckk, dyn, p, 0f, dcol, p, gemmThreads);
                    Col2Im(s, dcol, dxn);
                });
            }
        }
    }

    /// <summary>dw = sum over images of dy_n * im2col(x_n)^T and dbias = sum of dy over N, OutH, OutW.
    /// x: (N, Cin, H, W); dy: (N, Cout, OutH, OutW); dw: (Cout, Cin, Kh, Kw), overwritten; dbias: (Cout), overwritten,
    /// or empty to skip it.</summary>
    public static void BackwardFilter(Conv2dShape shape, ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dw,
        Span<float> dbias)
    {
        shape.Validate();
        CheckLength(x, shape.InputSize, nameof(x), "N*Cin*H*W");
        CheckLength(dy, shape.OutputSize, nameof(dy), "N*Cout*OutH*OutW");
        CheckLength(dw, shape.WeightSize, nameof(dw), "Cout*Cin*Kh*Kw");
        if (dbias.Length != 0) CheckLength(dbias, shape.Cout, nameof(dbias), "Cout (or empty)");
        if (IsPatchify(shape))
        {
            if (DirectPatchify) DirectBackwardFilter(shape, x, dy, dw, dbias);
            else PatchifyBackwardFilter(shape, x, dy, dw, dbias);
            return;
        }
        var s = shape;
        int p = s.OutH * s.OutW, ckk = s.Cin * s.Kh * s.Kw, chw = s.Cin * s.H * s.W;

        // Images are split into fixed groups, each summing into its own partial dW, then the partials are added in
        // group order: the result does not depend on thread scheduling.
        int groups = Math.Min(s.N, CpuParallel.Threads);
        int perGroup = (s.N + groups - 1) / groups;
        groups = (s.N + perGroup - 1) / perGroup;
        int gemmThreads = groups == 1 ? CpuParallel.Threads : 1;
        int wSize = s.Cout * ckk;
        var partial = ArrayPool<float>.Shared.Rent((groups - 1) * wSize);
        try
        {
            unsafe
            {
                fixed (float* px = x)
                fixed (float* pdy = dy)
                fixed (float* pdw = dw)
                fixed (float* pPart = partial)
                {
                    nint xp = (nint)px, dyp = (nint)pdy, dwp = (nint)pdw, partP = (nint)pPart;
                    bool pointwise = IsPointwise(s);
                    CpuParallel.For(0, groups, g =>
                    {
                        float* acc = g == 0 ? (float*)dwp : (float*)partP + (long)(g - 1) * wSize;
                        var accSpan = new Span<float>(acc, wSize);
                        float[]? col = pointwise ? null : ArrayPool<float>.Shared.Rent(ckk * p);
                        try
                        {
                            int n0 = g * perGroup, n1 = Math.Min(s.N, n0 + perGroup);
                            for (int n = n0; n < n1; n++)
                            {
                                var xn = new ReadOnlySpan<float>((float*)xp + (long)n * chw, chw);
                                var dyn = new ReadOnlySpan<float>((float*)dyp + (long)n * s.Cout * p, s.Cout * p);
                                ReadOnlySpan<float> b = pointwise ? xn : Im2Col(s, xn, col!);
                                CpuGemm.Sgemm(false, true, s.Cout, ckk, p, 1f, dyn, p, b, p, n == n0 ? 0f : 1f,
                                    accSpan, ckk, gemmThreads);
                            }
                        }
                        finally
                        {
                            if (col is not null) ArrayPool<float>.Shared.Return(col);
                        }
                    });
                }
            }
            for (int g = 1; g < groups; g++)
            {
                var part = partial.AsSpan((g - 1) * wSize, wSize);
                for (int i = 0; i < wSize; i++) dw[i] += part[i];
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(partial);
        }

        if (dbias.Length != 0)
        {
            for (int co = 0; co < s.Cout; co++)
            {
                double sum = 0;
                for (int n = 0; n < s.N; n++)
                {
                    var row = dy.Slice((n * s.Cout + co) * p, p);
                    float part = 0f;
                    foreach (float v in row) part += v;
                    sum += part;
                }
                dbias[co] = (float)sum;
            }
        }
    }

    // A 1x1 / stride 1 / no padding conv needs no im2col: the image itself is the (Cin, H*W) GEMM operand.
    private static bool IsPointwise(Conv2dShape s)
        => s.Kh == 1 && s.Kw == 1 && s.StrideH == 1 && s.StrideW == 1 && s.PadH == 0 && s.PadW == 0;

    private delegate void ImageBody(int n, int gemmThreads, Span<float> col);

    // Runs body for every image with a private im2col buffer: images in parallel (single-threaded GEMMs) when there
    // are at least as many images as threads, else images in turn with multi-threaded GEMMs.
    private static void ForImages(Conv2dShape s, ImageBody body)
    {
        int colSize = IsPointwise(s) ? 0 : s.Cin * s.Kh * s.Kw * s.OutH * s.OutW;
        int threads = CpuParallel.Threads;
        if (s.N >= threads && threads > 1)
        {
            CpuParallel.For(0, s.N, n =>
            {
                var col = ArrayPool<float>.Shared.Rent(colSize);
                try { body(n, 1, col.AsSpan(0, colSize)); }
                finally { ArrayPool<float>.Shared.Return(col); }
            });
            return;
        }
        var shared = ArrayPool<float>.Shared.Rent(colSize);
        try
        {
            for (int n = 0; n < s.N; n++) body(n, threads, shared.AsSpan(0, colSize));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(shared);
        }
    }

    private static void CheckLength<T>(ReadOnlySpan<T> span, long expected, string name, string formula)
    {
        if (span.Length != expected)
            throw new ArgumentException($"{name} has {span.Length} elements, expected {formula} = {expected}", name);
    }
}
