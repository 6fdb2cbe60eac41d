// Sampled execution (issue 19, item 3): while a scope is open, each kernel launch on the device may execute only
// a chosen list of its grid's blocks (blockIdx and gridDim as in the full launch), so that production-size launches
// run on the emulator in seconds. The GPU check decides which launches are sampled and which blocks run
// (BlockSample); the device only has to execute the list. EmuBlockSampler is the one adapter to the emulator.
using Slak.Cuda.Runtime;

namespace Slak.GpuCheck;

/// <summary>Restricts kernel launches to chosen blocks.</summary>
internal interface IBlockSampler
{
    /// <summary>True when launches can be sampled; otherwise <paramref name="reason"/> says why in one line.</summary>
    bool IsAvailable(out string reason);

    /// <summary>Until the returned scope is disposed, each launch on the device calls
    /// <paramref name="choose"/>(kernel name, grid): null runs every block, a list runs exactly those blocks.</summary>
    IDisposable Scope(Func<string, Dim3, IReadOnlyList<Dim3>?> choose);
}
