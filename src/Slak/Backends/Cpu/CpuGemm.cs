// Single-precision GEMM of the CPU backend: the 1x1 convolutions / Linear layers of SLaK are ~80 % of its FLOPs, so
// this is a Goto/BLIS-style blocked GEMM (pack B panels and A blocks, register-blocked FMA micro-kernel) instead of
// a naive loop. This file holds the public entry point, validation and the four blocking drivers (tall A: row-block
// tasks; one row block: tiles that pack their own B; otherwise: shared packed panels and 2-D tiles; small C with long
// k: split k); packing, micro-kernels and the
// workspace pool live in CpuGemm.Pack.cs, CpuGemm.Kernels.cs and CpuGemm.Workspace.cs.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

/// <summary>Row-major single-precision matrix multiply (BLAS sgemm semantics), cache-blocked, SIMD,
/// multi-threaded.</summary>
internal static unsafe partial class CpuGemm
{
    // Below this many multiply-adds a call runs on the calling thread: the fork/join costs more than it saves.
    private const long ParallelThreshold = 1L << 18;

    /// <summary>Bound on the packed copy of A (floats; 64 MiB): past it rows of A are packed and multiplied in
    /// chunks. Internal and settable only so that tests can reach the chunked path with small matrices.</summary>
    internal static long MaxPackedA { get; set; } = 1L << 24;

    // Split-k path: taken when C is at most this many elements and k at least this long.
    private const long KSplitMaxMn = 1L << 19;
    private const int KSplitMinK = 2048;

    // Transposed A read in place by the row-block driver when n spans at most this many slivers (see DriveLocalA).
    private const int DirectAMaxSlivers = 2;

    /// <summary>True (the default): the row-block driver reads a transposed A in place when few slivers read it
    /// (the weight gradients of narrow layers). False: it packs every strip, as before; internal and settable only
    /// so that the bench (nano-gemm) can time both in one run and tests can compare them.</summary>
    internal static bool DirectTransposedA { get; set; } = true;

    /// <summary>False (the default): AVX-512 edge tiles are written with masked stores, a small B is packed on the
    /// calling thread instead of in its own parallel phase, a row-major A is read in place when n spans at most two
    /// slivers, products of one row block run as tiles that pack their own B and apply the epilogue, split-k sums a
    /// small C on the calling thread, and the swapped A^T B (only from k = <see cref="SwapMinK"/> at two or more
    /// threads) writes C back through 8x8 transposes. True: the earlier paths (a stack tile merged into C, every B
    /// packed in a parallel phase, every A strip packed, the shared-panel driver with the epilogue after it, the sum
    /// forked, always swapped with the scalar transpose-back). Internal and settable only so that the bench
    /// (gemm-nano-step) can time both in one run and tests can compare them.</summary>
    internal static bool LegacyPaths { get; set; }

    // The swapped A^T B (see SwappedTN) at two or more threads only from this k on: with a short k the transpose back
    // costs more than the swap saves (bench gemm-nano-step, slak_nano's last-stage dW).
    // Internal and settable only so that the bench can time the always-swapped form against it.
    internal static int SwapMinK { get; set; } = 1024;

    // A row-major A is read in place by the row-block driver, whatever the number of slivers, up to this k.
    private const int RowAMaxShortK = 64;

    // B panels up to this many floats (64 KiB) are packed on the calling thread: a fork/join costs more.
    private const long InlinePackBMaxFloats = 1L << 14;

