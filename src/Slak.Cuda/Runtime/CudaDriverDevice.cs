// A real GPU through the CUDA driver API: the device's primary context (retained once, made current at every
// entry point because contexts are per thread, managedCuda#36), one stream, a caching allocator, kernels compiled
// by NVRTC on first lookup (one module per source file, cached on disk) and cuBLAS for GEMMs.
// Children (modules, stream, cuBLAS handle, memory) are released before the context, in Dispose only.
using Slak.Cuda.Compilation;
using Slak.Cuda.Interop;

namespace Slak.Cuda.Runtime;

/// <summary>An <see cref="IGpuDevice"/> backed by an NVIDIA GPU.</summary>
internal sealed unsafe partial class CudaDriverDevice : IGpuDevice
{
    /// <summary>Environment variable: "1" synchronises after every launch so a fault names its kernel.</summary>
    public const string SyncDebugVariable = "SLAK_SYNC_DEBUG";

    private readonly Lock _lock = new();
    private readonly int _device;
    private nint _context;
    private CudaStream? _stream;
    private readonly CachingAllocator _allocator;
    private volatile bool _disposed;

    private CudaDriverDevice(Driver api, int ordinal, int device, nint context, KernelSources sources, KernelCache cache)
    {
        Api = api;
        Ordinal = ordinal;
        _device = device;
        _context = context;
        Sources = sources;
        Cache = cache;
        Enter();
        _stream = CudaStream.Create(api);
        _allocator = new CachingAllocator(new DriverMemorySource(this));

        byte* name = stackalloc byte[256];
        CudaException.ThrowIfFailed(api.cuDeviceGetName(name, 256, device));
        DeviceName = Driver.Utf8(name);
        ComputeCapability = (Attribute(CuDeviceAttribute.ComputeCapabilityMajor),
                             Attribute(CuDeviceAttribute.ComputeCapabilityMinor));
        MultiprocessorCount = Attribute(CuDeviceAttribute.MultiprocessorCount);
        MaxSharedMemoryPerBlockOptin = Attribute(CuDeviceAttribute.MaxSharedMemoryPerBlockOptin);
        nuint total;
        CudaException.ThrowIfFailed(api.cuDeviceTotalMem_v2(&total, device));
        TotalMemory = (long)total;
        SyncDebug = Environment.GetEnvironmentVariable(SyncDebugVariable) == "1";
    }

    internal Driver Api { get; }

    internal nint StreamHandle => _stream?.Handle ?? throw new ObjectDisposedException(nameof(CudaDriverDevice));

    /// <summary>The GPU's name as the driver reports it.</summary>
    public string DeviceName { get; }

    /// <inheritdoc />
    public string Name => $"{DeviceName} (sm_{ComputeCapability.Major}{ComputeCapability.Minor})";

    /// <inheritdoc />
    public bool IsEmulated => false;

    /// <inheritdoc />
    public int Ordinal { get; }

    /// <inheritdoc />
    public (int Major, int Minor) ComputeCapability { get; }

    /// <summary>Streaming multiprocessors.</summary>
    public int MultiprocessorCount { get; }

    /// <summary>Largest dynamic + static shared memory per block a kernel may opt in to, in bytes.</summary>
    public int MaxSharedMemoryPerBlockOptin { get; }

    /// <summary>Total device memory in bytes.</summary>
    public long TotalMemory { get; }

    /// <summary>The kernel sources this device compiles from.</summary>
    public KernelSources Sources { get; }

    /// <summary>The on-disk kernel cache.</summary>
    public KernelCache Cache { get; }

    /// <summary>Synchronise after every launch (set from SLAK_SYNC_DEBUG=1 at open; settable).</summary>
    public bool SyncDebug { get; set; }

    /// <inheritdoc />
    public GpuMemoryStats MemoryStats => _allocator.Stats;

    /// <summary>Opens GPU <paramref name="ordinal"/>, compiling from <paramref name="sources"/> (default: the
    /// embedded kernels) with <paramref name="cache"/> (default: <see cref="KernelCache.DefaultDirectory"/>).</summary>
    public static CudaDriverDevice Open(int ordinal = 0, KernelSources? sources = null, KernelCache? cache = null)
    {
        Driver api = Driver.Api;
        CudaException.ThrowIfFailed(api.cuInit(0));
        int count;
        CudaException.ThrowIfFailed(api.cuDeviceGetCount(&count));
        if (ordinal < 0 || ordinal >= count)
        {
            throw new ArgumentOutOfRangeException(nameof(ordinal), ordinal,
                $"CUDA device ordinal must be in [0, {count}), got cuda:{ordinal}");
        }

        int device;
        CudaException.ThrowIfFailed(api.cuDeviceGet(&device, ordinal));
        nint context;
        CudaException.ThrowIfFailed(api.cuDevicePrimaryCtxRetain(&context, device));
        try
        {
            return new CudaDriverDevice(api, ordinal, device, context, sources ?? KernelSources.Embedded,
                cache ?? new KernelCache(KernelCache.DefaultDirectory()));
        }
        catch
        {
            _ = api.cuDevicePrimaryCtxRelease_v2(device);
            throw;
        }
    }

