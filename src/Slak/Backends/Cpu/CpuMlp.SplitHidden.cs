// The block MLP of the wide, short stages (the last stage: hidden 996 on 128-512 rows) split over the hidden units
// instead of the rows: each task takes a slice of the hidden units (a multiple of the GEMM's 32-column sliver) and
// all the rows, in row blocks whose slice of the hidden tensors stays in L2. A row block of the row-block form
// (CpuMlp.cs) that fits L2 has only 64 rows there, so its weight-gradient products were too short in k and the
// backend ran the per-GEMM composition (MlpComposed.cs, ~52 % of the FMA peak on 2 threads), and its forward packed
// both 1 MB weights on the calling thread before the tasks (a third of the forward's wall at slak_nano's last stage).
// Split by hidden units, each task packs only its own slices of the weights (in parallel), owns its slices of dw1,
// dw2 and db1 outright (no per-task weight-gradient buffers to reduce), and only the outputs over all hidden units
// (y, dx: rows x C floats) are summed over the tasks afterwards, in task order. The slices depend only on the shape
// and the thread count, so the results are the same bits for the same thread count.
using System.Buffers;
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

internal static unsafe partial class CpuMlp
{
    /// <summary>True (the default): at two or more threads, the MLPs whose row blocks would be shorter than
    /// <see cref="MinBackwardBlockRows"/> run split over the hidden units (see the file comment); false
    /// (SLAK_MLP_SPLIT_HIDDEN=0): their forward runs over row blocks and their backward as the per-GEMM composition,
    /// as before. Internal and settable (each direction apart) so that the bench (mlp-ab) can time both in one run
    /// and tests can compare them.</summary>
    internal static bool SplitHiddenForward { get; set; } = SplitHiddenDefault;

    /// <inheritdoc cref="SplitHiddenForward"/>
    internal static bool SplitHiddenBackward { get; set; } = SplitHiddenDefault;

    private static bool SplitHiddenDefault => Environment.GetEnvironmentVariable("SLAK_MLP_SPLIT_HIDDEN") != "0";

    /// <summary>True where a call of this shape runs split over the hidden units (given the direction's
    /// switch).</summary>
    internal static bool UsesSplitHidden(int rows, int hidden, int threads) =>
        threads >= 2 && rows > 0 && hidden > 0 && BlockRows(rows, hidden, threads) < MinBackwardBlockRows;

    // Tasks: one per thread, at most one per hidden unit.
    private static int SplitParts(int hidden, int threads) => Math.Max(1, Math.Min(threads, hidden));

    // First hidden unit of task t's slice: near-equal slices on a multiple of 32 (the GEMM's sliver) where the slices
    // are wide, of 8 where they are narrower, else plain; slices are never empty (h / parts >= 2 units).
    private static int SliceStart(int t, int parts, int hidden)
    {
        if (t >= parts) return hidden;
        int unit = hidden >= 64 * parts ? 32 : hidden >= 16 * parts ? 8 : 1;
        return Math.Min(hidden, (int)Math.Round((double)hidden * t / parts / unit) * unit);
    }

    // Rows per block of a task whose slice is `width` hidden units wide: the same cache target as the row blocks.
    private static int SliceBlockRows(int width) =>
        Math.Max(MinBlockRows, HiddenBlockFloats / Math.Max(width, 1) / 8 * 8);

