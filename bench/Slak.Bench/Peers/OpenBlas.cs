// P/Invoke into Debian's OpenBLAS (libopenblas.so.0), the peer the CPU GEMM is measured against side by side.
using System.Runtime.InteropServices;

namespace Slak.Bench.Peers;

/// <summary>The few OpenBLAS entry points the benchmarks call (row-major cblas_sgemm, thread control).</summary>
internal static unsafe partial class OpenBlas
{
    private const string Lib = "libopenblas.so.0";
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    [LibraryImport(Lib, EntryPoint = "cblas_sgemm")]
    private static partial void CblasSgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Lib, EntryPoint = "openblas_set_num_threads")]
    private static partial void SetNumThreadsNative(int threads);

    [LibraryImport(Lib, EntryPoint = "openblas_get_config")]
    private static partial nint GetConfigNative();

    /// <summary>True when libopenblas.so.0 can be loaded on this machine.</summary>
    public static bool IsAvailable => NativeLibrary.TryLoad(Lib, out _);

    /// <summary>OpenBLAS build string (version, target core, thread model).</summary>
    public static string Config => Marshal.PtrToStringAnsi(GetConfigNative()) ?? "?";

    /// <summary>Sets OpenBLAS's thread count.</summary>
    public static void SetNumThreads(int threads) => SetNumThreadsNative(threads);

    /// <summary>Row-major sgemm with the same argument convention as CpuGemm.Sgemm.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a,
        int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
            CblasSgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, pa, lda, pb, ldb,
                beta, pc, ldc);
    }
}
