// The SLaK block's epilogue on the CPU (IBackend.Residual.cs): layer scale, DropPath, the permute back to NCHW and
// the residual add in one pass. The pixels (NHWC order, across images) are split into the row blocks of
// RowBlocks(pixels, C), as MulLastDim's gamma reduction splits them; a block walks its pixels in runs of at most
// LnTile consecutive positions of one image, and for each channel reads the run's channels-last values with stride C
// (the run's LnTile rows stay in L1 across the channel loop) and writes or reads a unit-stride run of the NCHW plane.
// No per-row calls and no staging buffer: on slak_nano's maps (1x1 to 8x8, 31 to 249 channels) a per-row SIMD call
// cost more than the row's work. Backward accumulates gamma's gradient per block in float64 (a float product is exact
// in float64), row after row for every channel, the blocks added in order: the same float operations, rows and blocks
// as the unfused MulLastDim, Permute, MulRows and Add, so the same bits. A 1 x 1 map (NCHW is NHWC) runs row-wise
// with SIMD instead.
using System.Buffers;
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void ChannelsLastResidual(Tensor input, Tensor y, Tensor? gamma, Tensor? scale, Tensor output)
    {
        int c = input.Size(1), hw = input.Size(2) * input.Size(3);
        int rows = checked(input.Size(0) * hw);
        if (hw == 1)
        {
            CpuParallel.For(0, RowBlocks(rows, c), blk =>
            {
                var (r0, r1) = RowRange(blk, rows, c);
                for (int r = r0; r < r1; r++)
                {
                    var o = S(output).Slice(r * c, c);
                    if (gamma is null) S(y).Slice(r * c, c).CopyTo(o);
                    else TensorPrimitives.Multiply(S(y).Slice(r * c, c), S(gamma), o);
                    if (scale is not null) TensorPrimitives.Multiply(o, S(scale)[r], o);
                    TensorPrimitives.Add(S(input).Slice(r * c, c), o, o);
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
                        long plane = (long)img * c * hw + p;
                        float* src = py + (long)q0 * c;
                        for (int ch = 0; ch < c; ch++)
                        {
                            float* a = pin + plane + (long)ch * hw, o = pout + plane + (long)ch * hw, v = src + ch;
                            float g = pg is null ? 1f : pg[ch];
                            // The unfused operators' roundings: (y * gamma) * scale, then input + that.
                            for (int k = 0; k < run; k++)
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
        int c = y.Size(3), hw = y.Size(1) * y.Size(2);
        int rows = checked(y.Size(0) * hw);
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
                        long plane = (long)img * c * hw + p, row0 = (long)q0 * c;
                        for (int ch = 0; ch < c; ch++)
                        {
                            float* d = pdo + plane + (long)ch * hw;
                            float gm = pg is null ? 1f : pg[ch];
                            double sum = pacc is null ? 0 : pacc[ch];
                            for (int k = 0; k < run; k++)
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
