// GEMMs for CudaDriverDevice through cuBLAS. cuBLAS is column-major; a row-major C = op(A)·op(B) is the
// column-major C^T = op(B)^T·op(A)^T, so we swap the operands and m/n and pass the row strides as leading
// dimensions (no transposition copies).
using Slak.Cuda.Interop;

namespace Slak.Cuda.Runtime;

internal sealed unsafe partial class CudaDriverDevice
{
    private nint _blas;
    private bool _allowTf32;

    /// <summary>Use TF32 tensor cores for fp32 GEMMs (faster on Ampere+, ~1e-3 relative error). Off by default.</summary>
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
                    CublasException.ThrowIfFailed(Cublas.Api.cublasSetMathMode(_blas,
                        value ? Cublas.Tf32TensorOpMath : Cublas.DefaultMath));
                }
            }
        }
    }

    /// <inheritdoc />
    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
                      DevicePtr a, int lda, DevicePtr b, int ldb, float beta, DevicePtr c, int ldc)
    {
        GemmArguments.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        if (m == 0 || n == 0)
        {
            return;
        }

        nint handle = EnsureBlas();
        CublasException.ThrowIfFailed(Cublas.Api.cublasSgemm_v2(handle,
            transB ? Cublas.OpT : Cublas.OpN, transA ? Cublas.OpT : Cublas.OpN, n, m, k,
            &alpha, b.Address, ldb, a.Address, lda, &beta, c.Address, ldc));
    }

    /// <inheritdoc />
    public void GemmBf16(bool transA, bool transB, int m, int n, int k, float alpha,
                         DevicePtr a, int lda, DevicePtr b, int ldb, float beta, DevicePtr c, int ldc)
    {
        GemmArguments.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        if (m == 0 || n == 0)
        {
            return;
        }

        var api = Cublas.Api;
        if (api.cublasGemmEx == null)
        {
            throw new NotSupportedException(
                $"GEMM with bf16 operands: the cuBLAS library {api.Library.Path} has no cublasGemmEx (needed by --precision bf16)");
        }

        nint handle = EnsureBlas();
        CublasException.ThrowIfFailed(api.cublasGemmEx(handle,
            transB ? Cublas.OpT : Cublas.OpN, transA ? Cublas.OpT : Cublas.OpN, n, m, k,
            &alpha, b.Address, Cublas.CudaR16BF, ldb, a.Address, Cublas.CudaR16BF, lda, &beta,
            c.Address, Cublas.CudaR32F, ldc, Cublas.Compute32F, Cublas.GemmDefault));
    }

    /// <inheritdoc />
    public void GemmBf16StridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
                                       DevicePtr a, int lda, long strideA, DevicePtr b, int ldb, long strideB,
                                       float beta, DevicePtr c, int ldc, long strideC, int batch)
    {
        GemmArguments.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        GemmArguments.ValidateBatch(batch, strideA, strideB, strideC);
        if (m == 0 || n == 0 || batch == 0)
        {
            return;
        }

        var api = Cublas.Api;
        if (api.cublasGemmStridedBatchedEx == null)
        {
            throw new NotSupportedException(
                $"batched GEMM with bf16 operands: the cuBLAS library {api.Library.Path} has no cublasGemmStridedBatchedEx (needed by --precision bf16)");
        }

        nint handle = EnsureBlas();
        CublasException.ThrowIfFailed(api.cublasGemmStridedBatchedEx(handle,
            transB ? Cublas.OpT : Cublas.OpN, transA ? Cublas.OpT : Cublas.OpN, n, m, k,
            &alpha, b.Address, Cublas.CudaR16BF, ldb, strideB, a.Address, Cublas.CudaR16BF, lda, strideA, &beta,
            c.Address, Cublas.CudaR32F, ldc, strideC, batch, Cublas.Compute32F, Cublas.GemmDefault));
    }

    /// <summary>Row-major batched GEMM: for each i in [0, batch), C_i = alpha·op(A_i)·op(B_i) + beta·C_i, with
    /// A_i = a + i·strideA elements (likewise B, C).</summary>
    public void SgemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
                                    DevicePtr a, int lda, long strideA, DevicePtr b, int ldb, long strideB,
                                    float beta, DevicePtr c, int ldc, long strideC, int batch)
    {
        GemmArguments.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        GemmArguments.ValidateBatch(batch, strideA, strideB, strideC);

        if (m == 0 || n == 0 || batch == 0)
        {
            return;
        }

        nint handle = EnsureBlas();
        CublasException.ThrowIfFailed(Cublas.Api.cublasSgemmStridedBatched(handle,
            transB ? Cublas.OpT : Cublas.OpN, transA ? Cublas.OpT : Cublas.OpN, n, m, k,
            &alpha, b.Address, ldb, strideB, a.Address, lda, strideA, &beta, c.Address, ldc, strideC, batch));
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
                CublasException.ThrowIfFailed(api.cublasSetMathMode(handle,
                    _allowTf32 ? Cublas.Tf32TensorOpMath : Cublas.DefaultMath));
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
