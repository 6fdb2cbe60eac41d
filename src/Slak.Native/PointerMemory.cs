// A Memory<float> over a caller's native buffer (the C ABI's float pointers), so that the engine's list-of-Memory
// entry points (CpuDwConvDecomposed) run on it without a copy. The caller owns the buffer; pinning is a no-op.
using System.Buffers;

namespace Slak.Native;

internal sealed unsafe class PointerMemory(float* pointer, int length) : MemoryManager<float>
{
    public override Span<float> GetSpan() => new(pointer, length);

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elementIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(elementIndex, length);
        return new MemoryHandle(pointer + elementIndex);
    }

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}
