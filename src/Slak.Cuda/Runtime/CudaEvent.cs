// A CUDA event for timing work on a device's stream (benchmarks, the GPU check). Owned by the caller, disposed
// explicitly; no finalizer (see CudaStream for why).
using Slak.Cuda.Interop;

namespace Slak.Cuda.Runtime;

/// <summary>A CUDA event recorded on a <see cref="CudaDriverDevice"/>'s stream.</summary>
internal sealed unsafe class CudaEvent : IDisposable
{
    private readonly CudaDriverDevice _device;
    private nint _handle;

    internal CudaEvent(CudaDriverDevice device, nint handle)
    {
        _device = device;
        _handle = handle;
    }

    /// <summary>Records the event on the device's stream.</summary>
    public void Record()
    {
        _device.Enter();
        ObjectDisposedException.ThrowIf(_handle == 0, this);
        CudaException.ThrowIfFailed(_device.Api.cuEventRecord(_handle, _device.StreamHandle));
    }

    /// <summary>Waits until the work before the last <see cref="Record"/> has completed.</summary>
    public void Synchronize()
    {
        _device.Enter();
        ObjectDisposedException.ThrowIf(_handle == 0, this);
        CudaException.ThrowIfFailed(_device.Api.cuEventSynchronize(_handle));
    }

    /// <summary>Milliseconds between <paramref name="start"/> and <paramref name="end"/> (both recorded and
    /// completed; call <see cref="Synchronize"/> on <paramref name="end"/> first).</summary>
    public static float ElapsedMilliseconds(CudaEvent start, CudaEvent end)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(end);
        if (!ReferenceEquals(start._device, end._device))
        {
            throw new ArgumentException("both events must belong to the same device", nameof(end));
        }

        start._device.Enter();
        float ms;
        CudaException.ThrowIfFailed(start._device.Api.cuEventElapsedTime(&ms, start._handle, end._handle));
        return ms;
    }

    /// <summary>Destroys the event. Never throws.</summary>
    public void Dispose()
    {
        if (_handle != 0 && _device.TryEnter())
        {
            _ = _device.Api.cuEventDestroy_v2(_handle);
        }

        _handle = 0;
    }
}
