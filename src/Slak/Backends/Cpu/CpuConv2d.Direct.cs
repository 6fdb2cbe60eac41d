// Patchify convolutions (kernel == stride, no padding) without a packed GEMM: every pass runs in ONE parallel region
// over blocks of images, and each block is gathered, multiplied (CpuConv2d.Broadcast.cs) and scattered while it is
// in L1/L2. The batched path (CpuConv2d.Batched.cs) instead makes whole-batch passes: space-to-depth, a GEMM that
// packs both operands again, a transpose back to NCHW (plus the bias), each a fork/join of its own, and for the
// weight gradient a transposed copy of dy, the GEMM's own swap-and-transpose and a serial bias-gradient pass; on
// slak_nano's maps (8 x 8 down to 1 x 1, 4 to 64 pixels per image) that measured 15-24 % of the FMA peak.
//
// A block is nb images whose nb*P output pixels (P = OutH*OutW) form the lanes: one image when P is a multiple of 16
// and at least 64 (8 x 8 maps and larger: the forward writes y in place), else nb = ceil(64 / P) images padded to a
// multiple of 16 lanes (P = 16, 4 or 1 on the later stages):
//   forward   y_blk (Cout, lanes) = bias + W (Cout, CKK) x col_blk (CKK, lanes), col = im2col of the block;
//   dX        dcol_blk (CKK, lanes) = W^T x dy_blk (Cout, lanes), then col2im into dx;
//   dW        dW (Cout, CKK) += dy_blk (Cout, pixels) x patches_blk (pixels, CKK) over blocks of 16-256 pixels,
//             per fixed group of images, the groups' partial sums then added in group order; dbias from the same
//             dy_blk rows. That is the first form, kept behind TunedFilterGradient = false; the default is the
//             second form, CpuConv2d.FilterGrad.cs (taller tiles for the stem, larger blocks for the others).
// The images of a group depend only on N and the thread count, so results are the same bits run after run for a
// given thread count. Needs AVX-512 (Vector512 in hardware); elsewhere the batched path runs.
using System.Buffers;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

internal static partial class CpuConv2d
{
    /// <summary>True (the default where Vector512 is hardware-accelerated, unless SLAK_CONV2D_PATCHIFY=batched):
    /// patchify convolutions take the direct path; false: the batched-GEMM path. Internal and settable so that the
    /// bench (conv-patchify) can time both in one process.</summary>
    internal static bool DirectPatchify { get; set; } = Vector512.IsHardwareAccelerated
        && Environment.GetEnvironmentVariable("SLAK_CONV2D_PATCHIFY") != "batched";

    // Output pixels per block when P is not a multiple of 16 (one 4-vector tile of the micro-kernel).
    private const int BlockLanes = 64;

    /// <summary>True (the default): when the window covers the whole image (one output pixel, e.g. slak_nano's last
    /// downsampling layer on 2 x 2 maps), x and dx already are the patch matrix (N, Cin*Kh*Kw) and y, dy the (N, Cout)
    /// product, so the forward and the input gradient are plain CpuGemm calls on them (the bias as the GEMM's
    /// epilogue), with no copies at all. Internal and settable for the bench's comparison.</summary>
    internal static bool WholeImageGemm { get; set; } = true;

    private static bool IsWholeImage(Conv2dShape s) => s.H == s.Kh && s.W == s.Kw && WholeImageGemm;

    private readonly record struct Blocking(int P, int Ckk, int PerBlock, int Blocks)
    {
        public bool InPlace => PerBlock == 1 && P % 16 == 0;

        public static Blocking Of(Conv2dShape s)
        {
            int p = s.OutH * s.OutW, per = p % 16 == 0 && p >= BlockLanes ? 1 : Math.Max(1, (BlockLanes + p - 1) / p);
            per = Math.Min(per, s.N);
            return new Blocking(p, s.Cin * s.Kh * s.Kw, per, (s.N + per - 1) / per);
        }

        public (int N0, int Count) Images(int block, int n) => (block * PerBlock, Math.Min(PerBlock, n - block * PerBlock));

        public int Lanes(int count) => (count * P + 15) & ~15;
    }

