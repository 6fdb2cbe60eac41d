// Single-precision GEMM of the CPU backend: the 1x1 convolutions / Linear layers of SLaK are ~80 % of its FLOPs, so
// this is a Goto/BLIS-style blocked GEMM (pack B panels and A blocks, register-blocked FMA micro-kernel) instead of
// a naive loop. This file holds the public entry point, validation and the blocking driver; packing and the
// micro-kernels live in CpuGemm.Pack.cs and CpuGemm.Kernels.cs.
using System.Runtime.InteropServices;

namespace Slak.Backends.Cpu;

/// <summary>Row-major single-precision matrix multiply (BLAS sgemm semantics), cache-blocked, SIMD, multi-threaded.</summary>
public static unsafe partial class CpuGemm
{
    // Below this many multiply-adds a call runs on the calling thread: the fork/join costs more than it saves.
    private const long ParallelThreshold = 1L << 18;

    // Rows of A packed per driver step; bounds the packed-A workspace (4096 x 256 floats = 4 MiB).
    private const int MChunk = 4096;

    /// <summary>
    /// C(m,n) = alpha * op(A) * op(B) + beta * C, all row-major. op(A) is (m,k): A is stored (m,k) with row stride
    /// <paramref name="lda"/>, or (k,m) when <paramref name="transA"/>. op(B) is (k,n): B is stored (k,n) with row
    /// stride <paramref name="ldb"/>, or (n,k) when <paramref name="transB"/>. When <paramref name="beta"/> is 0 the
    /// old content of C is never read (NaN in C does not propagate). Uses up to <see cref="CpuParallel.Threads"/>
    /// threads.
    /// </summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
        => Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, CpuParallel.Threads, GemmKernel.Auto);

    /// <summary>Same as the public overload, with an explicit thread budget (1 = run on the calling thread), for
    /// callers that already parallelise over an outer dimension (e.g. convolution over images), and an explicit
    /// micro-kernel (tests run every kernel this machine supports).</summary>
    internal static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a,
        int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc, int threads,
        GemmKernel kernel = GemmKernel.Auto)
    {
        Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        if (threads < 1)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "thread count must be >= 1");
        if (m == 0 || n == 0) return;
        if ((long)m * n * k < ParallelThreshold) threads = 1;

        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            if (k == 0 || alpha == 0f)
            {
                ScaleC(m, n, beta, pc, ldc);
                return;
            }
            Drive(SelectKernel(kernel), transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, threads);
        }
    }

    private static void Validate(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc)
    {
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, $"m must be >= 0, got m={m}");
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, $"n must be >= 0, got n={n}");
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be >= 0, got k={k}");

        // Stored shapes (rows, cols) of A and B.
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        if (lda < Math.Max(1, aCols))
            throw new ArgumentOutOfRangeException(nameof(lda), lda,
                $"lda must be >= max(1, {(transA ? "m" : "k")}={aCols}) for transA={transA}, got lda={lda}");
        if (ldb < Math.Max(1, bCols))
            throw new ArgumentOutOfRangeException(nameof(ldb), ldb,
                $"ldb must be >= max(1, {(transB ? "k" : "n")}={bCols}) for transB={transB}, got ldb={ldb}");
        if (ldc < Math.Max(1, n))
            throw new ArgumentOutOfRangeException(nameof(ldc), ldc, $"ldc must be >= max(1, n={n}), got ldc={ldc}");

        long needA = aRows == 0 || aCols == 0 ? 0 : (long)(aRows - 1) * lda + aCols;
        long needB = bRows == 0 || bCols == 0 ? 0 : (long)(bRows - 1) * ldb + bCols;
        long needC = m == 0 || n == 0 ? 0 : (long)(m - 1) * ldc + n;
        if (a.Length < needA)
            throw new ArgumentException(
                $"a holds {a.Length} floats but a ({aRows} x {aCols}) with lda={lda} needs {needA}", nameof(a));
        if (b.Length < needB)
            throw new ArgumentException(
                $"b holds {b.Length} floats but b ({bRows} x {bCols}) with ldb={ldb} needs {needB}", nameof(b));
        if (c.Length < needC)
            throw new ArgumentException(
                $"c holds {c.Length} floats but c ({m} x {n}) with ldc={ldc} needs {needC}", nameof(c));
        if (needC > 0 && needA > 0 && c[..(int)needC].Overlaps(a[..(int)needA]))
            throw new ArgumentException("c must not overlap a (the result would be read while written)", nameof(c));
        if (needC > 0 && needB > 0 && c[..(int)needC].Overlaps(b[..(int)needB]))
            throw new ArgumentException("c must not overlap b (the result would be read while written)", nameof(c));
    }

    private static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0f) row.Clear();
            else if (beta != 1f)
                for (int j = 0; j < n; j++) row[j] *= beta;
        }
    }

    // Loop nest (BLIS naming): jc over NC-wide column panels of B, pc over KC-deep slices of k (B slice packed once
    // and shared by all threads), ic over MChunk rows of A (packed once, shared), then parallel tiles of
    // (MC rows x some NR slivers), each running the micro-kernel over its slivers x MR-row strips.
    private static void Drive(KernelInfo kern, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        int mr = kern.Mr, nr = kern.Nr;
        int kBlocks = CeilDiv(k, kern.Kc);
        int kcMax = CeilDiv(k, kBlocks);
        int nBlocks = CeilDiv(n, kern.Nc);
        int ncMax = RoundUp(CeilDiv(n, nBlocks), nr);
        int mChunk = Math.Min(RoundUp(m, mr), MChunk);

        long packBFloats = (long)kcMax * ncMax;
        long packAFloats = ((long)kcMax * mChunk + 15) & ~15L; // keeps packB 64-byte aligned for LoadAligned
        float* ws = Workspace.Rent(packAFloats + packBFloats, out var lease);
        try
        {
            float* packA = ws;
            float* packB = ws + packAFloats;
            nint aP = (nint)a, bP = (nint)b, cP = (nint)c, packAP = (nint)packA, packBP = (nint)packB;

            for (int jc = 0; jc < n; jc += ncMax)
            {
                int ncur = Math.Min(ncMax, n - jc);
                int nSlivers = CeilDiv(ncur, nr);
                for (int pc = 0; pc < k; pc += kcMax)
                {
                    int kcur = Math.Min(kcMax, k - pc);
                    float betaEff = pc == 0 ? beta : 1f;
                    int jc0 = jc, pc0 = pc;

                    int bTasks = Math.Min(nSlivers, threads * 4);
                    int slPerBTask = CeilDiv(nSlivers, bTasks);
                    ParallelFor(CeilDiv(nSlivers, slPerBTask), threads, t =>
                    {
                        int s0 = t * slPerBTask, s1 = Math.Min(nSlivers, s0 + slPerBTask);
                        for (int s = s0; s < s1; s++)
                            PackB(transB, (float*)bP, ldb, pc0, jc0 + s * nr, kcur, Math.Min(nr, ncur - s * nr),
                                nr, (float*)packBP + (long)s * nr * kcur);
                    });

                    for (int ic = 0; ic < m; ic += mChunk)
                    {
                        int mcur = Math.Min(mChunk, m - ic);
                        int ic0 = ic;
                        int mStrips = CeilDiv(mcur, mr);
                        int aTasks = Math.Min(mStrips, threads * 4);
                        int stPerATask = CeilDiv(mStrips, aTasks);
                        ParallelFor(CeilDiv(mStrips, stPerATask), threads, t =>
                        {
                            int s0 = t * stPerATask, s1 = Math.Min(mStrips, s0 + stPerATask);
                            for (int s = s0; s < s1; s++)
                                PackA(transA, (float*)aP, lda, ic0 + s * mr, pc0, Math.Min(mr, mcur - s * mr), kcur,
                                    mr, (float*)packAP + (long)s * mr * kcur);
                        });

                        // Tiles: MC-row blocks x groups of slivers; enough tiles (8 per thread) to balance load.
                        int mBlocks = CeilDiv(mcur, kern.Mc);
                        int nTiles = threads == 1 ? 1 : Math.Clamp(CeilDiv(8 * threads, mBlocks), 1, nSlivers);
                        int slPerTile = CeilDiv(nSlivers, nTiles);
                        nTiles = CeilDiv(nSlivers, slPerTile);
                        ParallelFor(mBlocks * nTiles, threads, t =>
                        {
                            int mb = t / nTiles, nt = t % nTiles;
                            int r0 = mb * kern.Mc, r1 = Math.Min(mcur, r0 + kern.Mc);
                            int s0 = nt * slPerTile, s1 = Math.Min(nSlivers, s0 + slPerTile);
                            for (int s = s0; s < s1; s++)
                            {
                                float* pbS = (float*)packBP + (long)s * nr * kcur;
                                int cols = Math.Min(nr, ncur - s * nr);
                                for (int r = r0; r < r1; r += mr)
                                {
                                    float* paS = (float*)packAP + (long)(r / mr) * mr * kcur;
                                    float* cS = (float*)cP + (long)(ic0 + r) * ldc + jc0 + s * nr;
                                    kern.Run(kcur, paS, pbS, cS, ldc, alpha, betaEff, Math.Min(mr, mcur - r), cols);
                                }
                            }
                        });
                    }
                }
            }
        }
        finally
        {
            Workspace.Return(lease);
        }
    }

    private static void ParallelFor(int count, int threads, Action<int> body)
    {
        if (threads <= 1 || count <= 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        CpuParallel.For(0, count, body);
    }

    private static int CeilDiv(int a, int b) => (a + b - 1) / b;

    private static int RoundUp(int a, int b) => CeilDiv(a, b) * b;

    // Packed panels are reused across calls: a GEMM per layer per step must not allocate (and page-fault) megabytes.
    // Buffers are 64-byte aligned native memory, kept in a small pool so concurrent callers each get their own.
    private static class Workspace
    {
        private static readonly Stack<(nint Ptr, long Floats)> Free = new();
        private static readonly Lock Gate = new();

        public static float* Rent(long floats, out (nint Ptr, long Floats) lease)
        {
            lock (Gate)
            {
                while (Free.Count > 0)
                {
                    var top = Free.Pop();
                    if (top.Floats >= floats)
                    {
                        lease = top;
                        return (float*)top.Ptr;
                    }
                    NativeMemory.AlignedFree((void*)top.Ptr);
                }
            }
            long size = Math.Max(floats, 1);
            lease = ((nint)NativeMemory.AlignedAlloc((nuint)(size * sizeof(float)), 64), size);
            return (float*)lease.Ptr;
        }

        public static void Return((nint Ptr, long Floats) lease)
        {
            lock (Gate)
            {
                if (Free.Count < 8) Free.Push(lease);
                else NativeMemory.AlignedFree((void*)lease.Ptr);
            }
        }
    }
}
