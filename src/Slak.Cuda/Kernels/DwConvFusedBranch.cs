// One branch of a launch of the fused decomposed depthwise convolution (DwConvFusedKernels): device pointers and
// kernel size, a value type so that launchers take spans of branches without allocating.
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>One branch of a fused launch: device pointers to its weight (C, Kh, Kw) and mask (null pointer =
/// dense), and its kernel size.</summary>
/// <param name="Weight">Weight, C*Kh*Kw floats.</param>
/// <param name="Mask">0/1 mask of the weight's shape, or <see cref="DevicePtr.Null"/>.</param>
/// <param name="Kh">Kernel height (odd).</param>
/// <param name="Kw">Kernel width (odd).</param>
internal readonly record struct DwConvFusedBranch(DevicePtr Weight, DevicePtr Mask, int Kh, int Kw);