    // Blocks [t*blocks/tasks, (t+1)*blocks/tasks) run as task t, each task with its own scratch.
    private static void ForBlockRanges(int blocks, long work, Action<int, int> body)
    {
        int tasks = Math.Max(1, Math.Min(blocks, 4 * CpuParallel.Threads));
        CpuParallel.For(0, tasks, work, t => body((int)((long)blocks * t / tasks), (int)((long)blocks * (t + 1) / tasks)));
    }

    /// <summary>Patchify forward on the direct path (see the file header); arguments as
    /// <see cref="Forward"/>.</summary>
    internal static unsafe void DirectForward(Conv2dShape s, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        ReadOnlySpan<float> bias, Span<float> y)
    {
        var bl = Blocking.Of(s);
        int lanesMax = bl.Lanes(bl.PerBlock);
        fixed (float* px = x)
        fixed (float* pw = w)
        fixed (float* pb = bias)
        fixed (float* py = y)
        {
            if (IsWholeImage(s))
            {
                // y (N, Cout) = x (N, CKK) x W^T (+ bias).
                CpuGemm.Sgemm(false, true, s.N, s.Cout, bl.Ckk, 1f, x, bl.Ckk, w, bl.Ckk, 0f, y, s.Cout,
                    CpuParallel.Threads, GemmKernel.Auto, bias.Length == 0 ? null : new BiasEpilogue(pb));
                return;
            }
            nint xp = (nint)px, wp = (nint)pw, bp = bias.Length == 0 ? 0 : (nint)pb, yp = (nint)py;
            var sh = s;
            ForBlockRanges(bl.Blocks, s.InputSize + s.OutputSize, (b0, b1) =>
            {
                var col = ArrayPool<float>.Shared.Rent(bl.Ckk * lanesMax);
                var tmp = bl.InPlace ? null : ArrayPool<float>.Shared.Rent(sh.Cout * lanesMax);
                try
                {
                    fixed (float* pc = col)
                    fixed (float* pt = tmp)
                        for (int blk = b0; blk < b1; blk++)
                        {
                            var (n0, count) = bl.Images(blk, sh.N);
                            int lanes = bl.Lanes(count);
                            Im2ColBlock(sh, (float*)xp, n0, count, pc, lanes);
                            float* outp = bl.InPlace ? (float*)yp + (long)n0 * sh.Cout * bl.P : pt;
                            BroadcastGemm(sh.Cout, lanes, bl.Ckk, (float*)wp, bl.Ckk, 1, pc, lanes, outp, lanes,
                                (float*)bp, accumulate: false);
                            if (!bl.InPlace) ScatterPixels(sh.Cout, bl.P, n0, count, pt, lanes, (float*)yp);
                        }
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(col);
                    if (tmp is not null) ArrayPool<float>.Shared.Return(tmp);
                }
            });
        }
    }

    /// <summary>Patchify input gradient on the direct path; arguments as <see cref="BackwardData"/>.</summary>
    internal static unsafe void DirectBackwardData(Conv2dShape s, ReadOnlySpan<float> dy, ReadOnlySpan<float> w,
        Span<float> dx)
    {
        var bl = Blocking.Of(s);
        int lanesMax = bl.Lanes(bl.PerBlock);
        if (IsWholeImage(s))
        {
            // dx (N, CKK) = dy (N, Cout) x W (Cout, CKK).
            CpuGemm.Sgemm(false, false, s.N, bl.Ckk, s.Cout, 1f, dy, s.Cout, w, bl.Ckk, 0f, dx, bl.Ckk);
            return;
        }
        fixed (float* pdy = dy)
        fixed (float* pw = w)
        fixed (float* pdx = dx)
        {
            nint dyp = (nint)pdy, wp = (nint)pw, dxp = (nint)pdx;
            var sh = s;
            ForBlockRanges(bl.Blocks, s.InputSize + s.OutputSize, (b0, b1) =>
            {
                var dcol = ArrayPool<float>.Shared.Rent(bl.Ckk * lanesMax);
                var g = bl.InPlace ? null : ArrayPool<float>.Shared.Rent(sh.Cout * lanesMax);
                try
                {
                    fixed (float* pc = dcol)
                    fixed (float* pg = g)
                        for (int blk = b0; blk < b1; blk++)
                        {
                            var (n0, count) = bl.Images(blk, sh.N);
                            int lanes = bl.Lanes(count);
                            float* gp = (float*)dyp + (long)n0 * sh.Cout * bl.P;
                            if (!bl.InPlace)
                            {
                                GatherPixels(sh.Cout, bl.P, n0, count, (float*)dyp, pg, lanes);
                                gp = pg;
                            }
                            // dcol (CKK, lanes) = W^T x dy_blk: A[k, co] = W[co, k].
                            BroadcastGemm(bl.Ckk, lanes, sh.Cout, (float*)wp, 1, bl.Ckk, gp, lanes, pc, lanes, null,
                                accumulate: false);
                            Col2ImBlock(sh, (float*)dxp, n0, count, pc, lanes);
                        }
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(dcol);
                    if (g is not null) ArrayPool<float>.Shared.Return(g);
                }
            });
        }
    }

