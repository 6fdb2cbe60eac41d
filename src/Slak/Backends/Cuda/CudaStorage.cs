// Device memory of the CUDA backend. Released explicitly through the storage's reference count; if a storage is
// ever dropped without release, its finalizer only hands the pointer to the backend's orphan queue (no CUDA call
// from the finalizer thread), and the backend frees it on its next allocation, with its context current.
using Slak.Cuda.Runtime;

namespace Slak.Backends.Cuda;

/// <summary>CUDA storage: a block from the device's caching allocator.</summary>
internal sealed class CudaStorage : Storage
{
    private readonly CudaBackend _backend;
    private DevicePtr _ptr;

    internal CudaStorage(CudaBackend backend, DevicePtr ptr, long length) : base(length)
    {
        _backend = backend;
        _ptr = ptr;
    }

    /// <summary>Device address of element 0.</summary>
    public DevicePtr Pointer => _ptr.IsNull && Length > 0 ? throw new ObjectDisposedException(nameof(CudaStorage)) : _ptr;

    /// <inheritdoc />
    internal override IBackend Backend => _backend;

    /// <inheritdoc />
    protected override void Free()
    {
        var p = _ptr;
        _ptr = DevicePtr.Null;
        GC.SuppressFinalize(this);
        if (!p.IsNull) _backend.Gpu.Free(p);
    }

    /// <summary>Safety net: never calls CUDA, only queues the block for the backend to free.</summary>
    ~CudaStorage()
    {
        if (!_ptr.IsNull) _backend.Orphan(_ptr);
    }
}
