// Rounding to bfloat16 on the CPU backend (family precision), vectorized and split into chunks over threads.
using Slak.Cuda.Runtime;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void RoundToBf16(Tensor x, Tensor y) =>
        Chunked(y.Numel, (s, n) => ReducedFloat.RoundBf16(S(x).Slice(s, n), S(y).Slice(s, n)));
}
