// The SLaK block's epilogue on the CPU (IBackend.Residual.cs): layer scale, DropPath, the permute back to NCHW and
// the residual add in one pass. The pixels (NHWC order, across images) are split into the row blocks of
// RowBlocks(pixels, C), as MulLastDim's gamma reduction splits them; a block walks its pixels in runs of at most
// LnTile consecutive positions of one image, and for each channel reads the run's channels-last values with stride C
// (the run's LnTile rows stay in L1 across the channel loop) and writes or reads a unit-stride run of the NCHW plane.
// No per-row calls and no staging buffer: on slak_nano's maps (1x1 to 8x8, 31 to 249 channels) a per-row SIMD call
// cost more than the row's work. Backward accumulates gamma's gradient per block in float64 (a float product is exact
// in float64), row after row for every channel, the blocks added in order: the same float operations, rows and blocks
// as the unfused MulLastDim, Permute, MulRows and Add, so the same bits. Runs of 8 pixels or more go through 8 x 8
// AVX tiles, runs of 4 to 7 (2 x 2 maps) through 4 x 4 SSE tiles (ResidualTiles4), the same operations. A 1 x 1 map
// (NCHW is NHWC) runs row-wise with SIMD instead.
using System.Buffers;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void ChannelsLastResidual(Tensor input, Tensor y, Tensor? gamma, Tensor? scale, Tensor output)
    {
        int c = input.Size(1), hw = input.Size(2) * input.Size(3), images = input.Size(0);
        int rows = checked(images * hw);
        bool nextImage = UseResidualImagePrefetch(hw);
        if (hw == 1 && ResidualRowsOnePass)
        {
            CpuParallel.For(0, RowBlocks(rows, c), blk =>
            {
                var (r0, r1) = RowRange(blk, rows, c);
                for (int r = r0; r < r1; r++)
                    ResidualRow(S(input).Slice(r * c, c), S(y).Slice(r * c, c), gamma is null ? default : S(gamma),
                        scale is null ? 1f : S(scale)[r], scale is not null, S(output).Slice(r * c, c));
            });
            return;
        }
        if (hw == 1)
        {
            CpuParallel.For(0, RowBlocks(rows, c), blk =>
            {
                var (r0, r1) = RowRange(blk, rows, c);
                // The scaled branch goes to a row of scratch, not to the output row: the output may be the input.
                Span<float> t = c <= 4096 ? stackalloc float[c] : new float[c];
                for (int r = r0; r < r1; r++)
                {
                    if (gamma is null) S(y).Slice(r * c, c).CopyTo(t);
                    else TensorPrimitives.Multiply(S(y).Slice(r * c, c), S(gamma), t);
                    if (scale is not null) TensorPrimitives.Multiply(t, S(scale)[r], t);
                    TensorPrimitives.Add(S(input).Slice(r * c, c), t, S(output).Slice(r * c, c));
                }
            });
            return;
        }
        CpuParallel.For(0, RowBlocks(rows, c), blk =>
        {
            var (r0, r1) = RowRange(blk, rows, c);
            if (r0 >= r1) return;
            unsafe
            {
                fixed (float* pin = S(input), py = S(y), pout = S(output), pg = gamma is null ? null : S(gamma),
                       ps = scale is null ? null : S(scale))
                {
                    for (int q0 = r0; q0 < r1;)
                    {
                        int img = q0 / hw, p = q0 - img * hw, run = Math.Min(Math.Min(LnTile, r1 - q0), hw - p);
                        float f = ps is null ? 1f : ps[img];
                        if (nextImage)
                            PrefetchNextImage(img + 1 < images, (long)c * hw, p, p + run, hw, pin, py, pout, img);
                        long plane = (long)img * c * hw + p;
                        float* src = py + (long)q0 * c;
                        int chTiles = 0, tiled = run & ~7; // pixels of the run that the tiles cover (for ch < chTiles)
                        bool fetch = ResidualPrefetch && hw >= ResidualPrefetchFrom && Sse.IsSupported;
                        // 8 channels x 8 pixels at a time through an AVX transpose (the same products and sums
                        // as the loop below, so the same bits); the loop below does the rest.
                        if (Avx.IsSupported && tiled > 0)
                        {
                            for (; chTiles + 8 <= c; chTiles += 8)
                                for (int k = 0; k < tiled; k += 8)
                                    ResidualTile8(src + (long)k * c + chTiles, c, pin + plane + (long)chTiles * hw + k,
                                        pout + plane + (long)chTiles * hw + k, hw, pg is null ? null : pg + chTiles, f,
                                        ps is not null, 0, fetch);
                            if (chTiles < c && c >= 8 && ResidualVectorTails)
                            {
                                // The last channels as the last whole 8-channel tile, its channels already done not
                                // stored again (the output may be the input).
                                int o = c - 8;
                                for (int k = 0; k < tiled; k += 8)
                                    ResidualTile8(src + (long)k * c + o, c, pin + plane + (long)o * hw + k,
                                        pout + plane + (long)o * hw + k, hw, pg is null ? null : pg + o, f,
                                        ps is not null, chTiles - o, fetch);
                                chTiles = c;
                            }
                        }
                        else if (UseResidualTiles4(c, run))
                        {
                            // Runs of 4 to 7 pixels (a 2 x 2 map's runs of 4): 4 channels x 4 pixels at a time, the
                            // last channels in the last whole 4-channel tile, the same operations as the loop below.
                            tiled = run & ~3;
                            for (int o = 0; o < c; o += 4)
                            {
                                int ch = Math.Min(o, c - 4);
                                for (int k = 0; k < tiled; k += 4)
                                    ResidualTile4(src + (long)k * c + ch, c, pin + plane + (long)ch * hw + k,
                                        pout + plane + (long)ch * hw + k, hw, pg is null ? null : pg + ch, f,
                                        ps is not null, o - ch);
                            }
                            chTiles = c;
                        }
                        for (int ch = 0; ch < c; ch++)
                        {
                            float* a = pin + plane + (long)ch * hw, o = pout + plane + (long)ch * hw, v = src + ch;
                            float g = pg is null ? 1f : pg[ch];
                            // The unfused operators' roundings: (y * gamma) * scale, then input + that.
                            for (int k = ch < chTiles ? tiled : 0; k < run; k++)
                            {
                                float t = v[(long)k * c];
                                if (pg is not null) t *= g;
                                if (ps is not null) t *= f;
                                o[k] = a[k] + t;
                            }
                        }
                        q0 += run;
                    }
                }
            }
        });
    }

    /// <inheritdoc />
    public void ChannelsLastResidualBackward(Tensor y, Tensor? gamma, Tensor? scale, Tensor dOutput, Tensor? dy,
                                             Tensor? dgamma)
    {
        int c = y.Size(3), hw = y.Size(1) * y.Size(2), images = y.Size(0);
        int rows = checked(images * hw);
        bool nextImage = UseResidualImagePrefetch(hw);
        int blocks = RowBlocks(rows, c);
        var partials = dgamma is null ? null : new double[blocks][];
        CpuParallel.For(0, blocks, blk =>
        {
            var (r0, r1) = RowRange(blk, rows, c);
            var acc = partials is null ? null : new double[c];
            if (partials is not null) partials[blk] = acc!;
            if (r0 >= r1) return;
            if (hw == 1)
            {
                ResidualRowsBackward(S(y), gamma is null ? default : S(gamma), scale is null ? default : S(scale),
                    S(dOutput), dy is null ? default : S(dy), acc, c, r0, r1);
                return;
            }
            unsafe
            {
                fixed (float* pdo = S(dOutput), py = S(y), pdy = dy is null ? null : S(dy),
                       pg = gamma is null ? null : S(gamma), ps = scale is null ? null : S(scale))
                fixed (double* pacc = acc)
                {
                    for (int q0 = r0; q0 < r1;)
                    {
                        int img = q0 / hw, p = q0 - img * hw, run = Math.Min(Math.Min(LnTile, r1 - q0), hw - p);
                        float f = ps is null ? 1f : ps[img];
                        if (nextImage)
                            PrefetchNextImage(img + 1 < images, (long)c * hw, p, p + run, hw, pdo, py, pdy, img);
                        long plane = (long)img * c * hw + p, row0 = (long)q0 * c;
                        int chTiles = 0, tiled = run & ~7; // pixels of the run that the tiles cover (for ch < chTiles)
                        bool fetch = ResidualPrefetch && hw >= ResidualPrefetchFrom && Sse.IsSupported;
                        // 8 channels x 8 pixels at a time through an AVX transpose; each channel's float64 sum
                        // still adds its pixels in order, so the bits are those of the loop below.
                        if (Avx.IsSupported && tiled > 0)
                        {
                            for (; chTiles + 8 <= c; chTiles += 8)
                                for (int k = 0; k < tiled; k += 8)
                                    ResidualBackwardTile8(pdo + plane + (long)chTiles * hw + k, hw,
                                        py + row0 + (long)k * c + chTiles, pdy is null ? null : pdy + row0 + (long)k * c + chTiles,
                                        c, pg is null ? null : pg + chTiles, f, ps is not null,
                                        pacc is null ? null : pacc + chTiles, 0, fetch);
                            if (chTiles < c && c >= 8 && ResidualVectorTails)
                            {
                                // The last channels as the last whole 8-channel tile: the channels already done get the
                                // same dy again and add nothing to their sums.
                                int o = c - 8;
                                for (int k = 0; k < tiled; k += 8)
                                    ResidualBackwardTile8(pdo + plane + (long)o * hw + k, hw,
                                        py + row0 + (long)k * c + o, pdy is null ? null : pdy + row0 + (long)k * c + o,
                                        c, pg is null ? null : pg + o, f, ps is not null,
                                        pacc is null ? null : pacc + o, chTiles - o, fetch);
                                chTiles = c;
                            }
                        }
                        else if (UseResidualTiles4(c, run))
                        {
                            // Runs of 4 to 7 pixels: 4 channels x 4 pixels at a time (see the forward).
                            tiled = run & ~3;
                            for (int o = 0; o < c; o += 4)
                            {
                                int ch = Math.Min(o, c - 4);
                                for (int k = 0; k < tiled; k += 4)
                                    ResidualBackwardTile4(pdo + plane + (long)ch * hw + k, hw,
                                        py + row0 + (long)k * c + ch, pdy is null ? null : pdy + row0 + (long)k * c + ch,
                                        c, pg is null ? null : pg + ch, f, ps is not null,
                                        pacc is null ? null : pacc + ch, o - ch);
                            }
                            chTiles = c;
                        }
                        for (int ch = 0; ch < c; ch++)
                        {
                            float* d = pdo + plane + (long)ch * hw;
                            float gm = pg is null ? 1f : pg[ch];
                            double sum = pacc is null ? 0 : pacc[ch];
                            for (int k = ch < chTiles ? tiled : 0; k < run; k++)
                            {
                                // The unfused operators: g = dOut * scale (MulRows), dy = g * gamma (MulLastDim),
                                // dgamma += y * g in float64 (ColumnReduce), row after row.
                                float g = ps is null ? d[k] : d[k] * f;
                                long e = row0 + (long)k * c + ch;
                                if (pdy is not null) pdy[e] = pg is null ? g : g * gm;
                                sum += (double)py[e] * g;
                            }
                            if (pacc is not null) pacc[ch] = sum;
                        }
                        q0 += run;
                    }
                }
            }
        });
        if (partials is null) return;
        for (int j = 0; j < c; j++)
        {
            double s = 0;
            for (int b = 0; b < blocks; b++) s += partials[b][j];
            S(dgamma!)[j] = (float)s;
        }
    }

    /// <summary>Whether the forward on a 1 x 1 map (NCHW is NHWC: one row of C per image) makes one SIMD pass per
    /// row (the default; SLAK_RESIDUAL_ROWS_ONE_PASS=0 turns it off) instead of three TensorPrimitives calls through a
    /// row of scratch (y * gamma, times the DropPath factor, plus the input): 0.81-0.87x their time on slak_nano's
    /// stage 4 (128 x 249, layout-norm-step --toggle rows, bench/results/layout-norm-groups-cf16.md). The same
    /// roundings in the same order, so the same bits. Internal so that the bench and the tests can compare
    /// both.</summary>
    internal static bool ResidualRowsOnePass { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_RESIDUAL_ROWS_ONE_PASS") != "0";

    /// <summary>output = input + (y * gamma) * f over one row, rounded as the unfused operators round (gamma empty:
    /// not applied; scaled false: no factor). The output may be the input: every element is read before it is
    /// written, and the channels past the last whole vector go one by one (an overlapping vector would add twice in
    /// place).</summary>
    private static void ResidualRow(ReadOnlySpan<float> input, ReadOnlySpan<float> y, ReadOnlySpan<float> gamma,
        float f, bool scaled, Span<float> output)
    {
        int i = 0, w = Vector<float>.Count;
        var vf = new Vector<float>(f);
        for (; i + w <= y.Length; i += w)
        {
            var t = new Vector<float>(y.Slice(i, w));
            if (!gamma.IsEmpty) t *= new Vector<float>(gamma.Slice(i, w));
            if (scaled) t *= vf;
            (new Vector<float>(input.Slice(i, w)) + t).CopyTo(output.Slice(i, w));
        }
        for (; i < y.Length; i++)
        {
            float t = y[i];
            if (!gamma.IsEmpty) t *= gamma[i];
            if (scaled) t *= f;
            output[i] = input[i] + t;
        }
    }

    /// <summary>Whether the tiles on maps of at least <see cref="ResidualPrefetchFrom"/> pixels ask for the next run's
    /// line of every NCHW plane they read or write (the default): a run touches 2 x C plane streams 1 KiB apart on a
    /// 16 x 16 map, more than the hardware prefetchers follow. Internal so that the bench can time both.</summary>
    internal static bool ResidualPrefetch { get; set; } = true;

    /// <summary>Pixels (H*W) from which <see cref="ResidualPrefetch"/> applies.</summary>
    private const int ResidualPrefetchFrom = 128;

    /// <summary>Whether the fused residual, forward and backward, runs a channel count that is not a multiple of 8 with
    /// its last channels in the last whole 8-channel tile (the default; SLAK_RESIDUAL_VECTOR_TAILS=0 turns it off)
    /// instead of element by element (C = 31 leaves 7 of 31). The same operations on every element in the same order:
    /// the same bits. Internal so that the bench and the tests can compare both.</summary>
    internal static bool ResidualVectorTails { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_RESIDUAL_VECTOR_TAILS") != "0";

    /// <summary>Whether the fused residual, forward and backward, runs runs of 4 to 7 pixels (a 2 x 2 map's) in 4-pixel
    /// x 4-channel tiles transposed in SSE registers (the default; SLAK_RESIDUAL_TILES4=0 turns it off) instead of
    /// element by element. The same operations on every element in the same order: the same bits. Internal so that the
    /// bench and the tests can compare both.</summary>
    internal static bool ResidualTiles4 { get; set; } = Environment.GetEnvironmentVariable("SLAK_RESIDUAL_TILES4") != "0";

    private static bool UseResidualTiles4(int c, int run) => ResidualTiles4 && Avx.IsSupported && c >= 4 && run >= 4;

    /// <summary><see cref="ResidualTile8"/> for 4 pixels x 4 channels (SSE).</summary>
    private static unsafe void ResidualTile4(float* v, int c, float* a, float* o, int hw, float* gamma, float f,
                                             bool scaled, int skip)
    {
        Transpose4(Sse.LoadVector128(v), Sse.LoadVector128(v + c), Sse.LoadVector128(v + 2 * c),
            Sse.LoadVector128(v + 3 * c), out var t0, out var t1, out var t2, out var t3);
        var vf = Vector128.Create(f);
        Store(t0, 0); Store(t1, 1); Store(t2, 2); Store(t3, 3);

        void Store(Vector128<float> t, int j)
        {
            if (j < skip) return;
            if (gamma is not null) t *= Vector128.Create(gamma[j]);
            if (scaled) t *= vf;
            Sse.Store(o + (long)j * hw, Sse.LoadVector128(a + (long)j * hw) + t);
        }
    }

    /// <summary><see cref="ResidualBackwardTile8"/> for 4 pixels x 4 channels (SSE; the float64 sums in AVX).</summary>
    private static unsafe void ResidualBackwardTile4(float* d, int hw, float* y, float* dy, int c, float* gamma,
                                                     float f, bool scaled, double* acc, int skip)
    {
        var keep = Vector256.GreaterThanOrEqual(Vector256.Create(0.0, 1, 2, 3), Vector256.Create((double)skip));
        var vf = Vector128.Create(f);
        Vector128<float> G(int j) =>
            scaled ? Sse.LoadVector128(d + (long)j * hw) * vf : Sse.LoadVector128(d + (long)j * hw);
        Transpose4(G(0), G(1), G(2), G(3), out var g0, out var g1, out var g2, out var g3);
        var gm = gamma is null ? Vector128<float>.One : Sse.LoadVector128(gamma);
        var sum = acc is null ? default : Avx.LoadVector256(acc);
        Row(g0, 0); Row(g1, 1); Row(g2, 2); Row(g3, 3);
        if (acc is not null) Avx.Store(acc, sum);

        void Row(Vector128<float> g, int i)
        {
            if (dy is not null) Sse.Store(dy + (long)i * c, gamma is null ? g : g * gm);
            if (acc is null) return;
            var p = Avx.ConvertToVector256Double(Sse.LoadVector128(y + (long)i * c)) * Avx.ConvertToVector256Double(g);
            sum = skip == 0 ? sum + p : Vector256.ConditionalSelect(keep, sum + p, sum);
        }
    }

    /// <summary>One 8-pixel x 8-channel tile of the forward: v holds 8 channels-last rows (row stride c), a and o
    /// the 8 channel planes (plane stride hw) at the tile's first pixel; o = a + (v * gamma) * scale, rounded as the
    /// unfused operators round (gamma null: not applied; scaled false: no DropPath factor); the first
    /// <paramref name="skip"/> channels are not stored.</summary>
    private static unsafe void ResidualTile8(float* v, int c, float* a, float* o, int hw, float* gamma, float f,
                                             bool scaled, int skip, bool fetch)
    {
        CpuDwConvTranspose.Transpose(
            Avx.LoadVector256(v), Avx.LoadVector256(v + c), Avx.LoadVector256(v + 2 * c), Avx.LoadVector256(v + 3 * c),
            Avx.LoadVector256(v + 4 * c), Avx.LoadVector256(v + 5 * c), Avx.LoadVector256(v + 6 * c),
            Avx.LoadVector256(v + 7 * c),
            out var t0, out var t1, out var t2, out var t3, out var t4, out var t5, out var t6, out var t7);
        var vf = Vector256.Create(f);
        ResidualStore(t0, 0); ResidualStore(t1, 1); ResidualStore(t2, 2); ResidualStore(t3, 3);
        ResidualStore(t4, 4); ResidualStore(t5, 5); ResidualStore(t6, 6); ResidualStore(t7, 7);

        void ResidualStore(Vector256<float> t, int j)
        {
            if (fetch)
            {
                Sse.Prefetch0(a + (long)j * hw + LnTile);
                Sse.Prefetch0(o + (long)j * hw + LnTile);
            }
            if (j < skip) return;
            if (gamma is not null) t *= Vector256.Create(gamma[j]);
            if (scaled) t *= vf;
            Avx.Store(o + (long)j * hw, Avx.LoadVector256(a + (long)j * hw) + t);
        }
    }

    /// <summary>One 8-pixel x 8-channel tile of the backward: d holds the 8 channel planes of dOutput (plane stride hw)
    /// at the tile's first pixel, y and dy 8 channels-last rows (row stride c). g = dOut * scale; dy = g * gamma;
    /// acc[j] += (double)y * g for the 8 pixels in order (acc null: no dgamma; dy null: not wanted); the first
    /// <paramref name="skip"/> channels' sums are left as they are (their dy is written again, the same
    /// values).</summary>
    private static unsafe void ResidualBackwardTile8(float* d, int hw, float* y, float* dy, int c, float* gamma,
                                                     float f, bool scaled, double* acc, int skip, bool fetch)
    {
        var keepLo = Vector256.GreaterThanOrEqual(Vector256.Create(0.0, 1, 2, 3), Vector256.Create((double)skip));
        var keepHi = Vector256.GreaterThanOrEqual(Vector256.Create(4.0, 5, 6, 7), Vector256.Create((double)skip));
        var vf = Vector256.Create(f);
        Vector256<float> G(int j)
        {
            if (fetch) Sse.Prefetch0(d + (long)j * hw + LnTile);
            return scaled ? Avx.LoadVector256(d + (long)j * hw) * vf : Avx.LoadVector256(d + (long)j * hw);
        }
        CpuDwConvTranspose.Transpose(G(0), G(1), G(2), G(3), G(4), G(5), G(6), G(7),
            out var g0, out var g1, out var g2, out var g3, out var g4, out var g5, out var g6, out var g7);
        var gm = gamma is null ? Vector256<float>.One : Avx.LoadVector256(gamma);
        Vector256<double> lo = default, hi = default;
        if (acc is not null)
        {
            lo = Avx.LoadVector256(acc);
            hi = Avx.LoadVector256(acc + 4);
        }
        Row(g0, 0); Row(g1, 1); Row(g2, 2); Row(g3, 3); Row(g4, 4); Row(g5, 5); Row(g6, 6); Row(g7, 7);
        if (acc is not null)
        {
            Avx.Store(acc, lo);
            Avx.Store(acc + 4, hi);
        }

        void Row(Vector256<float> g, int i)
        {
            if (dy is not null) Avx.Store(dy + (long)i * c, gamma is null ? g : g * gm);
            if (acc is null) return;
            var yi = Avx.LoadVector256(y + (long)i * c);
            var pl = Avx.ConvertToVector256Double(yi.GetLower()) * Avx.ConvertToVector256Double(g.GetLower());
            var ph = Avx.ConvertToVector256Double(yi.GetUpper()) * Avx.ConvertToVector256Double(g.GetUpper());
            lo = skip == 0 ? lo + pl : Vector256.ConditionalSelect(keepLo, lo + pl, lo);
            hi = skip == 0 ? hi + ph : Vector256.ConditionalSelect(keepHi, hi + ph, hi);
        }
    }

    /// <summary>The backward of a 1 x 1 map (NCHW is NHWC) for rows [r0, r1), row-wise with SIMD: g = dOut * scale,
    /// dy = g * gamma, acc += y * g in float64 (empty spans: not applied or not wanted; acc null: no dgamma).</summary>
    private static void ResidualRowsBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> gamma, ReadOnlySpan<float> scale,
                                             ReadOnlySpan<float> dOutput, Span<float> dy, double[]? acc, int c, int r0, int r1)
    {
        var buffer = ArrayPool<float>.Shared.Rent(c);
        try
        {
            for (int r = r0; r < r1; r++)
            {
                ReadOnlySpan<float> g = dOutput.Slice(r * c, c);
                if (!scale.IsEmpty)
                {
                    TensorPrimitives.Multiply(g, scale[r], buffer.AsSpan(0, c));
                    g = buffer.AsSpan(0, c);
                }
                if (acc is not null) AddProductWiden(y.Slice(r * c, c), g, acc);
                if (dy.IsEmpty) continue;
                if (gamma.IsEmpty) g.CopyTo(dy.Slice(r * c, c));
                else TensorPrimitives.Multiply(g, gamma, dy.Slice(r * c, c));
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
    }
}
