// C# mirrors of the kernels' params structs of cuda/include/slak/slak_params.h (the one definition; Conv2dParams'
// mirror is public, in Conv2dKernels.cs). Sequential, blittable, fields in the header's order: each is checked field
// by field (offset and size) against the header's layout table by PlanStructLayoutTests.
using System.Runtime.InteropServices;

namespace Slak.Cuda.Kernels;

/// <summary>Mirror of <c>DwConvParams</c> (dwconv_fwd_tiled_kernel, dwconv_fwd_direct_kernel).</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct DwConvParams(int N, int C, int H, int W, int Kh, int Kw, int Flip);

/// <summary>Mirror of <c>DwWgradParams</c> (dwconv_wgrad_tiled_kernel, dwconv_wgrad_direct_kernel).</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct DwWgradParams(int N, int C, int H, int W, int Kh, int Kw, int ImagesPerChunk,
                                              int TileH, int TileW, int SkipMasked);

/// <summary>Mirror of <c>DwFusedParams</c> (dwconv_fused_kernel).</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct DwFusedParams(int N, int C, int H, int W, int Branches,
    int Kh0, int Kw0, int Kh1, int Kw1, int Kh2, int Kw2, int HaloH, int HaloW, int Flip, int Sum);

/// <summary>Mirror of <c>DwFusedWgradParams</c> (dwconv_fused_wgrad_kernel).</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct DwFusedWgradParams(int N, int C, int H, int W, int Branches,
    int Kh0, int Kw0, int Kh1, int Kw1, int Kh2, int Kw2, int HaloH, int HaloW, int ImagesPerChunk,
    int TileH, int TileW);

/// <summary>Mirror of <c>PermuteParams</c> (permute_kernel).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PermuteParams
{
    /// <summary>Number of dimensions (at most 8).</summary>
    public int Rank;
    /// <summary>Output shape.</summary>
    public fixed int OutShape[8];
    /// <summary>Input stride of each output dimension.</summary>
    public fixed long InStride[8];
}
