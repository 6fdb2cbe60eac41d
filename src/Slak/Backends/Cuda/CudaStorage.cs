// Device memory of the CUDA backend. Released explicitly through the storage's reference count; if a storage is
// ever dropped without release, its finalizer only hands the pointer to the backend's orphan queue (no CUDA call
// from the finalizer thread), and the backend frees it on its next allocation, with its context current.
//
// Under --precision bf16 a storage whose values are bf16 (an activation the forward pass stores as bf16, see
// CudaBackend.Bf16.cs) is held as 16-bit bf16 values: half the bytes. The bf16 kernels read that block directly
// (Bf16Pointer); a float32 reader (Pointer) widens it back to float32 first, exactly (every bf16 value is a float32),
// so every kernel sees the same numbers in either representation and only the memory differs.
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.Backends.Cuda;

/// <summary>CUDA storage: a block from the device's caching allocator, float32 or (bf16 storage) 16-bit.</summary>
internal sealed class CudaStorage : Storage
{
    private readonly CudaBackend _backend;
    private DevicePtr _ptr;

    internal CudaStorage(CudaBackend backend, DevicePtr ptr, long length) : base(length)
    {
        _backend = backend;
        _ptr = ptr;
    }

    /// <summary>True while the block holds 16-bit bf16 values (<see cref="Storage.Length"/> x 2 bytes).</summary>
    public bool IsBf16 { get; private set; }

    /// <summary>Device address of float32 element 0; a bf16 block is widened to float32 first (exactly, for
    /// good).</summary>
    public DevicePtr Pointer
    {
        get
        {
            if (IsBf16) Widen();
            return Block;
        }
    }

    /// <summary>Device address of bf16 element 0 of a bf16 block.</summary>
    public DevicePtr Bf16Pointer => IsBf16 ? Block
        : throw new InvalidOperationException($"storage of {Length} elements holds float32, not bf16");

    private DevicePtr Block => _ptr.IsNull && Length > 0 ? throw new ObjectDisposedException(nameof(CudaStorage)) : _ptr;

    /// <inheritdoc />
    internal override IBackend Backend => _backend;

    /// <summary>Rounds the float32 values to bf16 (nearest even) and keeps them as a 16-bit block, freeing the float32
    /// one. No-op on a bf16 block.</summary>
    public void StoreAsBf16()
    {
        if (IsBf16 || Length == 0) return;
        var gpu = _backend.Gpu;
        var packed = gpu.Allocate(Length * sizeof(ushort));
        PrecisionKernels.Float32ToBf16(gpu, packed, Block, Length);
        Swap(packed, bf16: true);
    }

    /// <summary>Takes <paramref name="packed"/> (<see cref="Storage.Length"/> bf16 values the caller wrote, allocated
    /// from the backend's device) as this storage's block, freeing the float32 one.</summary>
    public void AdoptBf16(DevicePtr packed)
    {
        if (IsBf16) throw new InvalidOperationException("storage already holds bf16");
        Swap(packed, bf16: true);
    }

    // A bf16 block back to float32 (exact).
    private void Widen()
    {
        var gpu = _backend.Gpu;
        var wide = gpu.Allocate(Length * sizeof(float));
        PrecisionKernels.Bf16ToFloat32(gpu, wide, Block, Length);
        Swap(wide, bf16: false);
    }

    private void Swap(DevicePtr block, bool bf16)
    {
        var old = Block;
        _ptr = block;
        IsBf16 = bf16;
        _backend.Gpu.Free(old);
    }

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