    /// <summary>Makes this device's primary context current on the calling thread (every entry point does).</summary>
    internal void Enter()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CudaException.ThrowIfFailed(Api.cuCtxSetCurrent(_context));
    }

    /// <summary>Like <see cref="Enter"/> but returns false instead of throwing (for Dispose paths).</summary>
    internal bool TryEnter() => !_disposed && Api.cuCtxSetCurrent(_context) == CuResult.Success;

    /// <inheritdoc />
    public DevicePtr Allocate(long bytes)
    {
        Enter();
        return _allocator.Allocate(bytes);
    }

    /// <inheritdoc />
    public void Free(DevicePtr ptr) => _allocator.Free(ptr);

    /// <summary>Returns a block to the cache from any thread, finalizers included (no lock, no CUDA call).</summary>
    public void FreeDeferred(DevicePtr ptr) => _allocator.FreeDeferred(ptr);

    /// <inheritdoc />
    public void EmptyCache()
    {
        Enter();
        _allocator.EmptyCache();
    }

    /// <inheritdoc />
    public void CopyToDevice(ReadOnlySpan<byte> source, DevicePtr destination)
    {
        CheckPointer(destination, source.Length, nameof(destination));
        Enter();
        fixed (byte* p = source)
        {
            CudaException.ThrowIfFailed(Api.cuMemcpyHtoDAsync_v2(destination.Address, p, (nuint)source.Length, StreamHandle));
            CudaException.ThrowIfFailed(Api.cuStreamSynchronize(StreamHandle));
        }
    }

    /// <inheritdoc />
    public void CopyToHost(DevicePtr source, Span<byte> destination)
    {
        CheckPointer(source, destination.Length, nameof(source));
        Enter();
        fixed (byte* p = destination)
        {
            CudaException.ThrowIfFailed(Api.cuMemcpyDtoHAsync_v2(p, source.Address, (nuint)destination.Length, StreamHandle));
            CudaException.ThrowIfFailed(Api.cuStreamSynchronize(StreamHandle));
        }
    }

    /// <inheritdoc />
    public void CopyDeviceToDevice(DevicePtr source, DevicePtr destination, long bytes)
    {
        CheckPointer(source, bytes, nameof(source));
        CheckPointer(destination, bytes, nameof(destination));
        Enter();
        CudaException.ThrowIfFailed(
            Api.cuMemcpyDtoDAsync_v2(destination.Address, source.Address, (nuint)bytes, StreamHandle));
    }

    /// <inheritdoc />
    public void Memset32(DevicePtr destination, uint value, long count)
    {
        CheckPointer(destination, count, nameof(destination));
        Enter();
        CudaException.ThrowIfFailed(Api.cuMemsetD32Async(destination.Address, value, (nuint)count, StreamHandle));
    }

    /// <inheritdoc />
    public void Synchronize()
    {
        Enter();
        _stream!.Synchronize();
    }

    /// <summary>Free and total device memory in bytes.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        Enter();
        nuint free, total;
        CudaException.ThrowIfFailed(Api.cuMemGetInfo_v2(&free, &total));
        return ((long)free, (long)total);
    }

    /// <summary>Creates an event for timing work on this device's stream.</summary>
    public CudaEvent CreateEvent()
    {
        Enter();
        nint handle;
        CudaException.ThrowIfFailed(Api.cuEventCreate(&handle, CuFlags.EventDefault));
        return new CudaEvent(this, handle);
    }

    /// <summary>Allocates <paramref name="bytes"/> bytes of pinned (page-locked) host memory.</summary>
    public PinnedBuffer AllocatePinned(long bytes)
    {
        if (bytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, $"pinned buffer size must be > 0, got {bytes}");
        }

        Enter();
        void* p;
        CudaException.ThrowIfFailed(Api.cuMemHostAlloc(&p, (nuint)bytes, CuFlags.MemHostAllocPortable));
        return new PinnedBuffer(this, p, bytes);
    }

    /// <summary>Releases modules, cuBLAS, the stream, all device memory and the primary context. Never
    /// throws.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            if (Api.cuCtxSetCurrent(_context) == CuResult.Success)
            {
                _ = Api.cuStreamSynchronize(_stream?.Handle ?? 0);
                ReleaseKernels();
                ReleaseBlas();
                _allocator.Dispose();
                _stream?.Dispose();
            }

            _stream = null;
            _ = Api.cuDevicePrimaryCtxRelease_v2(_device);
            _context = 0;
            _disposed = true;
        }
    }

    private int Attribute(CuDeviceAttribute attribute)
    {
        int value;
        CudaException.ThrowIfFailed(Api.cuDeviceGetAttribute(&value, attribute, _device));
        return value;
    }

    private static void CheckPointer(DevicePtr ptr, long count, string name)
    {
        if (count < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"count must be >= 0, got {count}");
        }

        if (ptr.IsNull && count > 0)
        {
            throw new ArgumentException($"device pointer is null for a transfer of {count}", name);
        }
    }

    /// <summary>cuMemAlloc/cuMemFree for the caching allocator, with this device's context current.</summary>
    private sealed class DriverMemorySource(CudaDriverDevice device) : IDeviceMemorySource
    {
        public bool TryAllocate(long bytes, out ulong address)
        {
            ulong p;
            CuResult r = device.Api.cuMemAlloc_v2(&p, (nuint)bytes);
            address = r == CuResult.Success ? p : 0;
            if (r == CuResult.ErrorOutOfMemory)
            {
                return false;
            }

            CudaException.ThrowIfFailed(r, $"cuMemAlloc_v2({bytes} bytes)");
            return true;
        }

        public void Release(ulong address) => _ = device.Api.cuMemFree_v2(address);

        public (long Free, long Total) MemoryInfo()
        {
            nuint free, total;
            CudaException.ThrowIfFailed(device.Api.cuMemGetInfo_v2(&free, &total));
            return ((long)free, (long)total);
        }
    }
}
