// The block MLP (Linear -> GELU -> Linear) on the CPU over blocks of rows: each task takes blocks of rows small
// enough that their hidden activations (rows x hidden) stay in L2, runs every product of the MLP on a block with the
// single-threaded CpuGemm (the biases and GELU in its epilogues, CpuGemm.Epilogue.cs) and moves on, so the hidden
// tensors do not stream through DRAM: at slak_nano64's first stage they are 16 MB each, and the per-operator form
// (MlpComposed.cs) wrote act, read it back, wrote dpre and read it twice more. The forward keeps only the
// pre-activation (or nothing); the backward rebuilds act = GELU(pre) per block (or the whole first product).
// The weights are packed once per call for every block's products (CpuGemm.PackedB).
// With the pre-activation kept, act = GELU(pre) and GELU' are one pass after the dact product (one table lookup for
// both, CpuGelu.ActivationAndGradient; SLAK_MLP_GELU_JOINT=0: two passes, one before the product, as before).
// GELU' and db1's column sums stay passes over the block after the dact product, not its epilogue: fused into the
// product's epilogue per 8-row strip or per GEMM row block (with act = GELU(pre) from the same read of pre, or
// without) they measured 7-21 % slower at every stage (bench/results/mlp-phases-strip-epilogue.md, commit a7a318d).
// Each step of a call can be timed per task (CpuMlp.Phases.cs, bench mlp-phases).
// Weight and bias gradients are summed per task into their own buffers and reduced in task order afterwards; the
// tasks are fixed contiguous ranges of blocks that depend only on the shape and the thread count, so the results are
// the same bits for the same thread count.
using System.Buffers;
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

/// <summary>Row-block forward and backward of the block MLP (see the file comment).</summary>
internal static unsafe partial class CpuMlp
{
    /// <summary>Target size in floats of one block's hidden tensor (rows x hidden): 64 Ki floats (256 KiB), so a
    /// block's pre, act and dpre with its slices of x and dy stay within a core's L2. Internal and settable only so
    /// that the bench (mlp-step) can sweep it and tests can reach many small blocks.</summary>
    internal static int HiddenBlockFloats { get; set; } = 1 << 16;

    // A block has at least this many rows (the GEMMs' register tiles are 8-16 rows high).
    private const int MinBlockRows = 16;

    /// <summary>The backend runs the row-block backward only where blocks have at least this many rows (the k of the
    /// weight-gradient products; see CpuBackend.Conv2d.Mlp.cs). Internal and settable only so that tests can reach the
    /// row-block backward on wide shapes.</summary>
    internal static int MinBackwardBlockRows { get; set; } = 128;

