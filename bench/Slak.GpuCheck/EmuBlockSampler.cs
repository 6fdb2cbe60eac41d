// The adapter between the GPU check's sampled execution and the emulator's block-sample API: on cuda-emu every launch
// asks the check's chooser (kernel name, grid) which blocks to run, through EmulatedDevice.ChooseBlocks; device
// memory is reserved lazily there (only touched pages are committed), so production-size tensors fit in host memory.
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;

namespace Slak.GpuCheck;

/// <summary>Block sampling on the host emulator (cuda-emu).</summary>
internal sealed class EmuBlockSampler(IGpuDevice device) : IBlockSampler
{
    /// <inheritdoc />
    public bool IsAvailable(out string reason)
    {
        reason = device is EmulatedDevice ? "" : $"sampled execution needs --device cuda-emu, not {device.Name}";
        return device is EmulatedDevice;
    }

    /// <inheritdoc />
    public IDisposable Scope(Func<string, Dim3, IReadOnlyList<Dim3>?> choose)
    {
        ArgumentNullException.ThrowIfNull(choose);
        if (device is not EmulatedDevice emu)
            throw new NotSupportedException(IsAvailable(out string reason) ? "unreachable" : reason);
        return emu.ChooseBlocks((kernel, grid) =>
            choose(kernel, grid) is { } blocks ? blocks.Select(b => ((int)b.X, (int)b.Y, (int)b.Z)).ToList() : null);
    }
}