    /// <summary>Patchify weight (and bias) gradient on the direct path; arguments as
    /// <see cref="BackwardFilter"/>.</summary>
    internal static unsafe void DirectBackwardFilter(Conv2dShape s, ReadOnlySpan<float> x, ReadOnlySpan<float> dy,
        Span<float> dw, Span<float> dbias)
    {
        if (IsWholeImage(s) && WholeImageFilterGemm)
        {
            WholeImageBackwardFilter(s, x, dy, dw, dbias);
            return;
        }
        if (TunedFilterGradient)
        {
            TunedBackwardFilter(s, x, dy, dw, dbias);
            return;
        }
        int p = s.OutH * s.OutW, ckk = s.Cin * s.Kh * s.Kw, ckkPad = (ckk + 15) & ~15;
        // Blocks of as many pixels as keep the patch block (B, read once per 4 rows of dW) within 32 KiB, i.e. in L1,
        // between 16 and 256 (fewer passes over the dW accumulators).
        int pixelTarget = Math.Clamp((32 << 10) / 4 / ckkPad, 16, 256);
        int perBlock = Math.Max(1, (pixelTarget + p - 1) / p);
        // Fixed groups of consecutive images (they depend on N and the thread count only), one partial sum each.
        int groups = Math.Max(1, Math.Min(s.N, CpuParallel.Threads));
        int accSize = s.Cout * ckkPad;
        var acc = ArrayPool<float>.Shared.Rent(groups * accSize);
        var biasSums = new double[groups * s.Cout];
        try
        {
            fixed (float* px = x)
            fixed (float* pdy = dy)
            fixed (float* pacc = acc)
            {
                nint xp = (nint)px, dyp = (nint)pdy, accP = (nint)pacc;
                var sh = s;
                bool wantBias = dbias.Length != 0;
                CpuParallel.For(0, groups, s.InputSize + s.OutputSize, grp =>
                {
                    int n0 = (int)((long)sh.N * grp / groups), n1 = (int)((long)sh.N * (grp + 1) / groups);
                    int lanesMax = Math.Min(perBlock, n1 - n0) * p;
                    var g = ArrayPool<float>.Shared.Rent(sh.Cout * lanesMax);
                    var patches = ArrayPool<float>.Shared.Rent(lanesMax * ckkPad);
                    // PatchRows leaves columns CKK..ckkPad alone; the kernel reads them (into columns of dW that are
                    // dropped), so they are zeroed once.
                    for (int q = 0; q < lanesMax; q++) patches.AsSpan(q * ckkPad + ckk, ckkPad - ckk).Clear();
                    try
                    {
                        fixed (float* pg = g)
                        fixed (float* pp = patches)
                        {
                            float* accG = (float*)accP + (long)grp * accSize;
                            if (n1 == n0) new Span<float>(accG, accSize).Clear();
                            for (int nb = n0; nb < n1; nb += perBlock)
                            {
                                int count = Math.Min(perBlock, n1 - nb), pixels = count * p;
                                GatherPixels(sh.Cout, p, nb, count, (float*)dyp, pg, pixels);
                                PatchRows(sh, (float*)xp, nb, count, pp, ckkPad);
                                // dW (Cout, CKK) += dy_blk (Cout, pixels) x patches (pixels, CKK).
                                BroadcastGemm(sh.Cout, ckkPad, pixels, pg, pixels, 1, pp, ckkPad, accG, ckkPad, null,
                                    accumulate: nb != n0);
                                if (!wantBias) continue;
                                for (int co = 0; co < sh.Cout; co++)
                                    biasSums[grp * sh.Cout + co] += RowSum(pg + (long)co * pixels, pixels);
                            }
                        }
                    }
                    finally
                    {
                        ArrayPool<float>.Shared.Return(g);
                        ArrayPool<float>.Shared.Return(patches);
                    }
                });
            }
            for (int co = 0; co < s.Cout; co++)
            {
                var dst = dw.Slice(co * ckk, ckk);
                acc.AsSpan(co * ckkPad, ckk).CopyTo(dst);
                for (int grp = 1; grp < groups; grp++)
                {
                    var part = acc.AsSpan(grp * accSize + co * ckkPad, ckk);
                    for (int k = 0; k < ckk; k++) dst[k] += part[k];
                }
                if (dbias.Length == 0) continue;
                double sum = 0;
                for (int grp = 0; grp < groups; grp++) sum += biasSums[grp * s.Cout + co];
                dbias[co] = (float)sum;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(acc);
        }
    }

    /// <summary>col[k, (n - n0)*P + oy*OutW + ox] = x[n, ci, oy*Kh + kh, ox*Kw + kw] with k = (ci*Kh + kh)*Kw + kw, for
    /// the <paramref name="count"/> images from <paramref name="n0"/>; columns past count*P (up to ldc) are
    /// 0.</summary>
    private static unsafe void Im2ColBlock(Conv2dShape s, float* x, int n0, int count, float* col, int ldc)
    {
        switch (PlaneSide(s))
        {
            case 4: Im2ColPlanes16(s, x, n0, count, col, ldc); return;
            case 8: Im2ColPlanes64(s, x, n0, count, col, ldc); return;
        }
        int p = s.OutH * s.OutW, ckk = s.Cin * s.Kh * s.Kw, used = count * p;
        for (int i = 0; i < count; i++)
        {
            float* img = x + (long)(n0 + i) * s.Cin * s.H * s.W;
            for (int ci = 0; ci < s.Cin; ci++)
                for (int oy = 0; oy < s.OutH; oy++)
                    for (int kh = 0; kh < s.Kh; kh++)
                    {
                        float* src = img + ((long)ci * s.H + oy * s.Kh + kh) * s.W;
                        float* dst = col + (long)((ci * s.Kh + kh) * s.Kw) * ldc + i * p + oy * s.OutW;
                        int ox = 0;
                        if (s.Kw == 2)
                            for (; ox + 4 <= s.OutW; ox += 4, src += 8)
                            {
                                // (ox, kw) pairs -> the 4 kw = 0 values, then the 4 kw = 1 values.
                                var v = Vector256.Shuffle(Vector256.Load(src), Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7));
                                v.GetLower().Store(dst + ox);
                                v.GetUpper().Store(dst + ldc + ox);
                            }
                        if (s.Kw == 2)
                            for (; ox + 2 <= s.OutW; ox += 2, src += 4)
                            {
                                var v = Vector128.Shuffle(Vector128.Load(src), Vector128.Create(0, 2, 1, 3)).AsInt64();
                                *(long*)(dst + ox) = v.GetElement(0);
                                *(long*)(dst + ldc + ox) = v.GetElement(1);
                            }
                        else if (s.Kw == 4)
                            for (; ox + 4 <= s.OutW; ox += 4, src += 16)
                            {
                                // 4 (ox, kw) groups -> 4 kw rows of 4 ox: a 4 x 4 transpose.
                                var v = Vector512.Shuffle(Vector512.Load(src),
                                    Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
                                v.GetLower().GetLower().Store(dst + ox);
                                v.GetLower().GetUpper().Store(dst + ldc + ox);
                                v.GetUpper().GetLower().Store(dst + 2L * ldc + ox);
                                v.GetUpper().GetUpper().Store(dst + 3L * ldc + ox);
                            }
                        for (; ox < s.OutW; ox++, src += s.Kw)
                            for (int kw = 0; kw < s.Kw; kw++) dst[kw * (long)ldc + ox] = src[kw];
                    }
        }
        if (used < ldc)
            for (int k = 0; k < ckk; k++) new Span<float>(col + (long)k * ldc + used, ldc - used).Clear();
    }

    /// <summary>The inverse of <see cref="Im2ColBlock"/> into dx (overwritten): every dx entry under a window gets
    /// its column entry; rows/columns past the last whole window (not read by the forward) get 0.</summary>
    private static unsafe void Col2ImBlock(Conv2dShape s, float* dx, int n0, int count, float* col, int ldc)
    {
        switch (PlaneSide(s))
        {
            case 4: Col2ImPlanes16(s, dx, n0, count, col, ldc); return;
            case 8: Col2ImPlanes64(s, dx, n0, count, col, ldc); return;
        }
        int p = s.OutH * s.OutW;
        bool leftover = s.OutH * s.Kh != s.H || s.OutW * s.Kw != s.W;
        for (int i = 0; i < count; i++)
        {
            float* img = dx + (long)(n0 + i) * s.Cin * s.H * s.W;
            if (leftover) new Span<float>(img, s.Cin * s.H * s.W).Clear();
            for (int ci = 0; ci < s.Cin; ci++)
                for (int oy = 0; oy < s.OutH; oy++)
                    for (int kh = 0; kh < s.Kh; kh++)
                    {
                        float* dst = img + ((long)ci * s.H + oy * s.Kh + kh) * s.W;
                        float* src = col + (long)((ci * s.Kh + kh) * s.Kw) * ldc + i * p + oy * s.OutW;
                        int ox = 0;
                        if (s.Kw == 2)
                            for (; ox + 4 <= s.OutW; ox += 4, dst += 8)
                            {
                                var v = Vector256.Create(Vector128.Load(src + ox), Vector128.Load(src + ldc + ox));
                                Vector256.Shuffle(v, Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).Store(dst);
                            }
                        if (s.Kw == 2)
                            for (; ox + 2 <= s.OutW; ox += 2, dst += 4)
                            {
                                var v = Vector128.Create(*(long*)(src + ox), *(long*)(src + ldc + ox)).AsSingle();
                                Vector128.Shuffle(v, Vector128.Create(0, 2, 1, 3)).Store(dst);
                            }
                        else if (s.Kw == 4)
                            for (; ox + 4 <= s.OutW; ox += 4, dst += 16)
                            {
                                var v = Vector512.Create(
                                    Vector256.Create(Vector128.Load(src + ox), Vector128.Load(src + ldc + ox)),
                                    Vector256.Create(Vector128.Load(src + 2L * ldc + ox), Vector128.Load(src + 3L * ldc + ox)));
                                // A 4 x 4 transpose (its own inverse).
                                Vector512.Shuffle(v, Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15))
                                    .Store(dst);
                            }
                        for (; ox < s.OutW; ox++, dst += s.Kw)
                            for (int kw = 0; kw < s.Kw; kw++) dst[kw] = src[kw * (long)ldc + ox];
                    }
        }
    }

