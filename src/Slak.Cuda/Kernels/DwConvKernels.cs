// Typed launchers for cuda/kernels/dwconv.cu: depthwise "same" convolution (forward, input gradient via the
// flipped filter, weight gradient with per-chunk partials reduced deterministically). The launcher picks the
// shared-memory tiled kernel when its tile fits in 48 KB and the direct kernel otherwise.
using System.Runtime.InteropServices;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the depthwise convolution kernels.</summary>
public static class DwConvKernels
{
    private const int TileW = 32, TileH = 32, ThreadsY = 8;
    private const int SharedLimit = 48 * 1024;

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct DwConvParams(int N, int C, int H, int W, int Kh, int Kw, int Flip);

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct DwWgradParams(int N, int C, int H, int W, int Kh, int Kw, int ImagesPerChunk,
                                                 int TileH, int TileW, int SkipMasked);

    /// <summary>y = depthwise conv of x with w*mask (mask may be null); flip = true gives the input gradient
    /// (pass dy as x and dx as y).</summary>
    public static void Forward(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr w, DevicePtr mask,
                               int n, int c, int h, int wd, int kh, int kw, bool flip = false)
    {
        var p = new DwConvParams(n, c, h, wd, kh, kw, flip ? 1 : 0);
        int shared = (kh * kw + (TileH + kh - 1) * (TileW + kw - 1)) * sizeof(float);
        var a = new KernelArgs(); a.Add(y); a.Add(x); a.Add(w); a.Add(mask); a.Add(p);
        if (shared <= SharedLimit)
        {
            var grid = new Dim3((uint)((wd + TileW - 1) / TileW), (uint)((h + TileH - 1) / TileH), (uint)((long)n * c));
            a.Launch(dev, "dwconv_fwd_tiled_kernel", grid, new Dim3(TileW, ThreadsY), shared);
        }
        else
        {
            long total = (long)n * c * h * wd;
            a.Launch(dev, "dwconv_fwd_direct_kernel", KernelArgs.GridFor(total), 256);
        }
    }

    /// <summary>dw = weight gradient (masked taps written as 0 when <paramref name="skipMasked"/>).</summary>
    public static void BackwardFilter(IGpuDevice dev, DevicePtr dw, DevicePtr x, DevicePtr dy, DevicePtr mask,
                                      int n, int c, int h, int wd, int kh, int kw, bool skipMasked)
    {
        ArgumentNullException.ThrowIfNull(dev);
        int taps = kh * kw;
        int tileW = Math.Min(wd, 64);
        int xw = tileW + kw - 1;
        int budget = SharedLimit / sizeof(float) - taps - (kh - 1) * xw;
        int tileH = Math.Min(h, budget / (tileW + xw));
        // Chunks of images: enough blocks to fill the device, partials of chunks * C * taps floats.
        int chunks = Math.Clamp(2048 / Math.Max(c, 1), 1, n);
        int perChunk = (n + chunks - 1) / chunks;
        chunks = (n + perChunk - 1) / perChunk;
        var partials = dev.Allocate((long)chunks * c * taps * sizeof(float));
        try
        {
            var a = new KernelArgs(); a.Add(partials); a.Add(x); a.Add(dy); a.Add(mask);
            if (tileH >= 1)
            {
                a.Add(new DwWgradParams(n, c, h, wd, kh, kw, perChunk, tileH, tileW, skipMasked ? 1 : 0));
                int shared = (taps + tileH * tileW + (tileH + kh - 1) * xw) * sizeof(float);
                a.Launch(dev, "dwconv_wgrad_tiled_kernel", new Dim3((uint)c, (uint)chunks), 256, shared);
            }
            else
            {
                a.Add(new DwWgradParams(n, c, h, wd, kh, kw, perChunk, 0, 0, skipMasked ? 1 : 0));
                long total = (long)c * taps;
                a.Launch(dev, "dwconv_wgrad_direct_kernel",
                         new Dim3((uint)Math.Clamp((total + 255) / 256, 1, 4096), (uint)chunks), 256);
            }
            ReduceKernels.Finalize(dev, dw, partials, chunks, c * taps);
        }
        finally { dev.Free(partials); }
    }
}
