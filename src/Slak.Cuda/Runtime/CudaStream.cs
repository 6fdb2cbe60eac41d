// A CUDA stream owned by a CudaDriverDevice. Plain IDisposable, no finalizer: destroying a stream is a CUDA call,
// which must never run on the finalizer thread (the context may already be gone, CUDA.jl #778); the device
// disposes its streams before releasing its context.
using Slak.Cuda.Interop;

namespace Slak.Cuda.Runtime;

/// <summary>A CUDA stream (created blocking with respect to the legacy default stream).</summary>
internal sealed unsafe class CudaStream : IDisposable
{
    private readonly Driver _api;

    private CudaStream(Driver api, nint handle)
    {
        _api = api;
        Handle = handle;
    }

    /// <summary>The CUstream handle.</summary>
    public nint Handle { get; private set; }

    /// <summary>Creates a stream in the current context.</summary>
    public static CudaStream Create(Driver api, uint flags = CuFlags.StreamDefault)
    {
        nint handle;
        CudaException.ThrowIfFailed(api.cuStreamCreate(&handle, flags));
        return new CudaStream(api, handle);
    }

    /// <summary>Waits for all work queued on the stream.</summary>
    public void Synchronize() => CudaException.ThrowIfFailed(_api.cuStreamSynchronize(Handle));

    /// <summary>Destroys the stream (the owning device's context must be current). Never throws.</summary>
    public void Dispose()
    {
        if (Handle != 0)
        {
            _ = _api.cuStreamDestroy_v2(Handle);
            Handle = 0;
        }
    }
}