    /// <summary>patches[(n - n0)*P + oy*OutW + ox, k] = x[n, ci, oy*Kh + kh, ox*Kw + kw], k = (ci*Kh + kh)*Kw + kw
    /// (row stride ld; only columns 0..CKK are written: the callers zero their padding columns once). 2x2 and 4x4
    /// windows (the downsampling layers, the stem) move a channel's window per pixel as one vector built from whole
    /// input rows (shuffles of 2 or 4 rows, 4 pixels at a time); other windows go through
    /// <see cref="PatchRowsGeneric"/>. Both forms of the weight gradient build their patch blocks here.</summary>
    private static unsafe void PatchRows(Conv2dShape s, float* x, int n0, int count, float* patches, int ld)
    {
        if (PlaneSide(s) == 4)
        {
            PatchRowsPlanes16(s, x, n0, count, patches, ld);
            return;
        }
        bool two = s.Kh == 2 && s.Kw == 2, four = s.Kh == 4 && s.Kw == 4;
        if (!(two && Avx.IsSupported) && !(four && Avx512F.IsSupported))
        {
            PatchRowsGeneric(s, x, n0, count, patches, ld);
            return;
        }
        int p = s.OutH * s.OutW;
        for (int i = 0; i < count; i++)
        {
            float* img = x + (long)(n0 + i) * s.Cin * s.H * s.W;
            for (int ci = 0; ci < s.Cin; ci++)
                for (int oy = 0; oy < s.OutH; oy++)
                {
                    float* r0 = img + ((long)ci * s.H + oy * s.Kh) * s.W;
                    float* dst = patches + (long)(i * p + oy * s.OutW) * ld + ci * s.Kh * s.Kw;
                    int ox = 0;
                    if (two)
                    {
                        // Pixel ox's window is (r0[2ox], r0[2ox+1], r1[2ox], r1[2ox+1]): 64-bit pairs of the two rows
                        // interleaved.
                        float* r1 = r0 + s.W;
                        for (; ox + 4 <= s.OutW; ox += 4)
                        {
                            var v0 = Vector256.Load(r0 + 2 * ox).AsDouble();
                            var v1 = Vector256.Load(r1 + 2 * ox).AsDouble();
                            var lo = Avx.UnpackLow(v0, v1).AsSingle();   // pixels ox, ox + 2
                            var hi = Avx.UnpackHigh(v0, v1).AsSingle();  // pixels ox + 1, ox + 3
                            lo.GetLower().Store(dst + (long)ox * ld);
                            hi.GetLower().Store(dst + (long)(ox + 1) * ld);
                            lo.GetUpper().Store(dst + (long)(ox + 2) * ld);
                            hi.GetUpper().Store(dst + (long)(ox + 3) * ld);
                        }
                        for (; ox < s.OutW; ox++)
                            Vector128.Create(*(long*)(r0 + 2 * ox), *(long*)(r1 + 2 * ox)).AsSingle()
                                .Store(dst + (long)ox * ld);
                        continue;
                    }
                    // 4x4: pixel ox's window is the 128-bit blocks ox of rows 0..3 (4 pixels = one vector per row):
                    // a 4 x 4 transpose of 128-bit blocks.
                    float* r1f = r0 + s.W, r2f = r1f + s.W, r3f = r2f + s.W;
                    for (; ox + 4 <= s.OutW; ox += 4)
                    {
                        var a0 = Vector512.Load(r0 + 4 * ox);
                        var a1 = Vector512.Load(r1f + 4 * ox);
                        var a2 = Vector512.Load(r2f + 4 * ox);
                        var a3 = Vector512.Load(r3f + 4 * ox);
                        var t0 = Avx512F.Shuffle4x128(a0, a1, 0x44);  // a0.b0 a0.b1 a1.b0 a1.b1
                        var t1 = Avx512F.Shuffle4x128(a2, a3, 0x44);  // a2.b0 a2.b1 a3.b0 a3.b1
                        var t2 = Avx512F.Shuffle4x128(a0, a1, 0xEE);  // a0.b2 a0.b3 a1.b2 a1.b3
                        var t3 = Avx512F.Shuffle4x128(a2, a3, 0xEE);  // a2.b2 a2.b3 a3.b2 a3.b3
                        Avx512F.Shuffle4x128(t0, t1, 0x88).Store(dst + (long)ox * ld);        // blocks 0
                        Avx512F.Shuffle4x128(t0, t1, 0xDD).Store(dst + (long)(ox + 1) * ld);  // blocks 1
                        Avx512F.Shuffle4x128(t2, t3, 0x88).Store(dst + (long)(ox + 2) * ld);  // blocks 2
                        Avx512F.Shuffle4x128(t2, t3, 0xDD).Store(dst + (long)(ox + 3) * ld);  // blocks 3
                    }
                    for (; ox < s.OutW; ox++)
                    {
                        float* d = dst + (long)ox * ld;
                        Vector128.Load(r0 + 4 * ox).Store(d);
                        Vector128.Load(r1f + 4 * ox).Store(d + 4);
                        Vector128.Load(r2f + 4 * ox).Store(d + 8);
                        Vector128.Load(r3f + 4 * ox).Store(d + 12);
                    }
                }
        }
    }