    /// <summary><see cref="Forward"/> split over the hidden units: task t computes pre and act for its slice and its
    /// slice's share of y; y = (share 0 + b2) + share 1 + ...</summary>
    internal static void ForwardSplitHidden(Args a, float* y, int threads)
    {
        int parts = SplitParts(a.Hidden, threads);
        long yFloats = (long)a.Rows * a.Out;
        float[] sharesArray = ArrayPool<float>.Shared.Rent(checked((int)Math.Max(1, (parts - 1) * yFloats)));
        try
        {
            fixed (float* shares = sharesArray)
            {
                nint yP = (nint)y, sharesP = (nint)shares;
                long[]? ends = MlpPhaseClock.TaskEnds(parts);
                long fork = MlpPhaseClock.Start();
                CpuParallel.For(0, parts, part =>
                {
                    MlpPhaseClock.TaskStart(part, fork);
                    int h0 = SliceStart(part, parts, a.Hidden), hw = SliceStart(part + 1, parts, a.Hidden) - h0;
                    int rb = SliceBlockRows(hw);
                    long blockFloats = (long)rb * hw;
                    long t = MlpPhaseClock.Start();
                    using var w1T = new CpuGemm.PackedB(true, a.In, hw, a.W1 + (long)h0 * a.In, a.In);
                    using var w2T = new CpuGemm.PackedB(true, hw, a.Out, a.W2 + h0, a.Hidden);
                    MlpPhaseClock.Lap(part, MlpPhase.Pack, ref t);
                    float* dst = part == 0 ? (float*)yP : (float*)sharesP + (part - 1) * yFloats;
                    float[] buffer =
                        ArrayPool<float>.Shared.Rent(checked((int)((a.Pre == null ? 2 : 1) * blockFloats)));
                    try
                    {
                        fixed (float* act = buffer)
                            for (int r0 = 0; r0 < a.Rows; r0 += rb)
                            {
                                int n = Math.Min(rb, a.Rows - r0);
                                SliceFc1(a, w1T, r0, n, h0, hw, act + blockFloats, act);
                                MlpPhaseClock.Lap(part, MlpPhase.Fc1, ref t);
                                CpuGemm.SgemmPackedB(n, w2T, 1f, act, hw, 0f, dst + (long)r0 * a.Out, a.Out,
                                    part == 0 ? new BiasEpilogue(a.B2) : null);
                                MlpPhaseClock.Lap(part, MlpPhase.Fc2, ref t);
                            }
                    }
                    finally
                    {
                        ArrayPool<float>.Shared.Return(buffer);
                    }
                    MlpPhaseClock.TaskEnd(ends, part);
                });
                MlpPhaseClock.Joined(ends);
                long t = MlpPhaseClock.Start();
                AddShares(y, shares, parts, yFloats);
                MlpPhaseClock.Lap(0, MlpPhase.Reduce, ref t);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(sharesArray);
        }
    }

    /// <summary><see cref="Backward"/> split over the hidden units: task t computes act and dpre for its slice, its
    /// slices of dw1, db1 and dw2 (whole), its share of dx, and db2 for a slice of the outputs; dx = share 0 + share 1
    /// + ...</summary>
    internal static void BackwardSplitHidden(Args a, Grads g, int threads)
    {
        long call = MlpPhaseClock.BeginCall(true, a.Rows, a.In);
        BackwardSlices(a, g, threads);
        MlpPhaseClock.EndCall(call);
    }

    private static void BackwardSlices(Args a, Grads g, int threads)
    {
        int parts = SplitParts(a.Hidden, threads);
        long dxFloats = (long)a.Rows * a.In;
        float[] sharesArray = ArrayPool<float>.Shared.Rent(checked((int)Math.Max(1, (parts - 1) * dxFloats)));
        try
        {
            fixed (float* shares = sharesArray)
            {
                nint sharesP = (nint)shares;
                long[]? ends = MlpPhaseClock.TaskEnds(parts);
                long fork = MlpPhaseClock.Start();
                CpuParallel.For(0, parts, part =>
                {
                    MlpPhaseClock.TaskStart(part, fork);
                    int h0 = SliceStart(part, parts, a.Hidden), hw = SliceStart(part + 1, parts, a.Hidden) - h0;
                    int rb = SliceBlockRows(hw);
                    long blockFloats = (long)rb * hw, dw2Floats = (long)hw * a.Out;
                    long t = MlpPhaseClock.Start();
                    using var w2 = new CpuGemm.PackedB(false, a.Out, hw, a.W2 + h0, a.Hidden);
                    using var w1 = new CpuGemm.PackedB(false, hw, a.In, a.W1 + (long)h0 * a.In, a.In);
                    using var w1T = a.Pre == null
                        ? new CpuGemm.PackedB(true, a.In, hw, a.W1 + (long)h0 * a.In, a.In)
                        : null;
                    MlpPhaseClock.Lap(part, MlpPhase.Pack, ref t);
                    float* dx = part == 0 ? g.Dx : (float*)sharesP + (part - 1) * dxFloats;
                    // Per task: act, dpre, pre when the caller kept none, dw2^T of the slice (hw x Out: the A^T B
                    // product with more rows than columns, transposed into dw2 once at the end), and one block's
                    // column sums; db1's sums in double.
                    long scratchFloats = (a.Pre == null ? 3 : 2) * blockFloats + dw2Floats + Math.Max(hw, a.Out);
                    float[] buffer = ArrayPool<float>.Shared.Rent(checked((int)scratchFloats));
                    var sums = new double[Math.Max(hw, a.Out)];
                    try
                    {
                        fixed (float* scratch = buffer)
                        {
                            float* act = scratch, dpre = scratch + blockFloats, dw2T = dpre + blockFloats;
                            float* colSums = dw2T + dw2Floats, preScratch = colSums + Math.Max(hw, a.Out);
                            for (int r0 = 0; r0 < a.Rows; r0 += rb)
                                BackwardSliceBlock(a, g, w2, w1, w1T, part, r0, Math.Min(rb, a.Rows - r0), h0, hw,
                                    r0 == 0, act, dpre, preScratch, dw2T, dx, colSums, sums);
                            t = MlpPhaseClock.Start(); // the blocks time their own steps
                            for (int j = 0; j < hw; j++) g.Db1[h0 + j] = (float)sums[j];
                            CpuGemm.TransposeInto(dw2T, a.Out, hw, g.Dw2 + h0, a.Hidden);
                            // db2 over a slice of the outputs: blocks of rows summed in float, the blocks in double.
                            int o0 = (int)((long)a.Out * part / parts);
                            int ow = (int)((long)a.Out * (part + 1) / parts) - o0;
                            Array.Clear(sums);
                            for (int r0 = 0; r0 < a.Rows; r0 += rb)
                            {
                                new Span<float>(colSums, ow).Clear();
                                CpuRowOps.AccumulateColumns(g.Dy + (long)r0 * a.Out + o0, a.Out,
                                    Math.Min(rb, a.Rows - r0), ow, colSums);
                                for (int j = 0; j < ow; j++) sums[j] += colSums[j];
                            }
                            for (int j = 0; j < ow; j++) g.Db2[o0 + j] = (float)sums[j];
                            MlpPhaseClock.Lap(part, MlpPhase.ColumnSums, ref t);
                        }
                    }
                    finally
                    {
                        ArrayPool<float>.Shared.Return(buffer);
                    }
                    MlpPhaseClock.TaskEnd(ends, part);
                });
                MlpPhaseClock.Joined(ends);
                long t = MlpPhaseClock.Start();
                AddShares(g.Dx, shares, parts, dxFloats);
                MlpPhaseClock.Lap(0, MlpPhase.Reduce, ref t);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(sharesArray);
        }
    }

    // Rows [r0, r0 + n) of one task's hidden slice [h0, h0 + hw): dx's share written; the slices of dw1 and dw2^T
    // overwritten on the first block and added to after; db1's column sums added to the task's double sums.
    private static void BackwardSliceBlock(Args a, Grads g, CpuGemm.PackedB w2, CpuGemm.PackedB w1,
        CpuGemm.PackedB? w1T, int part, int r0, int n, int h0, int hw, bool firstBlock, float* act, float* dpre,
        float* preScratch, float* dw2T, float* dx, float* colSums, double[] sums)
    {
        int h = a.Hidden;
        float beta = firstBlock ? 0f : 1f;
        float* x = a.X + (long)r0 * a.In, dy = g.Dy + (long)r0 * a.Out;
        // pre of the block's slice: the caller's (row stride h) or recomputed (row stride hw).
        float* pre = a.Pre == null ? preScratch : a.Pre + (long)r0 * h + h0;
        int ldPre = a.Pre == null ? hw : h;
        bool joint = UsesGeluJoint(a);
        long t = MlpPhaseClock.Start();
        if (a.Pre == null)
        {
            SliceFc1(a, w1T!, r0, n, h0, hw, preScratch, act);
            MlpPhaseClock.Lap(part, MlpPhase.Fc1, ref t);
        }
        else if (!joint)
        {
            for (int i = 0; i < n; i++)
                CpuGelu.Forward(new ReadOnlySpan<float>(pre + (long)i * ldPre, hw),
                    new Span<float>(act + (long)i * hw, hw));
            MlpPhaseClock.Lap(part, MlpPhase.GeluRecompute, ref t);
        }
        CpuGemm.SgemmPackedB(n, w2, 1f, dy, a.Out, 0f, dpre, hw);
        MlpPhaseClock.Lap(part, MlpPhase.Dact, ref t);
        for (int i = 0; i < n; i++)
        {
            var row = new Span<float>(dpre + (long)i * hw, hw);
            var preRow = new ReadOnlySpan<float>(pre + (long)i * ldPre, hw);
            if (joint) CpuGelu.ActivationAndGradient(preRow, new Span<float>(act + (long)i * hw, hw), row);
            else CpuGelu.Backward(preRow, row, row);
        }
        MlpPhaseClock.Lap(part, MlpPhase.GeluGrad, ref t);
        new Span<float>(colSums, hw).Clear();
        CpuRowOps.AccumulateColumns(dpre, hw, n, hw, colSums);
        for (int j = 0; j < hw; j++) sums[j] += colSums[j];
        MlpPhaseClock.Lap(part, MlpPhase.ColumnSums, ref t);
        var actS = new ReadOnlySpan<float>(act, n * hw);
        var dpreS = new ReadOnlySpan<float>(dpre, n * hw);
        CpuGemm.Sgemm(true, false, hw, a.Out, n, 1f, actS, hw, new ReadOnlySpan<float>(dy, n * a.Out), a.Out, beta,
            new Span<float>(dw2T, hw * a.Out), a.Out, 1);
        MlpPhaseClock.Lap(part, MlpPhase.Dw2, ref t);
        CpuGemm.Sgemm(true, false, hw, a.In, n, 1f, dpreS, hw, new ReadOnlySpan<float>(x, n * a.In), a.In, beta,
            new Span<float>(g.Dw1 + (long)h0 * a.In, hw * a.In), a.In, 1);
        MlpPhaseClock.Lap(part, MlpPhase.Dw1, ref t);
        CpuGemm.SgemmPackedB(n, w1, 1f, dpre, hw, 0f, dx + (long)r0 * a.In, a.In);
        MlpPhaseClock.Lap(part, MlpPhase.Dx, ref t);
    }

    // pre = x w1[slice]^T + b1[slice] (into the caller's pre at row stride h when kept, else into preScratch at row
    // stride hw) and act = GELU(pre) (row stride hw) for rows [r0, r0 + n).
    private static void SliceFc1(Args a, CpuGemm.PackedB w1T, int r0, int n, int h0, int hw, float* preScratch,
        float* act)
    {
        float* pre = a.Pre == null ? preScratch : a.Pre + (long)r0 * a.Hidden + h0;
        CpuGemm.SgemmPackedB(n, w1T, 1f, a.X + (long)r0 * a.In, a.In, 0f, pre, a.Pre == null ? hw : a.Hidden,
            new BiasGeluEpilogue(a.B1 + h0, act));
    }

    // total += share 1 + share 2 + ... in task order.
    private static void AddShares(float* total, float* shares, int parts, long floats)
    {
        var sum = new Span<float>(total, checked((int)floats));
        for (int p = 1; p < parts; p++)
            TensorPrimitives.Add(sum, new ReadOnlySpan<float>(shares + (p - 1) * floats, (int)floats), sum);
    }
}
