// THE ADAPTER POINT between the GPU check's sampled execution and the emulator's block-sample API.
//
// The emulator's API (an exported slak_emu_set_block_sample(...) with a C# wrapper on EmulatedDevice) is being
// written in parallel and is not in this branch, so this adapter reports "unavailable" and every --blocks sample row
// says so (status skip) instead of pretending. To switch it on, only this file changes: implement IsAvailable as
// "the device is an EmulatedDevice" and Scope by installing `choose` as the device's per-launch block filter (or,
// if the wrapper takes one block list for the following launches, by computing the list per launch in a hook on
// the wrapper), restoring the previous setting on Dispose. Nothing else in the check depends on the emulator's API.
using Slak.Cuda.Runtime;

namespace Slak.GpuCheck;

/// <summary>Block sampling on the host emulator (cuda-emu).</summary>
internal sealed class EmuBlockSampler(IGpuDevice device) : IBlockSampler
{
    /// <inheritdoc />
    public bool IsAvailable(out string reason)
    {
        reason = device.IsEmulated
            ? "this build's emulator has no block-sample API yet (EmuBlockSampler is the adapter to switch on)"
            : $"sampled execution needs --device cuda-emu, not {device.Name}";
        return false;
    }

    /// <inheritdoc />
    public IDisposable Scope(Func<string, Dim3, IReadOnlyList<Dim3>?> choose)
    {
        ArgumentNullException.ThrowIfNull(choose);
        throw new NotSupportedException(IsAvailable(out string reason) ? "unreachable" : reason);
    }
}