    // PatchRows for any window: each window row copied on its own (the whole image at once where one window covers
    // it).
    private static unsafe void PatchRowsGeneric(Conv2dShape s, float* x, int n0, int count, float* patches, int ld)
    {
        int p = s.OutH * s.OutW, ckk = s.Cin * s.Kh * s.Kw;
        for (int i = 0; i < count; i++)
        {
            float* img = x + (long)(n0 + i) * s.Cin * s.H * s.W;
            for (int oy = 0; oy < s.OutH; oy++)
                for (int ox = 0; ox < s.OutW; ox++)
                {
                    float* row = patches + (long)(i * p + oy * s.OutW + ox) * ld;
                    if (p == 1 && s.H == s.Kh && s.W == s.Kw)
                    {
                        new ReadOnlySpan<float>(img, ckk).CopyTo(new Span<float>(row, ckk));
                        continue;
                    }
                    for (int ci = 0; ci < s.Cin; ci++)
                        for (int kh = 0; kh < s.Kh; kh++)
                        {
                            float* src = img + ((long)ci * s.H + oy * s.Kh + kh) * s.W + ox * s.Kw;
                            float* dst = row + (ci * s.Kh + kh) * s.Kw;
                            for (int kw = 0; kw < s.Kw; kw++) dst[kw] = src[kw];
                        }
                }
        }
    }

