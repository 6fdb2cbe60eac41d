// Page-locked host memory (cuMemHostAlloc) for fast and truly asynchronous host<->device copies. Owned by the
// caller, disposed explicitly; no finalizer (see CudaStream for why).
using Slak.Cuda.Interop;

namespace Slak.Cuda.Runtime;

/// <summary>A block of pinned host memory allocated through a <see cref="CudaDriverDevice"/>.</summary>
internal sealed unsafe class PinnedBuffer : IDisposable
{
    private readonly CudaDriverDevice _device;
    private void* _pointer;

    internal PinnedBuffer(CudaDriverDevice device, void* pointer, long bytes)
    {
        _device = device;
        _pointer = pointer;
        Length = bytes;
    }

    /// <summary>Size in bytes.</summary>
    public long Length { get; }

    /// <summary>The host address.</summary>
    public nint Address => (nint)_pointer;

    /// <summary>The memory as a span (buffers of at most 2 GiB).</summary>
    public Span<byte> AsSpan()
    {
        ObjectDisposedException.ThrowIf(_pointer == null, this);
        return new Span<byte>(_pointer, checked((int)Length));
    }

    /// <summary>Frees the memory. Never throws.</summary>
    public void Dispose()
    {
        if (_pointer != null && _device.TryEnter())
        {
            _ = _device.Api.cuMemFreeHost(_pointer);
        }

        _pointer = null;
    }
}
