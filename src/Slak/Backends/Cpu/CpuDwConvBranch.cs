// One branch of a decomposed depthwise convolution (e.g. SLaK's 51x5, 5x51 and 5x5): its kernel size, weight and
// mask, and optionally the live-tap list that selects the sparse-aware kernels. Memory rather than spans so that a
// list of branches can be passed to CpuDwConvDecomposed.
using System.Buffers;

namespace Slak.Backends.Cpu;

/// <summary>A branch of <see cref="CpuDwConvDecomposed"/>: weight (C, Kh, Kw), optional 0/1 mask of the same shape
/// (empty = dense, weights used as w*mask), optional tap list (non-null = sparse-aware path; must match C, Kh, Kw
/// and the mask).</summary>
/// <param name="Kh">Kernel height, odd.</param>
/// <param name="Kw">Kernel width, odd.</param>
/// <param name="Weight">Weight, C*Kh*Kw floats.</param>
/// <param name="Mask">Mask, empty or C*Kh*Kw floats.</param>
/// <param name="Taps">Live taps (built with <see cref="CpuDwConvTapList.FromMask"/>); null for the dense path.</param>
internal readonly record struct CpuDwConvBranch(int Kh, int Kw, ReadOnlyMemory<float> Weight,
    ReadOnlyMemory<float> Mask = default, CpuDwConvTapList? Taps = null)
{
    /// <summary>Every branch's weight and mask pinned for a call: handle 2b is branch b's weight, 2b + 1 its mask (an
    /// empty mask pins to null). The caller disposes them.</summary>
    internal static MemoryHandle[] PinAll(IReadOnlyList<CpuDwConvBranch> branches)
    {
        var pins = new MemoryHandle[2 * branches.Count];
        for (int b = 0; b < branches.Count; b++)
        {
            pins[2 * b] = branches[b].Weight.Pin();
            if (!branches[b].Mask.IsEmpty) pins[2 * b + 1] = branches[b].Mask.Pin();
        }
        return pins;
    }
}