    // Sum of row[0 .. length) in a fixed order (16 lane sums over the whole vectors, then the tail), whatever the
    // row's alignment: the bias gradient stays the same bits from run to run.
    private static unsafe float RowSum(float* row, int length)
    {
        var acc = Vector512<float>.Zero;
        int i = 0;
        for (; i + 16 <= length; i += 16) acc += Vector512.Load(row + i);
        float sum = Vector512.Sum(acc);
        for (; i < length; i++) sum += row[i];
        return sum;
    }

    // dst[0 .. n) = src[0 .. n) for the short runs of one image's channel (P floats).
    private static unsafe void CopyRun(float* src, float* dst, int n)
    {
        int i = 0;
        for (; i + 16 <= n; i += 16) Vector512.Load(src + i).Store(dst + i);
        for (; i + 4 <= n; i += 4) Vector128.Load(src + i).Store(dst + i);
        for (; i < n; i++) dst[i] = src[i];
    }

    /// <summary>blk[c, (n - n0)*P + q] = t[n, c, q] for the <paramref name="count"/> images from n0 (t: (N, C, P));
    /// columns past count*P (up to ld) are 0.</summary>
    private static unsafe void GatherPixels(int channels, int p, int n0, int count, float* t, float* blk, int ld)
    {
        int used = count * p;
        for (int c = 0; c < channels; c++)
        {
            float* dst = blk + (long)c * ld;
            for (int i = 0; i < count; i++) CopyRun(t + ((long)(n0 + i) * channels + c) * p, dst + i * p, p);
            if (used < ld) new Span<float>(dst + used, ld - used).Clear();
        }
    }

    /// <summary>t[n, c, q] = blk[c, (n - n0)*P + q]: the inverse of <see cref="GatherPixels"/>.</summary>
    private static unsafe void ScatterPixels(int channels, int p, int n0, int count, float* blk, int ld, float* t)
    {
        for (int c = 0; c < channels; c++)
        {
            float* src = blk + (long)c * ld;
            for (int i = 0; i < count; i++) CopyRun(src + i * p, t + ((long)(n0 + i) * channels + c) * p, p);
        }
    }
}