    // Row blocks per thread from which tasks over row blocks alone balance well (else tiles split n as well).
    private const int LocalAMinBlocksPerThread = 4;

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
        GemmKernel kernel = GemmKernel.Auto, GemmEpilogue? epilogue = null)
    {
        Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        if (threads < 1)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "thread count must be >= 1");
        if (m == 0 || n == 0)
        {
            epilogue?.Begin(m, n, 0);
            epilogue?.End();
            return;
        }
        if ((long)m * n * k < ParallelThreshold) threads = 1;
        if (epilogue is null && transA && !transB && m < n && k > 0 && alpha != 0f
            && (LegacyPaths || k >= SwapMinK || threads == 1))
        {
            SwappedTN(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, kernel);
            return;
        }

        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var kern = SelectKernel(kernel);
            if (k == 0 || alpha == 0f)
                ScaleC(m, n, beta, pc, ldc);
            else if (threads > 1 && k >= KSplitMinK && (long)m * n <= KSplitMaxMn)
                DriveSplitK(kern, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, threads);
            else if (threads == 1 || CeilDiv(m, kern.Mc) >= LocalAMinBlocksPerThread * threads)
            {
                DriveLocalA(kern, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, threads, epilogue);
                return;
            }
            else if (!LegacyPaths && m <= kern.Mc)
            {
                DriveOneBlock(kern, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, threads, epilogue);
                return;
            }
            else
                Drive(kern, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, threads);
            if (epilogue is not null) ApplyAfter(epilogue, m, n, pc, ldc, threads);
        }
    }

    // The epilogue of the drivers that do not call it per block: over C after the product, in one row range per
    // thread (C is small on these paths: few rows, or the split-k products).
    private static void ApplyAfter(GemmEpilogue epilogue, int m, int n, float* c, int ldc, int threads)
    {
        int parts = Math.Max(1, Math.Min(threads, m));
        epilogue.Begin(m, n, parts);
        nint cP = (nint)c;
        ParallelFor(parts, parts, part =>
        {
            int i0 = (int)((long)m * part / parts), i1 = (int)((long)m * (part + 1) / parts);
            epilogue.Apply((float*)cP, ldc, i0, i1 - i0, 0, n, part);
        });
        epilogue.End();
    }

    // C = A^T B with fewer rows than columns (weight gradients dW = dY^T X whose output side is the narrow one):
    // computed as C^T = B^T A into a scratch buffer and transposed back, so the long side is the row side that
    // the drivers split and stream (measured 1.3-2x faster on slak_nano's dW shapes, bench nano-gemm).
    private static void SwappedTN(int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc, int threads, GemmKernel kernel)
    {
        float* t = Workspace.Rent((long)m * n, out var lease);
        try
        {
            var tmp = new Span<float>(t, m * n);
            Sgemm(true, false, n, m, k, alpha, b, ldb, a, lda, 0f, tmp, m, threads, kernel);
            if (!LegacyPaths && Avx.IsSupported)
            {
                fixed (float* pc = c) TransposeBack(t, m, n, beta, pc, ldc);
                return;
            }
            for (int i = 0; i < m; i++)
            {
                var row = c.Slice(i * ldc, n);
                if (beta == 0f)
                    for (int j = 0; j < n; j++) row[j] = t[(long)j * m + i];
                else
                    for (int j = 0; j < n; j++) row[j] = t[(long)j * m + i] + beta * row[j];
            }
        }
        finally
        {
            Workspace.Return(lease);
        }
    }

    // C (m x n, row stride ldc) = T^T (+ beta * C) for T stored (n, m): 8 x 8 blocks through the in-register
    // transpose, the ragged rows and columns element by element; the same arithmetic as the scalar loop (t + beta * c,
    // no FMA), so the same bits.
    private static void TransposeBack(float* t, int m, int n, float beta, float* c, int ldc)
    {
        var vb = Vector256.Create(beta);
        int m8 = m & ~7, n8 = n & ~7;
        for (int i0 = 0; i0 < m8; i0 += 8)
        {
            for (int j0 = 0; j0 < n8; j0 += 8)
            {
                float* src = t + (long)j0 * m + i0;
                var r0 = Vector256.Load(src);
                var r1 = Vector256.Load(src + m);
                var r2 = Vector256.Load(src + 2L * m);
                var r3 = Vector256.Load(src + 3L * m);
                var r4 = Vector256.Load(src + 4L * m);
                var r5 = Vector256.Load(src + 5L * m);
                var r6 = Vector256.Load(src + 6L * m);
                var r7 = Vector256.Load(src + 7L * m);
                Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                float* dst = c + (long)i0 * ldc + j0;
                MergeRow8(r0, dst, vb, beta);
                MergeRow8(r1, dst + ldc, vb, beta);
                MergeRow8(r2, dst + 2L * ldc, vb, beta);
                MergeRow8(r3, dst + 3L * ldc, vb, beta);
                MergeRow8(r4, dst + 4L * ldc, vb, beta);
                MergeRow8(r5, dst + 5L * ldc, vb, beta);
                MergeRow8(r6, dst + 6L * ldc, vb, beta);
                MergeRow8(r7, dst + 7L * ldc, vb, beta);
            }
            for (int i = i0; i < i0 + 8; i++)
                for (int j = n8; j < n; j++) MergeOne(t[(long)j * m + i], c + (long)i * ldc + j, beta);
        }
        for (int i = m8; i < m; i++)
            for (int j = 0; j < n; j++) MergeOne(t[(long)j * m + i], c + (long)i * ldc + j, beta);
    }

    /// <summary>C (m x n, row stride ldc) = T^T for T stored (n, m) with row stride m (8 x 8 register transposes
    /// where AVX is supported).</summary>
    internal static void TransposeInto(float* t, int m, int n, float* c, int ldc)
    {
        if (Avx.IsSupported)
        {
            TransposeBack(t, m, n, 0f, c, ldc);
            return;
        }
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(long)i * ldc + j] = t[(long)j * m + i];
    }

    private static void MergeRow8(Vector256<float> v, float* dst, Vector256<float> vb, float beta)
        => Vector256.Store(beta == 0f ? v : v + vb * Vector256.Load(dst), dst);

    private static void MergeOne(float v, float* dst, float beta) => *dst = beta == 0f ? v : v + beta * *dst;

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

    // Goto/BLIS blocking with as few fork/joins as possible (each one costs a thread wake-up, which on a busy
    // machine can take longer than a whole block of work): per NC-wide column panel of B, one parallel phase packs
    // every KC-deep slice of that panel and of a chunk of A rows, a second runs all tiles (MC rows x a group of NR
    // slivers) of that chunk; a tile loops over the k slices itself, so the Mc x Kc block of A stays in L2 while
    // each Kc x NR sliver of B is in L1. Rows are chunked only to bound the packed-A workspace.
    private static void Drive(KernelInfo kern, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        int mr = kern.Mr, nr = kern.Nr;
        int kBlocks = CeilDiv(k, kern.Kc);
        int kcMax = CeilDiv(k, kBlocks);
        int nBlocks = CeilDiv(n, kern.Nc);
        int ncMax = RoundUp(CeilDiv(n, nBlocks), nr);
        int mChunk = RoundUp(Math.Min(m, Math.Max(kern.Mc, (int)Math.Min(int.MaxValue, MaxPackedA / k))), mr);

        // Packed B of one panel: slice q at q*kcMax*ncMax, sliver s at + s*nr*kq. Packed A of one chunk: slice q at
        // q*kcMax*mChunk, strip s at + s*mr*kq. Both start 64-byte aligned (Kc, mr and nr keep them so).
        long packAFloats = ((long)k * mChunk + 15) & ~15L;
        long packBFloats = (long)k * ncMax;
        float* ws = Workspace.Rent(packAFloats + packBFloats, out var lease);
        try
        {
            nint aP = (nint)a, bP = (nint)b, cP = (nint)c, packAP = (nint)ws, packBP = (nint)(ws + packAFloats);
            for (int jc = 0; jc < n; jc += ncMax)
            {
                int ncur = Math.Min(ncMax, n - jc), jc0 = jc;
                int nSlivers = CeilDiv(ncur, nr);
                int slPerBTask = CeilDiv(nSlivers, Math.Min(nSlivers, threads * 4));
                int bGroups = CeilDiv(nSlivers, slPerBTask);
                for (int ic = 0; ic < m; ic += mChunk)
                {
                    int mcur = Math.Min(mChunk, m - ic), ic0 = ic;
                    int mStrips = CeilDiv(mcur, mr);
                    int stPerATask = CeilDiv(mStrips, Math.Min(mStrips, threads * 4));
                    int aGroups = CeilDiv(mStrips, stPerATask);
                    int bTasks = ic == 0 ? bGroups * kBlocks : 0;
                    ParallelFor(bTasks + aGroups * kBlocks, threads, t =>
                    {
                        bool isB = t < bTasks;
                        int u = isB ? t : t - bTasks;
                        int groups = isB ? bGroups : aGroups;
                        int q = u / groups, g = u % groups;
                        int p0 = q * kcMax, kq = Math.Min(kcMax, k - p0);
                        if (isB)
                        {
                            float* dst = (float*)packBP + (long)p0 * ncMax;
                            int s1 = Math.Min(nSlivers, (g + 1) * slPerBTask);
                            for (int s = g * slPerBTask; s < s1; s++)
                                PackB(transB, (float*)bP, ldb, p0, jc0 + s * nr, kq, Math.Min(nr, ncur - s * nr), nr,
                                    dst + (long)s * nr * kq);
                        }
                        else
                        {
                            float* dst = (float*)packAP + (long)p0 * mChunk;
                            int s1 = Math.Min(mStrips, (g + 1) * stPerATask);
                            for (int s = g * stPerATask; s < s1; s++)
                                PackA(transA, (float*)aP, lda, ic0 + s * mr, p0, Math.Min(mr, mcur - s * mr), kq, mr,
                                    dst + (long)s * mr * kq);
                        }
                    });

                    // Tiles: row blocks of ~Mc rows (balanced, multiple of mr) x groups of slivers, >= 8 per thread.
                    int mBlocks = CeilDiv(mcur, kern.Mc);
                    int mcTile = RoundUp(CeilDiv(mcur, mBlocks), mr);
                    mBlocks = CeilDiv(mcur, mcTile);
                    int nTiles = threads == 1 ? 1 : Math.Clamp(CeilDiv(8 * threads, mBlocks), 1, nSlivers);
                    int slPerTile = CeilDiv(nSlivers, nTiles);
                    nTiles = CeilDiv(nSlivers, slPerTile);
                    ParallelFor(mBlocks * nTiles, threads, t =>
                    {
                        int mb = t / nTiles, nt = t % nTiles;
                        int r0 = mb * mcTile, r1 = Math.Min(mcur, r0 + mcTile);
                        int s0 = nt * slPerTile, s1 = Math.Min(nSlivers, s0 + slPerTile);
                        for (int p0 = 0; p0 < k; p0 += kcMax)
                        {
                            int kq = Math.Min(kcMax, k - p0);
                            float betaEff = p0 == 0 ? beta : 1f;
                            float* aSlice = (float*)packAP + (long)p0 * mChunk;
                            float* bSlice = (float*)packBP + (long)p0 * ncMax;
                            for (int s = s0; s < s1; s++)
                            {
                                float* pbS = bSlice + (long)s * nr * kq;
                                int cols = Math.Min(nr, ncur - s * nr);
                                for (int r = r0; r < r1; r += mr)
                                {
                                    float* cS = (float*)cP + (long)(ic0 + r) * ldc + jc0 + s * nr;
                                    kern.Run(kq, aSlice + (long)(r / mr) * mr * kq, pbS, cS, ldc, alpha, betaEff,
                                        Math.Min(mr, mcur - r), cols);
                                }
                            }
                        }
                    });
                }
            }
        }
        finally
        {
            Workspace.Return(lease);
        }
    }

    // One row block (m <= Mc: the products of the last stage, 128 rows), several threads: every sliver of B belongs
    // to exactly one tile, so each tile packs its own slivers right before multiplying them (no shared B phase), A is
    // packed once (on the calling thread when small, else in one parallel phase), and each tile applies the epilogue
    // to its finished columns (no phase after the product). One fork/join, two when A is large.
    private static void DriveOneBlock(KernelInfo kern, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads, GemmEpilogue? epilogue)
    {
        int mr = kern.Mr, nr = kern.Nr;
        int kBlocks = CeilDiv(k, kern.Kc);
        int kcMax = CeilDiv(k, kBlocks);
        int mStrips = CeilDiv(m, mr);
        int nSlivers = CeilDiv(n, nr);
        int nTiles = Math.Min(nSlivers, 8 * threads);
        int slPerTile = CeilDiv(nSlivers, nTiles);
        nTiles = CeilDiv(nSlivers, slPerTile);
        // Packed A: slice q at q*kcMax*mPad, strip s at + s*mr*kq. Packed B: tile t's slivers at t*slPerTile*nr*k,
        // slice q at + q*kcMax*slPerTile*nr, sliver at + (s - s0)*nr*kq.
        int mPad = mStrips * mr;
        long packAFloats = ((long)k * mPad + 15) & ~15L;
        long tileBFloats = (long)k * slPerTile * nr;
        float* ws = Workspace.Rent(packAFloats + nTiles * tileBFloats, out var lease);
        epilogue?.Begin(m, n, 1);
        try
        {
            nint aP = (nint)a, bP = (nint)b, cP = (nint)c, packAP = (nint)ws, packBP = (nint)(ws + packAFloats);
            int aTasks = (long)k * mPad <= InlinePackBMaxFloats ? 1 : Math.Min(mStrips * kBlocks, 4 * threads);
            ParallelFor(aTasks, threads, t =>
            {
                for (int u = t; u < mStrips * kBlocks; u += aTasks)
                {
                    int q = u / mStrips, s = u % mStrips;
                    int p0 = q * kcMax, kq = Math.Min(kcMax, k - p0);
                    PackA(transA, (float*)aP, lda, s * mr, p0, Math.Min(mr, m - s * mr), kq, mr,
                        (float*)packAP + (long)p0 * mPad + (long)s * mr * kq);
                }
            });
            ParallelFor(nTiles, threads, t =>
            {
                int s0 = t * slPerTile, s1 = Math.Min(nSlivers, s0 + slPerTile);
                float* tileB = (float*)packBP + t * tileBFloats;
                for (int p0 = 0; p0 < k; p0 += kcMax)
                {
                    int kq = Math.Min(kcMax, k - p0);
                    float betaEff = p0 == 0 ? beta : 1f;
                    float* aSlice = (float*)packAP + (long)p0 * mPad;
                    float* bSlice = tileB + (long)p0 * slPerTile * nr;
                    for (int s = s0; s < s1; s++)
                    {
                        float* pbS = bSlice + (long)(s - s0) * nr * kq;
                        int cols = Math.Min(nr, n - s * nr);
                        PackB(transB, (float*)bP, ldb, p0, s * nr, kq, cols, nr, pbS);
                        for (int r = 0; r < m; r += mr)
                            kern.Run(kq, aSlice + (long)(r / mr) * mr * kq, pbS, (float*)cP + (long)r * ldc + s * nr,
                                ldc, alpha, betaEff, Math.Min(mr, m - r), cols);
                    }
                }
                int col0 = s0 * nr, col1 = Math.Min(n, s1 * nr);
                epilogue?.Apply((float*)cP, ldc, 0, m, col0, col1 - col0, 0);
            });
        }
        finally
        {
            Workspace.Return(lease);
        }
        epilogue?.End();
    }

    // Many row blocks (tall A, the forward and dX products at high resolution): B is packed once and shared, but each
    // task packs its own Mc x Kc block of A right before multiplying it, so the block is still in L2 and A never
    // makes the round trip to memory as a packed copy. One fork/join packs B, one runs the row blocks.
    private static void DriveLocalA(KernelInfo kern, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads,
        GemmEpilogue? epilogue = null, float* prepackedB = null)
    {
        bool useDirectA = DirectTransposedA;
        int mr = kern.Mr, nr = kern.Nr;
        int kBlocks = CeilDiv(k, kern.Kc);
        int kcMax = CeilDiv(k, kBlocks);
        int nBlocks = CeilDiv(n, kern.Nc);
        int ncMax = RoundUp(CeilDiv(n, nBlocks), nr);
        int mBlocks = CeilDiv(m, kern.Mc);
        int mcTile = RoundUp(CeilDiv(m, mBlocks), mr);
        mBlocks = CeilDiv(m, mcTile);

        epilogue?.Begin(m, n, mBlocks);
        (nint Ptr, long Floats) lease = default;
        float* packB = prepackedB != null ? prepackedB : Workspace.Rent((long)k * ncMax, out lease);
        try
        {
            nint aP = (nint)a, bP = (nint)b, cP = (nint)c, packBP = (nint)packB;
            for (int jc = 0; jc < n; jc += ncMax)
            {
                int ncur = Math.Min(ncMax, n - jc), jc0 = jc;
                int nSlivers = CeilDiv(ncur, nr);
                int slPerBTask = CeilDiv(nSlivers, Math.Min(nSlivers, threads * 4));
                int bGroups = CeilDiv(nSlivers, slPerBTask);
                bool inlinePackB = !LegacyPaths && (long)k * ncur <= InlinePackBMaxFloats;
                if (prepackedB == null)
                ParallelFor(bGroups * kBlocks, inlinePackB ? 1 : threads, t =>
                {
                    int q = t / bGroups, g = t % bGroups;
                    int p0 = q * kcMax, kq = Math.Min(kcMax, k - p0);
                    float* dst = (float*)packBP + (long)p0 * ncMax;
                    int s1 = Math.Min(nSlivers, (g + 1) * slPerBTask);
                    for (int s = g * slPerBTask; s < s1; s++)
                        PackB(transB, (float*)bP, ldb, p0, jc0 + s * nr, kq, Math.Min(nr, ncur - s * nr), nr,
                            dst + (long)s * nr * kq);
                });

                // A transposed, stored (k, m), and read by at most DirectAMaxSlivers slivers (the weight gradients of
                // the narrow stages: n = C <= 64, k = batch x pixels): each full strip is read in place (Mr floats per
                // k step, row stride lda) instead of being copied once and read once; only a ragged strip is packed.
                bool directA = useDirectA && transA && nSlivers <= DirectAMaxSlivers;
                // The same for a row-major A (the forward and dX products into narrow outputs: n = C <= 64) where the
                // kernel can read 8 rows in place.
                // And wherever k is short (the block MLP's products with k = C = 31 or 62 into 124-248 columns): a
                // strip's 8 rows are then 8 x 1-4 cache lines that stay in L1 across all the slivers, the kernel
                // issues the same broadcasts as from a packed strip, and the pack (three 8 x 8 transposes and a
                // scalar tail per strip at k = 31) was a tenth of the product's time. Same arithmetic, same bits.
                bool rowA = !LegacyPaths && !transA && kern.HasRowA
                    && (nSlivers <= DirectAMaxSlivers || (!CpuRowOps.Legacy && k <= RowAMaxShortK));
                ParallelFor(mBlocks, threads, mb =>
                {
                    int r0 = mb * mcTile, r1 = Math.Min(m, r0 + mcTile);
                    float* packA = Workspace.Rent((long)mcTile * kcMax, out var aLease);
                    try
                    {
                        for (int p0 = 0; p0 < k; p0 += kcMax)
                        {
                            int kq = Math.Min(kcMax, k - p0);
                            float betaEff = p0 == 0 ? beta : 1f;
                            for (int r = r0; r < r1; r += mr)
                                if (!(directA || rowA) || r1 - r < mr)
                                    PackA(transA, (float*)aP, lda, r, p0, Math.Min(mr, r1 - r), kq, mr,
                                        packA + (long)((r - r0) / mr) * mr * kq);
                            float* bSlice = (float*)packBP + (long)p0 * ncMax;
                            for (int s = 0; s < nSlivers; s++)
                            {
                                float* pbS = bSlice + (long)s * nr * kq;
                                int cols = Math.Min(nr, ncur - s * nr);
                                for (int r = r0; r < r1; r += mr)
                                {
                                    float* cS = (float*)cP + (long)r * ldc + jc0 + s * nr;
                                    if (rowA && r1 - r >= mr)
                                        kern.RunRowA(kq, (float*)aP + (long)r * lda + p0, lda, pbS, cS, ldc, alpha,
                                            betaEff, cols);
                                    else if (directA && r1 - r >= mr)
                                        kern.RunStrided(kq, (float*)aP + (long)p0 * lda + r, lda, pbS, cS, ldc, alpha,
                                            betaEff, mr, cols);
                                    else
                                        kern.Run(kq, packA + (long)((r - r0) / mr) * mr * kq, pbS, cS, ldc, alpha,
                                            betaEff, Math.Min(mr, r1 - r), cols);
                                }
                            }
                        }
                        // This row block of the panel is final and still in cache.
                        epilogue?.Apply((float*)cP, ldc, r0, r1 - r0, jc0, ncur, mb);
                    }
                    finally
                    {
                        Workspace.Return(aLease);
                    }
                });
            }
        }
        finally
        {
            if (prepackedB == null) Workspace.Return(lease);
        }
        epilogue?.End();
    }

    // Small C, long k (the weight gradients dW = dY^T X of Linear / 1x1 conv): split k across tasks, each a
    // single-threaded GEMM into its own C buffer, then add the buffers in task order (deterministic). This replaces
    // hundreds of fork/joins (one per k block) by one.
    private static void DriveSplitK(KernelInfo kern, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        int tasks = Math.Min(2 * threads, k / (KSplitMinK / 4));
        int kPer = RoundUp(CeilDiv(k, tasks), 8);
        tasks = CeilDiv(k, kPer);
        long mn = (long)m * n;
        float* bufs = Workspace.Rent(tasks * mn, out var lease);
        try
        {
            nint aP = (nint)a, bP = (nint)b, bufP = (nint)bufs;
            CpuParallel.For(0, tasks, t =>
            {
                int k0 = t * kPer, kt = Math.Min(kPer, k - k0);
                float* at = (float*)aP + (transA ? (long)k0 * lda : k0);
                float* bt = (float*)bP + (transB ? k0 : (long)k0 * ldb);
                DriveLocalA(kern, transA, transB, m, n, kt, 1f, at, lda, bt, ldb, 0f, (float*)bufP + t * mn, n, 1);
            });
            nint cP = (nint)c;
            bool inlineSum = !LegacyPaths && tasks * mn <= CpuParallel.MinParallelWork;
            ParallelFor(threads, inlineSum ? 1 : threads, part =>
            {
                int i0 = (int)((long)m * part / threads), i1 = (int)((long)m * (part + 1) / threads);
                for (int i = i0; i < i1; i++)
                {
                    float* ci = (float*)cP + (long)i * ldc;
                    float* bi = (float*)bufP + (long)i * n;
                    int j = 0;
                    for (; j + 8 <= n; j += 8)
                    {
                        var sum = Vector256.Load(bi + j);
                        for (int t = 1; t < tasks; t++) sum += Vector256.Load(bi + t * mn + j);
                        sum *= Vector256.Create(alpha);
                        if (beta != 0f) sum += Vector256.Load(ci + j) * Vector256.Create(beta);
                        Vector256.Store(sum, ci + j);
                    }
                    for (; j < n; j++)
                    {
                        float sum = bi[j];
                        for (int t = 1; t < tasks; t++) sum += bi[t * mn + j];
                        ci[j] = beta == 0f ? alpha * sum : alpha * sum + beta * ci[j];
                    }
                }
            });
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
}
