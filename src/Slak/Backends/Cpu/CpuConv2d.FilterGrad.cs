// The weight (and bias) gradient of the patchify convolutions, second form (issue 27): dW (Cout, CKK) = sum over
// pixels of dy (Cout, pixels) x patches (pixels, CKK). The first form (DirectBackwardFilter in CpuConv2d.Direct.cs)
// measured 22 % of the FMA peak on the stem and 34-42 % on the downsampling layers; three causes:
//  - the stem's CKK = 16 is one vector, so its tiles were 4 rows x 1 vector: 4 FMA chains, while this core kind
//    (two FMA pipes, 4 cycles of latency) needs 8 in flight. Here the stem's tiles are up to 16 rows x 1 vector
//    (TallTile): 16 chains, one load of B and 16 broadcasts per 16 FMAs;
//  - the pixel blocks were sized so that the whole patch block fit L1 (16-64 pixels), and the rows of dW were the
//    outer loop: the whole dW (up to 494 KB on slak_nano's last layer) was read and written once per 16 pixels.
//    Here a block has about 128 pixels and the loops run panel of 4 vectors (64 columns of dW) outside, rows of dW
//    inside: the block's panel of patches (128 x 64 floats, 32 KB) stays in L1 while every row of dW passes over it,
//    and each accumulator tile is loaded and stored once per 128 pixels.
// The patch rows of 2x2 and 4x4 windows are built from whole input rows with vector shuffles (PatchRows in
// CpuConv2d.Direct.cs, which both forms share): the first form's copy of 8 or 16 bytes per window row took about as
// long as the stem's FMAs.
// Where an image has at least 64 output pixels, dy is read in place (a row of dy is one channel of one image) and
// the bias gradient sums the rows of dy the kernel just read; smaller maps are gathered into (Cout, pixels) blocks as
// before. Images split into fixed groups (one per thread, or four per thread where the partial sums are small),
// one partial sum each, added in group order: the groups depend on the shape and the thread count only, so results
// are the same bits run after run for a given thread count.
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

