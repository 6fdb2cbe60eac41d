// Typed launchers for cuda/kernels/residual.cu (the SLaK block's epilogue: layer scale, DropPath, permute back to
// NCHW and residual add as one tiled transpose, and its backward).
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the block-epilogue kernels (float32; one block per 32 x 32 pixel-by-channel tile).</summary>
internal static class ResidualKernels
{
    /// <summary>Pixels and channels of one tile (kResidualTile in residual.cu).</summary>
    private const int Tile = 32;

    /// <summary>Threads per block (kResidualThreads in residual.cu).</summary>
    private const int Threads = 256;

    /// <summary>output = input + permute(y * gamma) * scale: input/output (n, c, hw) NCHW, y (n, hw, c); gamma and
    /// scale may be <see cref="DevicePtr.Null"/>.</summary>
    public static void Forward(IGpuDevice dev, DevicePtr output, DevicePtr input, DevicePtr y, DevicePtr gamma,
                               DevicePtr scale, int n, int c, int hw)
    {
        var a = new KernelArgs(); a.Add(output); a.Add(input); a.Add(y); a.Add(gamma); a.Add(scale);
        Launch(dev, "channels_last_residual_kernel", n, c, hw, ref a);
    }

    /// <summary>g = dOutput * scale (NCHW) written channels-last as dy = g * gamma and, unless
    /// <paramref name="scaled"/> is null, scaled = g; any of dy, scaled, gamma, scale may be
    /// <see cref="DevicePtr.Null"/>.</summary>
    public static void Backward(IGpuDevice dev, DevicePtr dy, DevicePtr scaled, DevicePtr dOutput, DevicePtr gamma,
                                DevicePtr scale, int n, int c, int hw)
    {
        var a = new KernelArgs(); a.Add(dy); a.Add(scaled); a.Add(dOutput); a.Add(gamma); a.Add(scale);
        Launch(dev, "channels_last_residual_bwd_kernel", n, c, hw, ref a);
    }

    private static void Launch(IGpuDevice dev, string kernel, int n, int c, int hw, ref KernelArgs a)
    {
        int pTiles = (hw + Tile - 1) / Tile, cTiles = (c + Tile - 1) / Tile;
        long tiles = (long)n * pTiles * cTiles;
        a.Add(c); a.Add(hw); a.Add(pTiles); a.Add(cTiles); a.Add(tiles);
        if (tiles > 0) a.Launch(dev, kernel, LaunchPlans.Rows(tiles, Threads, DeviceLimits.For(dev)));
    }
}
