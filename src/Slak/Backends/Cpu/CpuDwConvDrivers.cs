// Multi-threaded loops of the CPU depthwise convolution over (image, channel) planes (forward, input gradient) and
// over channels (weight gradient, images summed inside a task so that the result is deterministic and no partial
// sums are written). Each loop pads every input plane once and runs all branches of a decomposed operator on it.
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

/// <summary>Plane loops over several branches; pointers are to pinned N*C*H*W tensors (0 means "not wanted").</summary>
internal static unsafe class CpuDwConvDrivers
{
    /// <summary>ys[b] = conv(x, branch b) where ys[b] != 0; ysum = sum over b when ysum != 0.</summary>
    internal static void Forward(int n, int c, int h, int w, DwPass[] passes, nint x, nint[] ys, nint ysum)
    {
        var g = new CpuDwConvEngine.Geometry(h, w);
        int plane = h * w;
        bool sumOnly = ysum != 0 && Array.TrueForAll(ys, p => p == 0);
        CpuDwConvEngine.ForChunks(n * c, (lo, hi) =>
        {
            float* xp = CpuDwConvEngine.Scratch(g.PaddedLength + g.OutLength);
            float* op = xp + g.PaddedLength;
            for (int p = lo; p < hi; p++)
            {
                int ch = p % c;
                nint off = (nint)p * plane;
                CpuDwConvEngine.PadPlane(g, (float*)x + off, xp);
                for (int b = 0; b < passes.Length; b++)
                {
                    if (sumOnly)
                    {
                        CpuDwConvEngine.ConvPlane(g, xp, passes[b], ch, op, accumulate: b > 0);
                        continue;
                    }
                    CpuDwConvEngine.ConvPlane(g, xp, passes[b], ch, op, accumulate: false);
                    if (ys[b] != 0) CpuDwConvEngine.StorePlane(g, op, (float*)ys[b] + off, add: false);
                    if (ysum != 0) CpuDwConvEngine.StorePlane(g, op, (float*)ysum + off, add: b > 0);
                }
                if (sumOnly) CpuDwConvEngine.StorePlane(g, op, (float*)ysum + off, add: false);
            }
        });
    }

    /// <summary>dx = sum over b of conv(dys[b], flipped branch b); passes must hold the flipped tap lists.</summary>
    internal static void BackwardData(int n, int c, int h, int w, DwPass[] flippedPasses, nint[] dys, nint dx)
    {
        var g = new CpuDwConvEngine.Geometry(h, w);
        int plane = h * w;
        CpuDwConvEngine.ForChunks(n * c, (lo, hi) =>
        {
            float* xp = CpuDwConvEngine.Scratch(g.PaddedLength + g.OutLength);
            float* op = xp + g.PaddedLength;
            for (int p = lo; p < hi; p++)
            {
                int ch = p % c;
                nint off = (nint)p * plane;
                for (int b = 0; b < flippedPasses.Length; b++)
                {
                    CpuDwConvEngine.PadPlane(g, (float*)dys[b] + off, xp);
                    CpuDwConvEngine.ConvPlane(g, xp, flippedPasses[b], ch, op, accumulate: b > 0);
                }
                CpuDwConvEngine.StorePlane(g, op, (float*)dx + off, add: false);
            }
        });
    }

    /// <summary>dws[b][c, i, j] = sum over images and pixels of x[p + (i, j) - pad] * dys[b][p] for the taps in
    /// passes[b]'s list; taps not in the list are written as 0.</summary>
    internal static void BackwardFilter(int n, int c, int h, int w, DwPass[] passes, nint x, nint[] dys, nint[] dws)
    {
        var g = new CpuDwConvEngine.Geometry(h, w);
        int plane = h * w;
        int accLen = 0;
        foreach (var pass in passes) accLen += pass.Kh * pass.Kw;
        CpuDwConvEngine.ForChunks(c, (lo, hi) =>
        {
            float* xp = CpuDwConvEngine.Scratch(g.PaddedLength + g.OutLength + (accLen + 1) * 8);
            float* dyp = xp + g.PaddedLength;
            var acc = (Vector256<float>*)(dyp + g.OutLength);
            Span<int> accStart = stackalloc int[passes.Length];
            for (int ch = lo; ch < hi; ch++)
            {
                int a = 0;
                for (int b = 0; b < passes.Length; b++)
                {
                    accStart[b] = a;
                    a += ChannelTaps(passes[b], ch);
                }
                new Span<float>(acc, a * 8).Clear();
                for (int img = 0; img < n; img++)
                {
                    nint off = ((nint)img * c + ch) * plane;
                    CpuDwConvEngine.PadPlane(g, (float*)x + off, xp);
                    for (int b = 0; b < passes.Length; b++)
                    {
                        CpuDwConvEngine.TailPadPlane(g, (float*)dys[b] + off, dyp);
                        CpuDwConvEngine.FilterPlane(g, xp, dyp, passes[b], ch, acc + accStart[b]);
                    }
                }
                for (int b = 0; b < passes.Length; b++)
                {
                    var pass = passes[b];
                    int kk = pass.Kh * pass.Kw;
                    float* dw = (float*)dws[b];
                    new Span<float>(dw + (nint)ch * kk, kk).Clear();
                    var taps = pass.Taps;
                    int t0 = taps.RowStart[ch * (pass.Kh + 1)], t1 = taps.RowStart[ch * (pass.Kh + 1) + pass.Kh];
                    for (int t = t0; t < t1; t++)
                        dw[taps.Flat[t]] = Vector256.Sum(acc[accStart[b] + t - t0]);
                }
            }
        });
    }

    private static int ChannelTaps(DwPass pass, int ch)
    {
        int k1 = pass.Kh + 1;
        return pass.Taps.RowStart[ch * k1 + pass.Kh] - pass.Taps.RowStart[ch * k1];
    }
}
