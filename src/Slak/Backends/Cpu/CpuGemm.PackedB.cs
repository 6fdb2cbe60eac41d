// A B operand packed once for many single-threaded products (the block MLP's weights, CpuMlp.cs): the row-block
// driver packs op(B) into k-major slivers on every call, and the MLP calls it once per block of rows with the same
// weight, so at slak_nano's last stages (hidden 496-996, blocks of 64-128 rows) the repack of both weights was a
// fifth to a quarter of each block's product time. Packed here in the driver's own layout, read by every block and
// thread; the products are the driver's, so the same bits as without the prepacked copy.
namespace Slak.Backends.Cpu;

internal static unsafe partial class CpuGemm
{
    /// <summary>op(B) (k x n) packed for <see cref="SgemmPackedB"/>; owns a workspace buffer until disposed.</summary>
    internal sealed class PackedB : IDisposable
    {
        private (nint Ptr, long Floats) _lease;

        /// <summary>Packs op(B) unless <paramref name="pack"/> is false (then every product packs it, as
        /// Sgemm).</summary>
        internal PackedB(bool transB, int k, int n, float* b, int ldb, bool pack = true)
        {
            K = k;
            N = n;
            TransB = transB;
            Source = b;
            Ldb = ldb;
            var kern = SelectKernel(GemmKernel.Auto);
            // One panel of n columns: the driver's layout when n <= Nc (else SgemmPackedB packs per call).
            if (!pack || k == 0 || n == 0 || n > kern.Nc) return;
            int nr = kern.Nr, kBlocks = CeilDiv(k, kern.Kc), kcMax = CeilDiv(k, kBlocks), ncMax = RoundUp(n, nr);
            Data = Workspace.Rent((long)k * ncMax, out _lease);
            for (int p0 = 0; p0 < k; p0 += kcMax)
            {
                int kq = Math.Min(kcMax, k - p0);
                for (int s = 0; s * nr < n; s++)
                    PackB(transB, b, ldb, p0, s * nr, kq, Math.Min(nr, n - s * nr), nr,
                        Data + (long)p0 * ncMax + (long)s * nr * kq);
            }
        }

        internal int K { get; }
        internal int N { get; }
        internal float* Data { get; private set; }
        internal bool TransB { get; }
        internal float* Source { get; }
        internal int Ldb { get; }

        public void Dispose()
        {
            if (Data == null) return;
            Workspace.Return(_lease);
            Data = null;
        }
    }

    /// <summary>C(m, n) = alpha op(A) op(B) + beta C on the calling thread with op(B) packed once beforehand (same bits
    /// as <see cref="Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float,
    /// Span{float}, int, int, GemmKernel, GemmEpilogue?)"/> at one thread). A is read untransposed (m x k, row stride
    /// lda).</summary>
    internal static void SgemmPackedB(int m, PackedB b, float alpha, float* a, int lda, float beta, float* c, int ldc,
        GemmEpilogue? epilogue = null)
    {
        int n = b.N, k = b.K;
        if (b.Data == null || m == 0 || alpha == 0f)
        {
            int bRows = b.TransB ? n : k, bCols = b.TransB ? k : n;
            Sgemm(false, b.TransB, m, n, k, alpha, new ReadOnlySpan<float>(a, Extent(m, lda, k)), lda,
                new ReadOnlySpan<float>(b.Source, Extent(bRows, b.Ldb, bCols)), b.Ldb, beta,
                new Span<float>(c, Extent(m, ldc, n)), ldc, 1, GemmKernel.Auto, epilogue);
            return;
        }
        DriveLocalA(SelectKernel(GemmKernel.Auto), false, b.TransB, m, n, k, alpha, a, lda, b.Source, b.Ldb, beta, c,
            ldc, 1, epilogue, b.Data);
    }

    // Floats spanned by `rows` rows of `cols` floats at row stride ld.
    private static int Extent(int rows, int ld, int cols) => rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
}