internal static partial class CpuConv2d
{
    /// <summary>True (the default, unless SLAK_CONV2D_FILTER_GRAD=first): the patchify weight gradient of the direct
    /// path runs in the second form (this file); false: the first form (<see cref="DirectBackwardFilter"/>'s own
    /// loops). Settable so that the bench (conv-patchify) can time both in one process and tests can run
    /// both.</summary>
    internal static bool TunedFilterGradient { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_CONV2D_FILTER_GRAD") != "first";

    // Pixels per block of the second form: the block's patch panel (pixels x 64 floats) is 32 KB, within L1.
    private const int FilterBlockPixels = 128;

    // From this many output pixels per image on, dy is read in place (no gather).
    private const int FilterInPlaceMinPixels = 64;

    // Partial weight gradients of all groups together up to this many floats (256 KB) are cheap to add up.
    private const long SmallPartialsFloats = 1 << 16;

    /// <summary>The second form of the patchify weight (and bias) gradient (see the file header); arguments as
    /// <see cref="BackwardFilter"/>.</summary>
    internal static unsafe void TunedBackwardFilter(Conv2dShape s, ReadOnlySpan<float> x, ReadOnlySpan<float> dy,
        Span<float> dw, Span<float> dbias)
    {
        int p = s.OutH * s.OutW, ckk = s.Cin * s.Kh * s.Kw, ckkPad = (ckk + 15) & ~15;
        // Rows of the patch block an odd number of cache lines apart: at a power-of-two stride (ckkPad = 128 or 256 on
        // the downsampling layers) a panel's 128 rows x 4 lines would share a quarter of L1's sets and evict each
        // other. One vector (the stem) reads whole rows in order and needs no gap.
        int ldp = ckkPad > 16 && ckkPad / 16 % 2 == 0 ? ckkPad + 16 : ckkPad;
        bool inPlace = p >= FilterInPlaceMinPixels;
        int perBlock = Math.Max(1, (FilterBlockPixels + p - 1) / p);
        // Fixed groups of consecutive images, one partial sum each (the groups depend on the shape and the thread
        // count only). Where the partial sums are small (the stem: 31 x 16), 4 groups per thread, so that a thread
        // that starts late or is interrupted leaves its share to the others; else one per thread.
        int accSize = s.Cout * ckkPad;
        int perThread = (long)accSize * 4 * CpuParallel.Threads <= SmallPartialsFloats ? 4 : 1;
        int groups = Math.Max(1, Math.Min(s.N, perThread * CpuParallel.Threads));
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
                    int pixelsMax = Math.Min(perBlock, n1 - n0) * p;
                    var g = inPlace ? null : ArrayPool<float>.Shared.Rent(sh.Cout * pixelsMax);
                    var patches = ArrayPool<float>.Shared.Rent(pixelsMax * ldp);
                    // Columns CKK..ckkPad are read by the kernel (into columns of dW that are dropped): zero once,
                    // so that they hold no NaN or denormal garbage from the pool.
                    for (int q = 0; q < pixelsMax; q++) patches.AsSpan(q * ldp + ckk, ckkPad - ckk).Clear();
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
                                PatchRows(sh, (float*)xp, nb, count, pp, ldp);
                                if (inPlace)
                                {
                                    // Per image: dW += dy_n (Cout, P; rows P apart) x patches_n (P, CKK).
                                    for (int i = 0; i < count; i++)
                                    {
                                        float* dyn = (float*)dyp + (long)(nb + i) * sh.Cout * p;
                                        FilterGemm(sh.Cout, ckkPad, p, dyn, p, pp + (long)i * p * ldp, ldp, accG,
                                            accumulate: nb != n0 || i != 0);
                                        if (!wantBias) continue;
                                        for (int co = 0; co < sh.Cout; co++)
                                            biasSums[grp * sh.Cout + co] += RowSum(dyn + (long)co * p, p);
                                    }
                                    continue;
                                }
                                GatherPixels(sh.Cout, p, nb, count, (float*)dyp, pg, pixels);
                                FilterGemm(sh.Cout, ckkPad, pixels, pg, pixels, pp, ldp, accG, accumulate: nb != n0);
                                if (!wantBias) continue;
                                for (int co = 0; co < sh.Cout; co++)
                                    biasSums[grp * sh.Cout + co] += RowSum(pg + (long)co * pixels, pixels);
                            }
                        }
                    }
                    finally
                    {
                        if (g is not null) ArrayPool<float>.Shared.Return(g);
                        ArrayPool<float>.Shared.Return(patches);
                    }
                });
            }
            // dW = the groups' partial sums added in group order, rows of dW split over the threads (on slak_nano's
            // last layer the partials are 2 x 494 KB: one thread alone spent a fifth of the call here).
            fixed (float* pacc = acc)
            fixed (float* pdw = dw)
            {
                nint accP = (nint)pacc, dwP = (nint)pdw;
                int cout = s.Cout, rowTasks = Math.Min(cout, 4 * CpuParallel.Threads);
                CpuParallel.For(0, rowTasks, groups > 1 ? (long)groups * accSize : 0, t =>
                {
                    for (int co = (int)((long)cout * t / rowTasks); co < (int)((long)cout * (t + 1) / rowTasks); co++)
                        SumPartialRows((float*)accP + (long)co * ckkPad, accSize, groups, ckk, (float*)dwP + (long)co * ckk);
                });
            }
            if (dbias.Length != 0)
                for (int co = 0; co < s.Cout; co++)
                {
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

    // dst[0 .. length) = src[g*stride + k] summed over g = 0 .. groups - 1 in that order.
    private static unsafe void SumPartialRows(float* src, int stride, int groups, int length, float* dst)
    {
        int k = 0;
        for (; k + 16 <= length; k += 16)
        {
            var v = Vector512.Load(src + k);
            for (int g = 1; g < groups; g++) v += Vector512.Load(src + (long)g * stride + k);
            v.Store(dst + k);
        }
        for (; k < length; k++)
        {
            float v = src[k];
            for (int g = 1; g < groups; g++) v += src[(long)g * stride + k];
            dst[k] = v;
        }
    }

    /// <summary>C (rows x lanes, row stride = lanes) (+)= A (rows x depth: A[r, j] = a[r*ars + j]) x B (depth x lanes,
    /// row stride ldb); lanes a multiple of 16. One vector of lanes: tiles of up to 16 rows (TallTile); more: panels of
    /// 4 vectors outside, 4-row tiles inside (the panel of B stays in L1 across the rows).</summary>
    private static unsafe void FilterGemm(int rows, int lanes, int depth, float* a, int ars, float* b, int ldb, float* c,
        bool accumulate)
    {
        int r = 0;
        if (lanes == 16)
        {
            while (rows - r >= 4)
            {
                int g4 = Math.Min(4, (rows - r) / 4);
                float* ar = a + (long)r * ars, cr = c + (long)r * 16;
                switch (g4)
                {
                    case 4: TallTile<ConvT4>(depth, ar, ars, b, ldb, cr, accumulate); break;
                    case 3: TallTile<ConvT3>(depth, ar, ars, b, ldb, cr, accumulate); break;
                    case 2: TallTile<ConvT2>(depth, ar, ars, b, ldb, cr, accumulate); break;
                    default: TallTile<ConvT1>(depth, ar, ars, b, ldb, cr, accumulate); break;
                }
                r += 4 * g4;
            }
            if (r < rows)
                BroadcastGemm(rows - r, 16, depth, a + (long)r * ars, ars, 1, b, ldb, c + (long)r * 16, 16, null,
                    accumulate);
            return;
        }
        for (int v = 0; v < lanes; v += 64)
        {
            int panel = Math.Min(64, lanes - v);
            BroadcastGemm(rows, panel, depth, a, ars, 1, b + v, ldb, c + v, lanes, null, accumulate);
        }
    }

    // TG.N groups of 4 rows x 1 vector: C[r, 0..16) (+)= sum_j a[r*ars + j] * b[j*ldb + 0..16), every element one FMA
    // chain in j order. One pointer per group of rows walks along j; the rows within a group are 1-3 row strides
    // further (the broadcasts then address [pointer + index*4], one instruction each).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TallTile<TG>(int depth, float* a, int ars, float* b, int ldb, float* c, bool accumulate)
        where TG : struct, IConvTileCount
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        Vector512<float> c4 = default, c5 = default, c6 = default, c7 = default;
        Vector512<float> c8 = default, c9 = default, c10 = default, c11 = default;
        Vector512<float> c12 = default, c13 = default, c14 = default, c15 = default;
        if (accumulate)
        {
            c0 = Vector512.Load(c); c1 = Vector512.Load(c + 16); c2 = Vector512.Load(c + 32); c3 = Vector512.Load(c + 48);
            if (TG.N > 1) { c4 = Vector512.Load(c + 64); c5 = Vector512.Load(c + 80); c6 = Vector512.Load(c + 96); c7 = Vector512.Load(c + 112); }
            if (TG.N > 2) { c8 = Vector512.Load(c + 128); c9 = Vector512.Load(c + 144); c10 = Vector512.Load(c + 160); c11 = Vector512.Load(c + 176); }
            if (TG.N > 3) { c12 = Vector512.Load(c + 192); c13 = Vector512.Load(c + 208); c14 = Vector512.Load(c + 224); c15 = Vector512.Load(c + 240); }
        }
        nint s1 = ars, s2 = 2 * (nint)ars, s3 = 3 * (nint)ars;
        float* a0 = a, a1 = a0 + 4 * (nint)ars, a2 = a1 + 4 * (nint)ars, a3 = a2 + 4 * (nint)ars;
        float* bEnd = b + (nint)depth * ldb;
        for (; b < bEnd; b += ldb, a0++, a1++, a2++, a3++)
        {
            var bj = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[0]), bj, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[s1]), bj, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[s2]), bj, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[s3]), bj, c3);
            if (TG.N > 1)
            {
                c4 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[0]), bj, c4);
                c5 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[s1]), bj, c5);
                c6 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[s2]), bj, c6);
                c7 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[s3]), bj, c7);
            }
            if (TG.N > 2)
            {
                c8 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[0]), bj, c8);
                c9 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[s1]), bj, c9);
                c10 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[s2]), bj, c10);
                c11 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[s3]), bj, c11);
            }
            if (TG.N > 3)
            {
                c12 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[0]), bj, c12);
                c13 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[s1]), bj, c13);
                c14 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[s2]), bj, c14);
                c15 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[s3]), bj, c15);
            }
        }
        c0.Store(c); c1.Store(c + 16); c2.Store(c + 32); c3.Store(c + 48);
        if (TG.N > 1) { c4.Store(c + 64); c5.Store(c + 80); c6.Store(c + 96); c7.Store(c + 112); }
        if (TG.N > 2) { c8.Store(c + 128); c9.Store(c + 144); c10.Store(c + 160); c11.Store(c + 176); }
        if (TG.N > 3) { c12.Store(c + 192); c13.Store(c + 208); c14.Store(c + 224); c15.Store(c + 240); }
    }
}
