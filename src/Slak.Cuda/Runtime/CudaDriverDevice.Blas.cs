// GEMMs for CudaDriverDevice through cuBLAS. cuBLAS is column-major; a row-major C = op(A)·op(B) is the
// column-major C^T = op(B)^T·op(A)^T, so we swap the operands and m/n and pass the row strides as leading
// dimensions (no transposition copies).
using Slak.Cuda.Interop;

namespace Slak.Cuda.Runtime;

internal sealed unsafe partial class CudaDriverDevice
{
    private nint _blas;
    private bool _allowTf32;

    /// <summary>Use TF32 tensor cores for fp32 GEMMs (faster on Ampere+, ~1e-3 relative error). Off by
    /// default.</summary>
    public bool AllowTf32
    {
        get => _allowTf32;
        set
        {
            lock (_lock)
            {
                _allowTf32 = value;
                if (_blas != 0)
                {
                    Enter();
                    CublasException.ThrowIfFailed(Cublas.Api.cublasSetMathMode(_blas, MathMode(value)));
                }
            }
        }
    }

    /// <inheritdoc />
    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
                      DevicePtr a, int lda, DevicePtr b, int ldb, float beta, DevicePtr c, int ldc)
    {
        if (!Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc))
        {
            return;
        }

        nint handle = EnsureBlas();
        CublasException.ThrowIfFailed(Cublas.Api.cublasSgemm_v2(handle, Op(transB), Op(transA), n, m, k,
            &alpha, b.Address, ldb, a.Address, lda, &beta, c.Address, ldc));
    }

    /// <inheritdoc />
    public void GemmBf16(bool transA, bool transB, int m, int n, int k, float alpha,
                         DevicePtr a, int lda, DevicePtr b, int ldb, float beta, DevicePtr c, int ldc)
    {
        if (!Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc))
        {
            return;
        }

        var api = Cublas.Api;
        RequireEntry(api, api.cublasGemmEx != null, "GEMM", "cublasGemmEx");
        nint handle = EnsureBlas();
        CublasException.ThrowIfFailed(api.cublasGemmEx(handle, Op(transB), Op(transA), n, m, k,
            &alpha, b.Address, Cublas.CudaR16BF, ldb, a.Address, Cublas.CudaR16BF, lda, &beta,
            c.Address, Cublas.CudaR32F, ldc, Cublas.Compute32F, Cublas.GemmDefault));
    }

    /// <inheritdoc />
    public void GemmBf16StridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
                                       DevicePtr a, int lda, long strideA, DevicePtr b, int ldb, long strideB,
                                       float beta, DevicePtr c, int ldc, long strideC, int batch)
    {
        if (!ValidateBatched(transA, transB, m, n, k, a, lda, strideA, b, ldb, strideB, c, ldc, strideC, batch))
        {
            return;
        }

        var api = Cublas.Api;
        RequireEntry(api, api.cublasGemmStridedBatchedEx != null, "batched GEMM", "cublasGemmStridedBatchedEx");
        nint handle = EnsureBlas();
        CublasException.ThrowIfFailed(api.cublasGemmStridedBatchedEx(handle, Op(transB), Op(transA), n, m, k,
            &alpha, b.Address, Cublas.CudaR16BF, ldb, strideB, a.Address, Cublas.CudaR16BF, lda, strideA, &beta,
            c.Address, Cublas.CudaR32F, ldc, strideC, batch, Cublas.Compute32F, Cublas.GemmDefault));
    }

    /// <summary>Row-major batched GEMM: for each i in [0, batch), C_i = alpha·op(A_i)·op(B_i) + beta·C_i, with
    /// A_i = a + i·strideA elements (likewise B, C).</summary>
    public void SgemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
                                    DevicePtr a, int lda, long strideA, DevicePtr b, int ldb, long strideB,
                                    float beta, DevicePtr c, int ldc, long strideC, int batch)
    {
        if (!ValidateBatched(transA, transB, m, n, k, a, lda, strideA, b, ldb, strideB, c, ldc, strideC, batch))
        {
            return;
        }

        nint handle = EnsureBlas();
        CublasException.ThrowIfFailed(Cublas.Api.cublasSgemmStridedBatched(handle, Op(transB), Op(transA), n, m, k,
            &alpha, b.Address, ldb, strideB, a.Address, lda, strideA, &beta, c.Address, ldc, strideC, batch));
    }

    /// <summary>cuBLAS's operation for a row-major operand: passed as the other operand of the column-major call
    /// (see the file header), with its own transposition flag.</summary>
    private static int Op(bool trans) => trans ? Cublas.OpT : Cublas.OpN;

    /// <summary>cuBLAS's math mode for <see cref="AllowTf32"/>.</summary>
    private static int MathMode(bool allowTf32) => allowTf32 ? Cublas.Tf32TensorOpMath : Cublas.DefaultMath;

    /// <summary>Validates a GEMM's arguments (throwing on bad ones); false when C is empty and there is nothing to
    /// launch.</summary>
    private static bool Validate(bool transA, bool transB, int m, int n, int k,
                                 DevicePtr a, int lda, DevicePtr b, int ldb, DevicePtr c, int ldc)
    {
        GemmArguments.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        return m != 0 && n != 0;
    }

    /// <summary><see cref="Validate"/> for a strided batch; false also when the batch is empty.</summary>
    private static bool ValidateBatched(bool transA, bool transB, int m, int n, int k,
                                        DevicePtr a, int lda, long strideA, DevicePtr b, int ldb, long strideB,
                                        DevicePtr c, int ldc, long strideC, int batch)
    {
        GemmArguments.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        GemmArguments.ValidateBatch(batch, strideA, strideB, strideC);
        return m != 0 && n != 0 && batch != 0;
    }

    /// <summary>Throws when the loaded cuBLAS lacks <paramref name="entry"/>, an optional entry point that only the
    /// bf16 GEMMs (<paramref name="what"/> with bf16 operands) need.</summary>
    private static void RequireEntry(Cublas api, bool present, string what, string entry)
    {
        if (!present)
        {
            throw new NotSupportedException(
                $"{what} with bf16 operands: the cuBLAS library {api.Library.Path} has no {entry} (needed by --precision bf16)");
        }
    }

    private nint EnsureBlas()
    {
        lock (_lock)
        {
            Enter();
            if (_blas == 0)
            {
                Cublas api = Cublas.Api;
                nint handle;
                CublasException.ThrowIfFailed(api.cublasCreate_v2(&handle));
                _blas = handle;
                CublasException.ThrowIfFailed(api.cublasSetStream_v2(handle, StreamHandle));
                CublasException.ThrowIfFailed(api.cublasSetMathMode(handle, MathMode(_allowTf32)));
            }

            return _blas;
        }
    }

    private void ReleaseBlas()
    {
        if (_blas != 0)
        {
            _ = Cublas.Api.cublasDestroy_v2(_blas);
            _blas = 0;
        }
    }
}
