// The host GEMM the emulated device uses for IGpuDevice.Sgemm (the role cuBLAS has on a GPU).
namespace Slak.Cuda.Emulation;

/// <summary>Row-major single-precision GEMM on host memory: C = alpha * op(A) * op(B) + beta * C, with op(A) of
/// shape (m, k), op(B) of shape (k, n), C of shape (m, n) and leading dimensions in elements. When
/// <paramref name="beta"/> is 0, C is not read (BLAS semantics).</summary>
internal delegate void HostSgemmFunc(bool transA, bool transB, int m, int n, int k, float alpha,
                                   nint a, int lda, nint b, int ldb, float beta, nint c, int ldc);
