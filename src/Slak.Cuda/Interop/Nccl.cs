// NCCL (libnccl.so.2) bound 1:1 as unmanaged function pointers, probed like cuBLAS (SLAK_CUDA_LIBRARY_PATH, the
// loader's search, CUDA_PATH, /usr/local/cuda, the distribution folders, a Python wheel's nvidia/nccl/lib). The
// calls a data-parallel job on cuda ranks needs: a unique id (created on rank 0 and broadcast over MPI), a
// communicator per rank, and an in-place all-reduce enqueued on the compute stream. Loaded lazily: a machine without
// NCCL runs everything else, and `slak info` says which was found. Data-parallel training on cuda ranks uses it
// through Slak.Distributed.NcclAllReduce when every rank loads it (docs/data-parallel.md).
namespace Slak.Cuda.Interop;

/// <summary>The NCCL entry points Slak binds.</summary>
internal sealed unsafe class Nccl
{
    /// <summary>Display name in probe traces and messages.</summary>
    public const string Display = "NCCL";

    /// <summary>ncclSuccess.</summary>
    public const int Success = 0;

    /// <summary>ncclFloat32 (nccl.h's ncclDataType_t).</summary>
    public const int Float32 = 7;

    /// <summary>ncclSum (nccl.h's ncclRedOp_t).</summary>
    public const int Sum = 0;

    /// <summary>NCCL_UNIQUE_ID_BYTES: the size of ncclUniqueId, the blob rank 0 broadcasts.</summary>
    public const int UniqueIdBytes = 128;

    /// <summary>File names probed (Linux only: NCCL has no Windows build).</summary>
    public static IReadOnlyList<string> Candidates { get; } = ["libnccl.so.2", "libnccl.so"];

    private static readonly Lazy<Nccl> Shared = new(() => new Nccl(Load(Environment.GetEnvironmentVariable)));

    public readonly delegate* unmanaged<int*, int> ncclGetVersion;
    public readonly delegate* unmanaged<byte*, int> ncclGetUniqueId;
    public readonly delegate* unmanaged<nint*, int, NcclUniqueId, int, int> ncclCommInitRank;
    public readonly delegate* unmanaged<nint, int> ncclCommDestroy;
    public readonly delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int> ncclAllReduce;
    public readonly delegate* unmanaged<int, byte*> ncclGetErrorString;

    private Nccl(LoadedNativeLibrary lib)
    {
        Library = lib;
        ncclGetVersion = (delegate* unmanaged<int*, int>)lib.Require("ncclGetVersion");
        ncclGetUniqueId = (delegate* unmanaged<byte*, int>)lib.Require("ncclGetUniqueId");
        ncclCommInitRank = (delegate* unmanaged<nint*, int, NcclUniqueId, int, int>)lib.Require("ncclCommInitRank");
        ncclCommDestroy = (delegate* unmanaged<nint, int>)lib.Require("ncclCommDestroy");
        ncclAllReduce = (delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int>)lib.Require("ncclAllReduce");
        ncclGetErrorString = (delegate* unmanaged<int, byte*>)lib.Require("ncclGetErrorString");
    }

    /// <summary>The loaded library.</summary>
    public LoadedNativeLibrary Library { get; }

    /// <summary>The process-wide binding; throws <see cref="CudaLibraryNotFoundException"/> (with every probe) when
    /// absent.</summary>
    public static Nccl Api => Shared.Value;

    /// <summary>Loads libnccl with <paramref name="getEnv"/> as the environment (tests pass their own).</summary>
    public static LoadedNativeLibrary Load(Func<string, string?> getEnv) =>
        OperatingSystem.IsWindows()
            ? throw new CudaLibraryNotFoundException(Display, Candidates, ["NCCL has no Windows build"])
            : NativeLibraryProbe.Load(Display, Candidates, getEnv);

    /// <summary>The library's version as major.minor.patch (ncclGetVersion's code: major*10000 + minor*100 + patch
    /// from 2.9 on, major*1000 + minor*100 + patch before).</summary>
    public string VersionString()
    {
        int code;
        Check("ncclGetVersion", ncclGetVersion(&code));
        return code >= 10000 ? $"{code / 10000}.{code / 100 % 100}.{code % 100}" : $"{code / 1000}.{code / 100 % 10}.{code % 100}";
    }

    /// <summary>Throws naming the call and NCCL's text for a non-success result.</summary>
    public void Check(string call, int result)
    {
        if (result == Success) return;
        byte* s = ncclGetErrorString(result);
        throw new InvalidOperationException($"{call} failed: NCCL error {result}{(s == null ? "" : ": " + Driver.Utf8(s))}");
    }

    /// <summary>A new unique id (call on rank 0, then broadcast its bytes to every rank).</summary>
    public byte[] NewUniqueId()
    {
        var id = new byte[UniqueIdBytes];
        fixed (byte* p = id) Check("ncclGetUniqueId", ncclGetUniqueId(p));
        return id;
    }

    /// <summary>A communicator for <paramref name="rank"/> of <paramref name="ranks"/> (the current CUDA context's
    /// device) from rank 0's unique id.</summary>
    public nint InitRank(int ranks, ReadOnlySpan<byte> uniqueId, int rank)
    {
        if (uniqueId.Length != UniqueIdBytes)
            throw new ArgumentException($"an NCCL unique id has {UniqueIdBytes} bytes, got {uniqueId.Length}", nameof(uniqueId));
        // ncclUniqueId is a 128-byte struct passed by value (copied into the argument area), hence the struct type.
        NcclUniqueId id;
        uniqueId.CopyTo(new Span<byte>(id.Bytes, UniqueIdBytes));
        nint comm;
        Check("ncclCommInitRank", ncclCommInitRank(&comm, ranks, id, rank));
        return comm;
    }

    /// <summary>Destroys a communicator.</summary>
    public void Destroy(nint comm) => Check("ncclCommDestroy", ncclCommDestroy(comm));

    /// <summary>Enqueues an in-place float32 sum of <paramref name="count"/> elements at
    /// <paramref name="devicePointer"/> over the communicator on <paramref name="stream"/> (the compute stream, so it
    /// orders after the backward kernels).</summary>
    public void AllReduceSumInPlace(ulong devicePointer, long count, nint comm, nint stream)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Check("ncclAllReduce", ncclAllReduce((void*)devicePointer, (void*)devicePointer, (nuint)count, Float32, Sum, comm, stream));
    }
}

/// <summary>nccl.h's ncclUniqueId: <c>struct { char internal[128]; }</c>, passed by value.</summary>
internal unsafe struct NcclUniqueId
{
    /// <summary>The opaque bytes.</summary>
    public fixed byte Bytes[Nccl.UniqueIdBytes];
}