    /// <summary>True (the default): the backward's per-task dw2^T buffers are summed as vectors and transposed
    /// into dw2 by 8 x 8 blocks (the same bits); false (SLAK_MLP_REDUCE_TRANSPOSED=0): element by element with
    /// strided stores, as before. Internal and settable so that the bench (mlp-ab) can time both in one run.</summary>
    internal static bool ReduceTransposed { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_MLP_REDUCE_TRANSPOSED") != "0";

    /// <summary>True (the default): with the pre-activation kept and AVX-512, the backward's GELU work on a block is
    /// one pass after the dact product, act = GELU(pre) and dpre = dact GELU'(pre) from one lookup of GELU's table
    /// (CpuGelu.ActivationAndGradient); false (SLAK_MLP_GELU_JOINT=0): act recomputed in a pass before the dact
    /// product and GELU' from its own table in a second pass after it, as before (act's bits are the same either way,
    /// dpre's agree within the stated error of GELU'). Internal and settable so that the bench (mlp-ab) can time both
    /// in one run.</summary>
    internal static bool GeluJoint { get; set; } = Environment.GetEnvironmentVariable("SLAK_MLP_GELU_JOINT") != "0";

    // The joint pass runs where the pre-activation is kept (else Fc1's epilogue makes act) and with AVX-512 (its
    // one-lane fallback is for the tests); not with the legacy per-row passes.
    private static bool UsesGeluJoint(Args a) =>
        a.Pre != null && GeluJoint && CpuGelu.Vectorized && !CpuRowOps.Legacy;

    /// <summary>The tensors of one call and its shape (x: rows x In, w1: Hidden x In, w2: Out x Hidden). Pre is null
    /// where the caller keeps no pre-activation.</summary>
    internal readonly struct Args
    {
        public float* X { get; init; }
        public float* W1 { get; init; }
        public float* B1 { get; init; }
        public float* W2 { get; init; }
        public float* B2 { get; init; }
        public float* Pre { get; init; }
        public int Rows { get; init; }
        public int In { get; init; }
        public int Hidden { get; init; }
        public int Out { get; init; }
    }

    /// <summary>Rows per block for this shape and thread count: the cache target, but no more than an even share of
    /// the rows per thread so that every thread has a block.</summary>
    /// <remarks>The blocks of a call are as equal as a multiple of 8 rows allows and their number a multiple of the
    /// thread count: the tasks take contiguous ranges of whole blocks, and with blocks of the cache target (528 rows
    /// at C = 31) the first task had a whole block more than the second at slak_nano's first two stages (6 % of the
    /// work idle on one thread). <see cref="CpuRowOps.Legacy"/>: the cache target and a ragged last block, as before.
    /// </remarks>
    internal static int BlockRows(int rows, int hidden, int threads)
    {
        int target = Math.Max(MinBlockRows, HiddenBlockFloats / Math.Max(hidden, 1) / 8 * 8);
        int share = (Math.Max(rows, 1) + threads - 1) / threads;
        if (CpuRowOps.Legacy) return Math.Min(target, share);
        int perThread = (share + target - 1) / target;
        int even = (Math.Max(rows, 1) + threads * perThread - 1) / (threads * perThread);
        return Math.Min(target, (even + 7) / 8 * 8);
    }

    /// <summary>y = GELU(x w1^T + b1) w2^T + b2; a.Pre (rows x hidden) receives x w1^T + b1 unless null.</summary>
    public static void Forward(Args a, float* y, int threads)
    {
        long call = MlpPhaseClock.BeginCall(false, a.Rows, a.In);
        if (SplitHiddenForward && UsesSplitHidden(a.Rows, a.Hidden, threads)) ForwardSplitHidden(a, y, threads);
        else ForwardRowBlocks(a, y, threads);
        MlpPhaseClock.EndCall(call);
    }

    private static void ForwardRowBlocks(Args a, float* y, int threads)
    {
        int rb = BlockRows(a.Rows, a.Hidden, threads);
        int blocks = (a.Rows + rb - 1) / rb, parts = Math.Min(threads, blocks);
        long blockFloats = (long)rb * a.Hidden;
        nint yP = (nint)y;
        long t = MlpPhaseClock.Start();
        using var w = new Weights(a, backward: false);
        MlpPhaseClock.Lap(0, MlpPhase.Pack, ref t);
        long[]? ends = MlpPhaseClock.TaskEnds(parts);
        long fork = MlpPhaseClock.Start();
        CpuParallel.For(0, parts, part =>
        {
            MlpPhaseClock.TaskStart(part, fork);
            // Per task: a block's act, and its pre when the caller keeps none.
            float[] buffer = ArrayPool<float>.Shared.Rent(checked((int)((a.Pre == null ? 2 : 1) * blockFloats)));
            try
            {
                fixed (float* scratch = buffer)
                    for (int blk = FirstBlock(part, parts, blocks); blk < FirstBlock(part + 1, parts, blocks); blk++)
                        ForwardBlock(a, w, part, blk * rb, Math.Min(rb, a.Rows - blk * rb), scratch,
                            scratch + blockFloats, (float*)yP);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(buffer);
            }
            MlpPhaseClock.TaskEnd(ends, part);
        });
        MlpPhaseClock.Joined(ends);
    }

    private static void ForwardBlock(Args a, Weights w, int part, int r0, int n, float* act, float* preScratch,
        float* y)
    {
        float* pre = a.Pre == null ? preScratch : a.Pre + (long)r0 * a.Hidden;
        long t = MlpPhaseClock.Start();
        Fc1(a, w, r0, n, pre, act);
        MlpPhaseClock.Lap(part, MlpPhase.Fc1, ref t);
        CpuGemm.SgemmPackedB(n, w.W2T!, 1f, act, a.Hidden, 0f, y + (long)r0 * a.Out, a.Out, new BiasEpilogue(a.B2));
        MlpPhaseClock.Lap(part, MlpPhase.Fc2, ref t);
    }

    /// <summary>The weights packed once per call for the products of every block (CpuGemm.PackedB): w1^T and w2^T for
    /// the forward (and the backward's recomputed first product), w2 and w1 for the backward's dact and dx.</summary>
    private sealed class Weights : IDisposable
    {
        public Weights(Args a, bool backward)
        {
            bool pack = !CpuRowOps.Legacy; // legacy: every block's product packs its weight, as before
            if (!backward || a.Pre == null) W1T = new CpuGemm.PackedB(true, a.In, a.Hidden, a.W1, a.In, pack);
            if (!backward) W2T = new CpuGemm.PackedB(true, a.Hidden, a.Out, a.W2, a.Hidden, pack);
            if (!backward) return;
            W2 = new CpuGemm.PackedB(false, a.Out, a.Hidden, a.W2, a.Hidden, pack);
            W1 = new CpuGemm.PackedB(false, a.Hidden, a.In, a.W1, a.In, pack);
        }

        public CpuGemm.PackedB? W1T { get; }
        public CpuGemm.PackedB? W2T { get; }
        public CpuGemm.PackedB? W2 { get; }
        public CpuGemm.PackedB? W1 { get; }

        public void Dispose()
        {
            W1T?.Dispose();
            W2T?.Dispose();
            W2?.Dispose();
            W1?.Dispose();
        }
    }

    /// <summary>The gradients of one call: dx (rows x In) per block; dw1 (Hidden x In), db1, dw2 (Out x Hidden), db2
    /// after the per-task sums are reduced.</summary>
    internal readonly struct Grads
    {
        public float* Dy { get; init; }
        public float* Dx { get; init; }
        public float* Dw1 { get; init; }
        public float* Db1 { get; init; }
        public float* Dw2 { get; init; }
        public float* Db2 { get; init; }
    }

    /// <summary>The five gradients from dy; a.Pre is the forward's pre-activation, or null to recompute it.</summary>
    public static void Backward(Args a, Grads g, int threads)
    {
        long call = MlpPhaseClock.BeginCall(true, a.Rows, a.In);
        BackwardRowBlocks(a, g, threads);
        MlpPhaseClock.EndCall(call);
    }

    private static void BackwardRowBlocks(Args a, Grads g, int threads)
    {
        int rb = BlockRows(a.Rows, a.Hidden, threads);
        int blocks = (a.Rows + rb - 1) / rb, parts = Math.Max(1, Math.Min(threads, blocks));
        long blockFloats = (long)rb * a.Hidden;
        // Per task: dw1, then dw2 transposed (Hidden x Out: the A^T B product with more rows than columns runs
        // without CpuGemm's swap and transpose-back on every block), then both bias gradients in double.
        long w1Floats = (long)a.Hidden * a.In, partFloats = w1Floats + (long)a.Hidden * a.Out;
        int biasStride = a.Hidden + a.Out;
        float[] partialArray = ArrayPool<float>.Shared.Rent(checked((int)(parts * partFloats)));
        double[] biasSums = new double[parts * biasStride];
        long t = MlpPhaseClock.Start();
        using var w = new Weights(a, backward: true);
        MlpPhaseClock.Lap(0, MlpPhase.Pack, ref t);
        try
        {
            fixed (float* partials = partialArray)
            {
                nint partP = (nint)partials;
                long[]? ends = MlpPhaseClock.TaskEnds(parts);
                long fork = MlpPhaseClock.Start();
                CpuParallel.For(0, parts, part =>
                {
                    MlpPhaseClock.TaskStart(part, fork);
                    // Per task: act, dpre, a block's pre when the caller kept none, and the column sums of one block.
                    float[] buffer = ArrayPool<float>.Shared.Rent(
                        checked((int)((a.Pre == null ? 3 : 2) * blockFloats + biasStride)));
                    try
                    {
                        fixed (float* scratch = buffer)
                        {
                            float* dw1 = (float*)partP + part * partFloats, dw2T = dw1 + w1Floats;
                            int first = FirstBlock(part, parts, blocks), end = FirstBlock(part + 1, parts, blocks);
                            if (first == end)
                                new Span<float>(dw1, (int)partFloats).Clear();
                            for (int blk = first; blk < end; blk++)
                                BackwardBlock(a, w, g, part, blk * rb, Math.Min(rb, a.Rows - blk * rb), blk == first,
                                    scratch, scratch + blockFloats, scratch + 2 * blockFloats, dw1, dw2T,
                                    biasSums.AsSpan(part * biasStride, biasStride));
                        }
                    }
                    finally
                    {
                        ArrayPool<float>.Shared.Return(buffer);
                    }
                    MlpPhaseClock.TaskEnd(ends, part);
                });
                MlpPhaseClock.Joined(ends);
                t = MlpPhaseClock.Start();
                Reduce(a, g, partials, parts, partFloats, w1Floats, biasSums);
                MlpPhaseClock.Lap(0, MlpPhase.Reduce, ref t);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(partialArray);
        }
    }

    // One block of rows [r0, r0 + n): dx written, dw1 / dw2T overwritten on a task's first block and added to after,
    // the block's column sums of dpre and dy added to the task's double sums. colSums is Hidden + Out floats, placed
    // after preScratch when the block's pre is recomputed (else it is preScratch).
    private static void BackwardBlock(Args a, Weights w, Grads g, int part, int r0, int n, bool firstBlock,
        float* act, float* dpre, float* preScratch, float* dw1, float* dw2T, Span<double> sums)
    {
        int h = a.Hidden;
        float beta = firstBlock ? 0f : 1f;
        float* x = a.X + (long)r0 * a.In, dy = g.Dy + (long)r0 * a.Out;
        float* pre = a.Pre == null ? preScratch : a.Pre + (long)r0 * h;
        float* colSums = a.Pre == null ? preScratch + (long)n * h : preScratch;
        bool joint = UsesGeluJoint(a);
        long t = MlpPhaseClock.Start();
        if (a.Pre == null)
        {
            Fc1(a, w, r0, n, pre, act);
            MlpPhaseClock.Lap(part, MlpPhase.Fc1, ref t);
        }
        else if (!joint)
        {
            CpuGelu.Forward(new ReadOnlySpan<float>(pre, n * h), new Span<float>(act, n * h));
            MlpPhaseClock.Lap(part, MlpPhase.GeluRecompute, ref t);
        }

        var dyS = new ReadOnlySpan<float>(dy, n * a.Out);
        var xS = new ReadOnlySpan<float>(x, n * a.In);
        var actS = new ReadOnlySpan<float>(act, n * h);
        var dpreS = new Span<float>(dpre, n * h);
        // dact = dy w2, then dpre = dact GELU'(pre) with db1's column sum in the same pass over each row.
        CpuGemm.SgemmPackedB(n, w.W2!, 1f, dy, a.Out, 0f, dpre, h);
        MlpPhaseClock.Lap(part, MlpPhase.Dact, ref t);
        var sum1 = new Span<float>(colSums, h);
        sum1.Clear();
        var sum2 = new Span<float>(colSums + h, a.Out);
        sum2.Clear();
        if (CpuRowOps.Legacy)
        {
            for (int i = 0; i < n; i++)
                CpuGelu.BackwardAccumulate(new ReadOnlySpan<float>(pre + (long)i * h, h), dpreS.Slice(i * h, h), sum1);
            MlpPhaseClock.Lap(part, MlpPhase.GeluGrad, ref t);
            for (int i = 0; i < n; i++) TensorPrimitives.Add(sum2, dyS.Slice(i * a.Out, a.Out), sum2);
        }
        else
        {
            // GELU' over the whole block in one call (its tables loaded once, one masked tail), then the column
            // sums in registers: the same products and sums as the per-row form, without its per-row call costs.
            // Joint: act from the same pass (Dw2, its first reader, comes after).
            if (joint)
                CpuGelu.ActivationAndGradient(new ReadOnlySpan<float>(pre, n * h), new Span<float>(act, n * h), dpreS);
            else CpuGelu.Backward(new ReadOnlySpan<float>(pre, n * h), dpreS, dpreS);
            MlpPhaseClock.Lap(part, MlpPhase.GeluGrad, ref t);
            CpuRowOps.AccumulateColumns(dpre, h, n, h, colSums);
            CpuRowOps.AccumulateColumns(dy, a.Out, n, a.Out, colSums + h);
        }
        for (int j = 0; j < h; j++) sums[j] += sum1[j];
        for (int j = 0; j < a.Out; j++) sums[h + j] += sum2[j];
        MlpPhaseClock.Lap(part, MlpPhase.ColumnSums, ref t);

        CpuGemm.Sgemm(true, false, h, a.Out, n, 1f, actS, h, dyS, a.Out, beta, new Span<float>(dw2T, h * a.Out), a.Out, 1);
        MlpPhaseClock.Lap(part, MlpPhase.Dw2, ref t);
        CpuGemm.Sgemm(true, false, h, a.In, n, 1f, dpreS, h, xS, a.In, beta, new Span<float>(dw1, h * a.In), a.In, 1);
        MlpPhaseClock.Lap(part, MlpPhase.Dw1, ref t);
        CpuGemm.SgemmPackedB(n, w.W1!, 1f, dpre, h, 0f, g.Dx + (long)r0 * a.In, a.In);
        MlpPhaseClock.Lap(part, MlpPhase.Dx, ref t);
    }

    // pre = x w1^T + b1 and act = GELU(pre) for the block of rows [r0, r0 + n) (bias and GELU in the epilogue).
    private static void Fc1(Args a, Weights w, int r0, int n, float* pre, float* act) =>
        CpuGemm.SgemmPackedB(n, w.W1T!, 1f, a.X + (long)r0 * a.In, a.In, 0f, pre, a.Hidden,
            new BiasGeluEpilogue(a.B1, act));

    // The per-task sums added in task order (the same order for the same thread count); dw2 transposed back.
    private static void Reduce(Args a, Grads g, float* partials, int parts, long partFloats, long w1Floats,
        double[] biasSums)
    {
        var dw1 = new Span<float>(g.Dw1, (int)w1Floats);
        new ReadOnlySpan<float>(partials, (int)w1Floats).CopyTo(dw1);
        for (int p = 1; p < parts; p++)
            TensorPrimitives.Add(dw1, new ReadOnlySpan<float>(partials + p * partFloats, (int)w1Floats), dw1);
        if (ReduceTransposed)
        {
            // dw2^T summed in place in task 0's buffer (the same additions in the same order as element by element),
            // then transposed through 8 x 8 register blocks: the scalar loop's strided stores were most of Reduce's
            // time at hidden 496 (a tenth of slak_nano's stage-3 backward).
            var dw2T = new Span<float>(partials + w1Floats, a.Hidden * a.Out);
            for (int p = 1; p < parts; p++)
                TensorPrimitives.Add(dw2T, new ReadOnlySpan<float>(partials + p * partFloats + w1Floats, dw2T.Length),
                    dw2T);
            CpuGemm.TransposeInto(partials + w1Floats, a.Out, a.Hidden, g.Dw2, a.Hidden);
        }
        else
            for (int h = 0; h < a.Hidden; h++)
                for (int o = 0; o < a.Out; o++)
                {
                    long at = w1Floats + (long)h * a.Out + o;
                    float s = partials[at];
                    for (int p = 1; p < parts; p++) s += partials[p * partFloats + at];
                    g.Dw2[(long)o * a.Hidden + h] = s;
                }
        int stride = a.Hidden + a.Out;
        for (int j = 0; j < stride; j++)
        {
            double s = 0;
            for (int p = 0; p < parts; p++) s += biasSums[p * stride + j];
            if (j < a.Hidden) g.Db1[j] = (float)s;
            else g.Db2[j - a.Hidden] = (float)s;
        }
    }

    // The first block of a task: tasks take contiguous, near-equal ranges of blocks.
    private static int FirstBlock(int part, int parts, int blocks) => (int)((long)blocks * part / parts);
}
