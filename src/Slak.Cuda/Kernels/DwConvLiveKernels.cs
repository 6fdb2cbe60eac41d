// Typed launcher for cuda/kernels/dwconv_live.cu: one depthwise branch over its live taps only (a per-block compact
// tap list, column-shifted input copies for 128-bit shared loads, a 4 x 8 register tile per thread). Forward, or with
// the flipped kernel the input gradient. Not used by any production launch yet: the fused kernel stays the launch at
// every stage until the model and a GPU measurement say this body wins (docs/gpu-kernels.md).
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launcher of the live-tap register-tiled depthwise kernel.</summary>
internal static class DwConvLiveKernels
{
    internal const string KernelName = "dwconv_live_kernel";

    /// <summary>Threads of a block (the kernel's __launch_bounds__).</summary>
    internal const int Threads = 128;

    /// <summary>Output rows and columns of a block's tile.</summary>
    internal const int TileH = 64, TileW = 64;

    /// <summary>Column-shifted copies of the staged input tile.</summary>
    internal const int Shifts = 4;

    /// <summary>Dynamic shared bytes of a block: four copies of the (64 + kh - 1) x stride input tile, the tap list
    /// (8 bytes a tap) and the long-axis starts (one int per long-axis index, plus the count).</summary>
    internal static int SharedBytes(int kh, int kw)
    {
        int stride = (TileW + kw - 1 + 3) & ~3;
        long bytes = (long)Shifts * (TileH + kh - 1) * stride * sizeof(float) + (long)kh * kw * 8
                     + (Math.Max(kh, kw) + 1) * sizeof(int);
        return (int)Math.Min(int.MaxValue, (bytes + 15) & ~15L);
    }

    /// <summary>y = depthwise correlation of x (N, C, H, W) with weight * mask (C, kh, kw), "same" padding; with
    /// <paramref name="flip"/> the kernel is flipped (x is then dy and y is dx). y is overwritten.</summary>
    public static void Forward(IGpuDevice dev, DevicePtr y, DevicePtr x, DevicePtr weight, DevicePtr mask, int n, int c,
                               int h, int w, int kh, int kw, bool flip = false)
    {
        ArgumentNullException.ThrowIfNull(dev);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(c, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(h, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(w, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(kh, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(kw, 1);
        if ((kh & 1) == 0 || (kw & 1) == 0)
            throw new ArgumentException($"the live-tap kernel takes odd kernels only, got {kh}x{kw}", nameof(kh));
        var limits = DeviceLimits.For(dev);
        int shared = SharedBytes(kh, kw);
        if (shared > limits.SmemPerBlockOptin)
            throw new ArgumentException($"a {kh}x{kw} kernel needs {shared} bytes of shared memory per block, over the " +
                                        $"device's {limits.SmemPerBlockOptin}", nameof(kh));
        long planes = (long)n * c;
        int tilesH = (h + TileH - 1) / TileH, tilesW = (w + TileW - 1) / TileW;
        long tiles = (long)tilesH * tilesW;
        if (planes > limits.MaxGridX || tiles > limits.MaxGridY)
            throw new ArgumentException($"N*C = {planes} planes and {tiles} tiles exceed the grid's limits " +
                                        $"({limits.MaxGridX}, {limits.MaxGridY})", nameof(n));
        var a = new KernelArgs();
        a.AddOutput(y, planes * h * w * sizeof(float));
        a.Add(x);
        a.Add(weight);
        a.Add(mask);
        a.Add(c);
        a.Add(h);
        a.Add(w);
        a.Add(kh);
        a.Add(kw);
        a.Add(flip ? 1 : 0);
        a.Add(tilesW);
        a.Launch(dev, KernelName, new Dim3((uint)planes, (uint)tiles), new Dim3(Threads), shared);
    }
}
