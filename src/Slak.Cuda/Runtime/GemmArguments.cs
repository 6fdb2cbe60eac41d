// Argument checks shared by every Sgemm implementation (driver device, emulator): row-major shapes and strides.
namespace Slak.Cuda.Runtime;

/// <summary>Validation of row-major GEMM arguments.</summary>
internal static class GemmArguments
{
    /// <summary>Throws an <see cref="ArgumentException"/> naming the offending argument and values when the
    /// row-major GEMM C(m,n) = op(A)(m,k)·op(B)(k,n) is inconsistent.</summary>
    public static void Validate(bool transA, bool transB, int m, int n, int k,
                                DevicePtr a, int lda, DevicePtr b, int ldb, DevicePtr c, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
        {
            throw new ArgumentException($"GEMM sizes must be >= 0, got m={m} n={n} k={k}", nameof(m));
        }

        int minLda = Math.Max(1, transA ? m : k);
        int minLdb = Math.Max(1, transB ? k : n);
        int minLdc = Math.Max(1, n);
        if (lda < minLda)
        {
            throw new ArgumentException($"lda must be >= {minLda} (transA={transA}, m={m}, k={k}), got lda={lda}", nameof(lda));
        }

        if (ldb < minLdb)
        {
            throw new ArgumentException($"ldb must be >= {minLdb} (transB={transB}, k={k}, n={n}), got ldb={ldb}", nameof(ldb));
        }

        if (ldc < minLdc)
        {
            throw new ArgumentException($"ldc must be >= {minLdc} (n={n}), got ldc={ldc}", nameof(ldc));
        }

        if (m > 0 && n > 0 && (c.IsNull || (k > 0 && (a.IsNull || b.IsNull))))
        {
            throw new ArgumentException($"GEMM operands must not be null, got a={a} b={b} c={c}", nameof(c));
        }
    }

    /// <summary>Throws an <see cref="ArgumentException"/> when a strided-batched GEMM's batch count or a stride is
    /// negative (the shapes are <see cref="Validate"/>'s).</summary>
    public static void ValidateBatch(int batch, long strideA, long strideB, long strideC)
    {
        if (batch < 0 || strideA < 0 || strideB < 0 || strideC < 0)
        {
            throw new ArgumentException(
                $"batch and strides must be >= 0, got batch={batch} strideA={strideA} strideB={strideB} strideC={strideC}",
                nameof(batch));
        }
    }
}
