// cuBLAS bound 1:1 as unmanaged function pointers (see Driver.cs for the conventions). Loaded lazily on the first
// GEMM so that a machine with the driver and NVRTC but no cuBLAS can still run every other kernel.
namespace Slak.Cuda.Interop;

/// <summary>The cuBLAS entry points Slak uses.</summary>
internal sealed unsafe class Cublas
{
    /// <summary><c>cublasOperation_t</c> values.</summary>
    public const int OpN = 0;
    public const int OpT = 1;

    /// <summary><c>cublasMath_t</c>: default (exact fp32) and TF32 tensor-core math.</summary>
    public const int DefaultMath = 0;
    public const int Tf32TensorOpMath = 3;

    /// <summary><c>cudaDataType_t</c>: float32 and bfloat16 (cublasGemmEx's operand and output types).</summary>
    public const int CudaR32F = 0;
    public const int CudaR16BF = 14;

    /// <summary><c>cublasComputeType_t</c>: float32 accumulation.</summary>
    public const int Compute32F = 68;

    /// <summary><c>cublasGemmAlgo_t</c>: the library's heuristic choice.</summary>
    public const int GemmDefault = -1;

    /// <summary><c>libraryPropertyType</c> for cublasGetProperty.</summary>
    public const int MajorVersion = 0;
    public const int MinorVersion = 1;
    public const int PatchLevel = 2;

    private static readonly Lazy<Cublas> Shared = new(() => new Cublas(NativeLibraryProbe.Load(CudaLibraryKind.Cublas)));

    public readonly delegate* unmanaged<nint*, CublasStatus> cublasCreate_v2;
    public readonly delegate* unmanaged<nint, CublasStatus> cublasDestroy_v2;
    public readonly delegate* unmanaged<nint, int*, CublasStatus> cublasGetVersion_v2;
    public readonly delegate* unmanaged<int, int*, CublasStatus> cublasGetProperty;
    public readonly delegate* unmanaged<nint, nint, CublasStatus> cublasSetStream_v2;
    public readonly delegate* unmanaged<nint, int, CublasStatus> cublasSetMathMode;
    public readonly delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, ulong, int, float*, ulong, int,
        CublasStatus> cublasSgemm_v2;
    public readonly delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, long, ulong, int, long, float*,
        ulong, int, long, int, CublasStatus> cublasSgemmStridedBatched;

    /// <summary>cublasGemmEx (handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype,
    /// ldc, computeType, algo): the GEMM with bf16 operands; null when the library lacks it (IGpuDevice.GemmBf16 then
    /// throws naming it).</summary>
    public readonly delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, int, ulong, int, int, float*,
        ulong, int, int, int, int, CublasStatus> cublasGemmEx;

    /// <summary>cublasGemmStridedBatchedEx (handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype,
    /// ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType, algo): cublasGemmEx over a batch of
    /// matrices a constant stride apart (strides in elements, 64-bit); null when the library lacks it
    /// (IGpuDevice.GemmBf16StridedBatched then throws naming it).</summary>
    public readonly delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, int, long, ulong, int, int,
        long, float*, ulong, int, int, long, int, int, int, CublasStatus> cublasGemmStridedBatchedEx;

    /// <summary>Optional (cuBLAS 11.4+): status name/text; null when absent.</summary>
    public readonly delegate* unmanaged<CublasStatus, byte*> cublasGetStatusString;

    private Cublas(LoadedNativeLibrary lib)
    {
        Library = lib;
        cublasCreate_v2 = (delegate* unmanaged<nint*, CublasStatus>)lib.Require("cublasCreate_v2");
        cublasDestroy_v2 = (delegate* unmanaged<nint, CublasStatus>)lib.Require("cublasDestroy_v2");
        cublasGetVersion_v2 = (delegate* unmanaged<nint, int*, CublasStatus>)lib.Require("cublasGetVersion_v2");
        cublasGetProperty = (delegate* unmanaged<int, int*, CublasStatus>)lib.Require("cublasGetProperty");
        cublasSetStream_v2 = (delegate* unmanaged<nint, nint, CublasStatus>)lib.Require("cublasSetStream_v2");
        cublasSetMathMode = (delegate* unmanaged<nint, int, CublasStatus>)lib.Require("cublasSetMathMode");
        cublasSgemm_v2 = (delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, ulong, int, float*,
            ulong, int, CublasStatus>)lib.Require("cublasSgemm_v2");
        cublasSgemmStridedBatched = (delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, long, ulong,
            int, long, float*, ulong, int, long, int, CublasStatus>)lib.Require("cublasSgemmStridedBatched");
        cublasGemmEx = (delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, int, ulong, int, int,
            float*, ulong, int, int, int, int, CublasStatus>)lib.Optional("cublasGemmEx");
        cublasGemmStridedBatchedEx = (delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, int, long,
            ulong, int, int, long, float*, ulong, int, int, long, int, int, int, CublasStatus>)lib.Optional(
            "cublasGemmStridedBatchedEx");
        cublasGetStatusString = (delegate* unmanaged<CublasStatus, byte*>)lib.Optional("cublasGetStatusString");
    }

    /// <summary>The loaded libcublas.</summary>
    public LoadedNativeLibrary Library { get; }

    /// <summary>The process-wide cuBLAS binding; throws <see cref="CudaLibraryNotFoundException"/> when
    /// absent.</summary>
    public static Cublas Api => Shared.Value;

    /// <summary>"CUBLAS_STATUS_X (text)" for a status.</summary>
    public string Describe(CublasStatus status)
    {
        string name = $"CUBLAS_STATUS_{status}";
        byte* s = cublasGetStatusString == null ? null : cublasGetStatusString(status);
        return s == null ? name : $"{name}: {Driver.Utf8(s)}";
    }

    /// <summary>The cuBLAS library version as major.minor.patch, without needing a handle or a GPU.</summary>
    public string VersionString()
    {
        int major, minor, patch;
        CublasException.ThrowIfFailed(cublasGetProperty(MajorVersion, &major));
        CublasException.ThrowIfFailed(cublasGetProperty(MinorVersion, &minor));
        CublasException.ThrowIfFailed(cublasGetProperty(PatchLevel, &patch));
        return $"{major}.{minor}.{patch}";
    }
}
