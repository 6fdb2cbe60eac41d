// The block MLP as one CPU operator over blocks of rows (CpuMlp.cs, IBackend.Mlp.cs): the forward and all five
// gradients against a float64 reference written here and against the per-GEMM composition it replaced
// (MlpComposed on the same backend), at slak_nano's and slak_nano64's stage widths with the batch scaled down, and on
// odd shapes (rows not a multiple of the block, C = 31, one row, many small blocks); with the pre-activation kept and
// recomputed; the same bits from run to run at 1, 2 and 3 threads; gradients against central differences of the
// float64 reference through F.LinearGeluLinear with the recomputing backward. Outputs are NaN-poisoned before every
// call.
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cpu;
using Slak.Tests.Support;
using static Slak.Tests.Support.CpuTensors;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuParallel.Threads, CpuMlp's switches, F.MlpRecompute and CpuRowOps.Legacy
public class CpuMlpTests
{
    private TestRandom _rng = null!;
    private int _threads, _blockFloats, _minBackwardRows;

    [SetUp]
    public void SetUp()
    {
        _rng = TestRandom.ForCurrentTest();
        _threads = CpuParallel.Threads;
        _blockFloats = CpuMlp.HiddenBlockFloats;
        _minBackwardRows = CpuMlp.MinBackwardBlockRows;
    }

    [TearDown]
    public void TearDown()
    {
        CpuParallel.Threads = _threads;
        CpuMlp.HiddenBlockFloats = _blockFloats;
        CpuMlp.MinBackwardBlockRows = _minBackwardRows;
        F.MlpRecompute = false;
        CpuRowOps.Legacy = false;
        CpuMlp.SplitHiddenForward = true;
        CpuMlp.SplitHiddenBackward = true;
        CpuMlp.ReduceTransposed = true;
        CpuMlp.GeluJoint = true;
    }

    private sealed record Inputs(int Rows, int In, int Hidden, int Out, float[] X, float[] W1, float[] B1, float[] W2,
        float[] B2, float[] Dy);

    private Inputs Make(int rows, int inF, int hidden, int outF) => new(rows, inF, hidden, outF,
        _rng.NormalArray((long)rows * inF), _rng.NormalArray((long)hidden * inF, 1 / Math.Sqrt(inF)),
        _rng.NormalArray(hidden, 0.5), _rng.NormalArray((long)outF * hidden, 1 / Math.Sqrt(hidden)),
        _rng.NormalArray(outF, 0.5), _rng.NormalArray((long)rows * outF));

    private static readonly string[] Names = ["y", "pre", "dx", "dw1", "db1", "dw2", "db2"];

    // y, pre (empty when not kept), dx, dw1, db1, dw2, db2 of one forward and backward on the CPU backend, through
    // its one-operator MLP or through the composition of its fused GEMMs.
    private static float[][] Run(Inputs a, bool composed, bool keepPre)
    {
        IBackend be = CpuBackend.Instance;
        var x = CpuCopy(a.X, a.Rows, a.In);
        var w1 = CpuCopy(a.W1, a.Hidden, a.In);
        var b1 = CpuCopy(a.B1, a.Hidden);
        var w2 = CpuCopy(a.W2, a.Out, a.Hidden);
        var b2 = CpuCopy(a.B2, a.Out);
        var y = Nan(a.Rows, a.Out);
        var pre = keepPre ? Nan(a.Rows, a.Hidden) : null;
        var dx = Nan(a.Rows, a.In);
        var dw1 = Nan(a.Hidden, a.In);
        var db1 = Nan(a.Hidden);
        var dw2 = Nan(a.Out, a.Hidden);
        var db2 = Nan(a.Out);
        var dy = CpuCopy(a.Dy, a.Rows, a.Out);
        if (composed)
        {
            MlpComposed.Forward(be, x, w1, b1, w2, b2, pre, y);
            MlpComposed.Backward(be, dy, x, w1, b1, w2, pre, dx, dw1, db1, dw2, db2);
        }
        else
        {
            be.MlpForward(x, w1, b1, w2, b2, pre, y);
            be.MlpBackward(dy, x, w1, b1, w2, pre, dx, dw1, db1, dw2, db2);
        }
        return [y.ToArray(), pre?.ToArray() ?? [], dx.ToArray(), dw1.ToArray(), db1.ToArray(), dw2.ToArray(), db2.ToArray()];
    }

    // The same seven results in float64: pre = x w1^T + b1, act = GELU(pre), y = act w2^T + b2; dact = dy w2,
    // dpre = dact GELU'(pre), dx = dpre w1, dw1 = dpre^T x, db1 = sum dpre, dw2 = dy^T act, db2 = sum dy.
    private static double[][] Reference64(Inputs a)
    {
        int n = a.Rows, c = a.In, h = a.Hidden, o = a.Out;
        var pre = new double[(long)n * h];
        var act = new double[pre.Length];
        var dpre = new double[pre.Length];
        var y = new double[(long)n * o];
        var dx = new double[(long)n * c];
        var dw1 = new double[(long)h * c];
        var db1 = new double[h];
        var dw2 = new double[(long)o * h];
        var db2 = new double[o];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < h; j++)
            {
                double s = a.B1[j];
                for (int k = 0; k < c; k++) s += (double)a.X[(long)i * c + k] * a.W1[(long)j * c + k];
                pre[(long)i * h + j] = s;
                act[(long)i * h + j] = Reference.Gelu(s);
            }
            for (int j = 0; j < o; j++)
            {
                double s = a.B2[j];
                for (int k = 0; k < h; k++) s += act[(long)i * h + k] * a.W2[(long)j * h + k];
                y[(long)i * o + j] = s;
                db2[j] += a.Dy[(long)i * o + j];
            }
            for (int k = 0; k < h; k++)
            {
                double s = 0;
                for (int j = 0; j < o; j++) s += (double)a.Dy[(long)i * o + j] * a.W2[(long)j * h + k];
                double d = s * GeluDerivative(pre[(long)i * h + k]);
                dpre[(long)i * h + k] = d;
                db1[k] += d;
                for (int j = 0; j < o; j++) dw2[(long)j * h + k] += a.Dy[(long)i * o + j] * act[(long)i * h + k];
                for (int q = 0; q < c; q++)
                {
                    dx[(long)i * c + q] += d * a.W1[(long)k * c + q];
                    dw1[(long)k * c + q] += d * a.X[(long)i * c + q];
                }
            }
        }
        return [y, pre, dx, dw1, db1, dw2, db2];
    }

    // GELU'(x) = Phi(x) + x phi(x).
    private static double GeluDerivative(double x) =>
        0.5 * (1 + Reference.Erf(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);

    private static void ExpectClose(float[][] actual, double[][] expected, double tol, string context)
    {
        for (int i = 0; i < Names.Length; i++)
        {
            if (actual[i].Length == 0) continue; // pre not kept
            double scale = expected[i].Max(Math.Abs);
            Expect.AllClose(actual[i], expected[i], tol * Math.Max(1, scale), tol, $"{Names[i]}: {context}");
        }
    }

    private static double[][] Widen(float[][] r) => r.Select(v => v.Select(f => (double)f).ToArray()).ToArray();

    // Rows, in, hidden, out: slak_nano's stages at batch 2 (8x8, 4x4, 2x2, 1x1 maps), slak_nano64's first two at
    // batch 2 (16x16, 8x8), then rows that are not a multiple of the block, one row, and widths off the vector lanes.
    // Every shape both with the backend's choice of backward (the composition where blocks would be short) and with
    // the row-block backward forced (CpuMlp.MinBackwardBlockRows = 0).
    [TestCase(128, 31, 124, 31)]
    [TestCase(32, 62, 248, 62)]
    [TestCase(8, 124, 496, 124)]
    [TestCase(2, 249, 996, 249)]
    [TestCase(512, 31, 124, 31)]
    [TestCase(128, 62, 248, 62)]
    [TestCase(1109, 31, 124, 31)]
    [TestCase(1, 31, 124, 31)]
    [TestCase(37, 5, 13, 3)]
    public void MatchesFloat64AndTheComposition(int rows, int inF, int hidden, int outF)
    {
        var a = Make(rows, inF, hidden, outF);
        var reference = Reference64(a);
        foreach (int threads in new[] { 1, 2 })
        {
            CpuParallel.Threads = threads;
            var composed = Run(a, composed: true, keepPre: true);
            foreach (int minRows in new[] { _minBackwardRows, 0 })
            foreach (bool keepPre in new[] { true, false })
            {
                CpuMlp.MinBackwardBlockRows = minRows;
                string ctx = $"({rows} x {inF} -> {hidden} -> {outF}), {threads} threads, pre {(keepPre ? "kept" : "recomputed")}, " +
                    $"row-block backward from {minRows} rows per block";
                var fused = Run(a, composed: false, keepPre);
                ExpectClose(fused, reference, 2e-5, $"row blocks vs float64, {ctx}");
                ExpectClose(fused, Widen(composed), 2e-5, $"row blocks vs the composed GEMMs, {ctx}");
            }
        }
    }

    // Many small blocks (16 rows each, a ragged last one), several per thread, at 1, 2 and 3 threads: close to
    // float64, and the same bits on a second run at each thread count.
    [Test]
    public void ManySmallBlocksAreCorrectAndRepeatBitForBit()
    {
        CpuMlp.HiddenBlockFloats = 16 * 124;
        CpuMlp.MinBackwardBlockRows = 0;
        var a = Make(16 * 23 + 5, 31, 124, 31);
        var reference = Reference64(a);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            CpuParallel.Threads = threads;
            foreach (bool keepPre in new[] { true, false })
            {
                string ctx = $"{a.Rows} rows in blocks of 16, {threads} threads, pre {(keepPre ? "kept" : "recomputed")}";
                var first = Run(a, composed: false, keepPre);
                ExpectClose(first, reference, 2e-5, ctx);
                var second = Run(a, composed: false, keepPre);
                for (int i = 0; i < Names.Length; i++)
                    Expect.Exactly(second[i], first[i], $"{Names[i]}: second run, {ctx}");
            }
        }
    }

    // The balanced blocks and register row loops (the default) against the blocks and per-row loops before them
    // (CpuRowOps.Legacy, SLAK_MLP_LEGACY=1): both close to float64 and to each other at 1, 2 and 3 threads, and the
    // default the same bits on a second run. Shapes: slak_nano's first stage at batch 4 (blocks of the cache target,
    // 512 rows each where the legacy blocks were 528 and a ragged one), rows that split into blocks of different
    // sizes (1109 rows; small blocks of 16 x 124 floats), C = 31 against 5 / 13 / 3 widths, and one row.
    [TestCase(512, 31, 124, 31, 1 << 16)]
    [TestCase(1109, 31, 124, 31, 1 << 16)]
    [TestCase(1109, 62, 248, 62, 16 * 248)]
    [TestCase(301, 5, 13, 3, 16 * 13)]
    [TestCase(1, 31, 124, 31, 1 << 16)]
    public void BalancedBlocksMatchTheLegacyPathAndRepeatBitForBit(int rows, int inF, int hidden, int outF, int blockFloats)
    {
        CpuMlp.HiddenBlockFloats = blockFloats;
        CpuMlp.MinBackwardBlockRows = 0;
        var a = Make(rows, inF, hidden, outF);
        var reference = Reference64(a);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            CpuParallel.Threads = threads;
            foreach (bool keepPre in new[] { true, false })
            {
                string ctx = $"({rows} x {inF} -> {hidden} -> {outF}), {blockFloats} hidden floats per block, " +
                    $"{threads} threads, pre {(keepPre ? "kept" : "recomputed")}";
                CpuRowOps.Legacy = true;
                var legacy = Run(a, composed: false, keepPre);
                CpuRowOps.Legacy = false;
                var first = Run(a, composed: false, keepPre);
                ExpectClose(first, reference, 2e-5, $"default vs float64, {ctx}");
                ExpectClose(legacy, reference, 2e-5, $"legacy vs float64, {ctx}");
                ExpectClose(first, Widen(legacy), 2e-5, $"default vs legacy, {ctx}");
                var second = Run(a, composed: false, keepPre);
                for (int i = 0; i < Names.Length; i++)
                    Expect.Exactly(second[i], first[i], $"{Names[i]}: second run, {ctx}");
            }
        }
    }

    // Split over the hidden units (CpuMlp.SplitHidden.cs; forced on every shape at 2 and 3 threads with
    // MinBackwardBlockRows = int.MaxValue, where the old path is the row-block forward and the composed backward)
    // against float64 and against the old path (SplitHiddenForward / SplitHiddenBackward = false) at 1, 2 and 3
    // threads (1 thread runs the old path either way), pre kept and recomputed, and the same bits on a second run.
    // Shapes: slak_nano's last stage at batch 128 (its default path), the last stage at batch 5, slak_nano's stage 3
    // at batch 2, C = 31 with several row blocks per slice (blockFloats 16 x 124), and 5 / 13 / 3 (slices of 4-5
    // hidden units).
    [TestCase(128, 249, 996, 249, 1 << 16)]
    [TestCase(5, 249, 996, 249, 1 << 16)]
    [TestCase(8, 124, 496, 124, 1 << 16)]
    [TestCase(301, 31, 124, 31, 16 * 124)]
    [TestCase(37, 5, 13, 3, 16 * 13)]
    public void SplitHiddenMatchesFloat64AndTheOldPathAndRepeatsBitForBit(int rows, int inF, int hidden, int outF,
        int blockFloats)
    {
        CpuMlp.HiddenBlockFloats = blockFloats;
        CpuMlp.MinBackwardBlockRows = int.MaxValue;
        var a = Make(rows, inF, hidden, outF);
        var reference = Reference64(a);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            CpuParallel.Threads = threads;
            foreach (bool keepPre in new[] { true, false })
            {
                string ctx = $"({rows} x {inF} -> {hidden} -> {outF}), {blockFloats} hidden floats per block, " +
                    $"{threads} threads, pre {(keepPre ? "kept" : "recomputed")}, seed {_rng.Seed}";
                CpuMlp.SplitHiddenForward = CpuMlp.SplitHiddenBackward = false;
                var old = Run(a, composed: false, keepPre);
                CpuMlp.SplitHiddenForward = CpuMlp.SplitHiddenBackward = true;
                var first = Run(a, composed: false, keepPre);
                ExpectClose(first, reference, 2e-5, $"split hidden vs float64, {ctx}");
                ExpectClose(old, reference, 2e-5, $"old path vs float64, {ctx}");
                ExpectClose(first, Widen(old), 2e-5, $"split hidden vs the old path, {ctx}");
                var second = Run(a, composed: false, keepPre);
                for (int i = 0; i < Names.Length; i++)
                    Expect.Exactly(second[i], first[i], $"{Names[i]}: second run, {ctx}");
            }
        }
    }

    // The row-block backward's dw2 reduction as vectors and 8 x 8 transposes (CpuMlp.ReduceTransposed, the default)
    // against the element-by-element loop before it: the same bits at 1, 2 and 3 threads (one to three per-task
    // buffers), on widths off the 8 x 8 blocks (124 x 31, 13 x 3) and on them (248 x 62 has ragged 62).
    [TestCase(1109, 31, 124, 31, 16 * 124)]
    [TestCase(1109, 62, 248, 62, 16 * 248)]
    [TestCase(301, 5, 13, 3, 16 * 13)]
    public void TransposedReduceGivesTheSameBits(int rows, int inF, int hidden, int outF, int blockFloats)
    {
        CpuMlp.HiddenBlockFloats = blockFloats;
        CpuMlp.MinBackwardBlockRows = 0;
        var a = Make(rows, inF, hidden, outF);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            CpuParallel.Threads = threads;
            string ctx = $"({rows} x {inF} -> {hidden} -> {outF}), {threads} threads, seed {_rng.Seed}";
            CpuMlp.ReduceTransposed = false;
            var old = Run(a, composed: false, keepPre: true);
            CpuMlp.ReduceTransposed = true;
            var now = Run(a, composed: false, keepPre: true);
            for (int i = 0; i < Names.Length; i++)
                Expect.Exactly(now[i], old[i], $"{Names[i]}: transposed reduce vs element by element, {ctx}");
        }
    }

    // The backward's act and GELU' in one pass after the dact product (CpuMlp.GeluJoint, the default) against the two
    // passes before it (SLAK_MLP_GELU_JOINT=0) and float64 at 1, 2 and 3 threads, pre kept (the joint pass's case;
    // recomputed, both variants must give the same bits): the forward and act's products (y, pre, dw2, db2) the same
    // bits either way, the rest close; the same bits on a second run. Shapes: every stage width of the nano presets
    // (C = 31, 62, 124, 249; the last on the hidden split at 2 and 3 threads), rows off the blocks, several blocks
    // per task, and 5 / 13 / 3 (hidden rows shorter than a vector).
    [TestCase(1109, 31, 124, 31, 16 * 124, 0)]
    [TestCase(301, 62, 248, 62, 16 * 248, 0)]
    [TestCase(67, 124, 496, 124, 1 << 16, 0)]
    [TestCase(21, 249, 996, 249, 1 << 16, 128)]
    [TestCase(301, 5, 13, 3, 16 * 13, 0)]
    public void JointGeluPassMatchesFloat64AndTheTwoPassesAndRepeatsBitForBit(int rows, int inF, int hidden, int outF,
        int blockFloats, int minBackwardRows)
    {
        CpuMlp.HiddenBlockFloats = blockFloats;
        CpuMlp.MinBackwardBlockRows = minBackwardRows;
        var a = Make(rows, inF, hidden, outF);
        var reference = Reference64(a);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            CpuParallel.Threads = threads;
            foreach (bool keepPre in new[] { true, false })
            {
                string ctx = _rng.Ctx($"({rows} x {inF} -> {hidden} -> {outF}), {threads} threads, " +
                    $"pre {(keepPre ? "kept" : "recomputed")}");
                CpuMlp.GeluJoint = false;
                var old = Run(a, composed: false, keepPre);
                CpuMlp.GeluJoint = true;
                var first = Run(a, composed: false, keepPre);
                ExpectClose(first, reference, 2e-5, $"joint pass vs float64, {ctx}");
                ExpectClose(first, Widen(old), 2e-5, $"joint pass vs two passes, {ctx}");
                var sameBits = keepPre && CpuGelu.Vectorized ? new[] { 0, 1, 5, 6 } : Enumerable.Range(0, Names.Length);
                foreach (int i in sameBits)
                    Expect.Exactly(first[i], old[i], $"{Names[i]}: joint pass vs two passes, {ctx}");
                var second = Run(a, composed: false, keepPre);
                for (int i = 0; i < Names.Length; i++)
                    Expect.Exactly(second[i], first[i], $"{Names[i]}: second run, {ctx}");
            }
        }
    }

    // The per-call phase clock (MlpPhaseClock.ByShape, bench mlp-in-step) on the row-block form (several blocks per
    // task) and the hidden-split form (slak_nano's last stage at batch 2): the same bits with the clock on as off, one
    // entry per call under its shape, and for every timed task its steps, its start after the fork and its wait at
    // the join (with the packing before and the reduction after the tasks on task 0's row) within the call's wall.
    [TestCase(1109, 31, 124, 31, 16 * 124, 0)]
    [TestCase(2, 249, 996, 249, 1 << 16, 128)]
    public void PerCallPhaseClockChangesNoBitsAndStaysWithinTheWall(int rows, int inF, int hidden, int outF,
        int blockFloats, int minBackwardRows)
    {
        CpuMlp.HiddenBlockFloats = blockFloats;
        CpuMlp.MinBackwardBlockRows = minBackwardRows;
        var a = Make(rows, inF, hidden, outF);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            CpuParallel.Threads = threads;
            string ctx = $"({rows} x {inF} -> {hidden} -> {outF}), {threads} threads, seed {_rng.Seed}";
            var off = Run(a, composed: false, keepPre: true);
            var byShape = new Dictionary<(bool Backward, int Rows, int In), List<long[]>>();
            MlpPhaseClock.ByShape = byShape;
            float[][] on;
            try
            {
                on = Run(a, composed: false, keepPre: true);
            }
            finally
            {
                MlpPhaseClock.ByShape = null;
                MlpPhaseClock.Ticks = null;
            }
            for (int i = 0; i < Names.Length; i++)
                Expect.Exactly(on[i], off[i], $"{Names[i]}: clock on vs off, {ctx}");
            // The backward runs the composition, which has no clock, where CpuMlp would have short row blocks.
            bool clockedBackward = CpuMlp.UsesSplitHidden(rows, hidden, threads) ||
                CpuMlp.BlockRows(rows, hidden, threads) >= CpuMlp.MinBackwardBlockRows;
            var shapes = clockedBackward
                ? new[] { (false, rows, inF), (true, rows, inF) }
                : new[] { (false, rows, inF) };
            Assert.That(byShape.Keys, Is.EquivalentTo(shapes), ctx);
            foreach (var (key, calls) in byShape)
            {
                Assert.That(calls, Has.Count.EqualTo(1), $"{key}: {ctx}");
                long[] ticks = calls[0];
                long wall = ticks[^1];
                Assert.That(wall, Is.GreaterThan(0), $"{key} wall: {ctx}");
                for (int task = 0; task < Math.Min(threads, MlpPhaseClock.ShapeTasks); task++)
                {
                    long sum = 0;
                    for (int p = 0; p < MlpPhaseClock.Count; p++)
                    {
                        Assert.That(ticks[task * MlpPhaseClock.Count + p], Is.GreaterThanOrEqualTo(0),
                            $"{key} task {task} {(MlpPhase)p}: {ctx}");
                        sum += ticks[task * MlpPhaseClock.Count + p];
                    }
                    Assert.That(sum, Is.GreaterThan(0).And.LessThanOrEqualTo(wall), $"{key} task {task}: {ctx}");
                }
            }
        }
    }

    // Through F.LinearGeluLinear, with the backward that recomputes the first product (the default keeps pre, which
    // LinearGeluLinearOpTests checks the same way): gradients against central differences of the float64 reference.
    [TestCase(1)]
    [TestCase(2)]
    public void RecomputingBackwardMatchesFiniteDifferences(int threads)
    {
        CpuParallel.Threads = threads;
        F.MlpRecompute = true;
        CpuMlp.HiddenBlockFloats = 16 * 9;
        CpuMlp.MinBackwardBlockRows = 0;
        int rows = 37, inF = 5, hidden = 9, outF = 4;
        GradInput[] inputs =
        [
            new("x", _rng.NormalArray(rows * inF), [rows, inF]),
            new("weight1", _rng.NormalArray(hidden * inF, 1 / Math.Sqrt(inF)), [hidden, inF]),
            new("bias1", _rng.NormalArray(hidden, 0.5), [hidden]),
            new("weight2", _rng.NormalArray(outF * hidden, 1 / Math.Sqrt(hidden)), [outF, hidden]),
            new("bias2", _rng.NormalArray(outF), [outF]),
        ];
        GradCheck.Check(Device.Cpu, _rng, $"LinearGeluLinear, recomputed pre, {threads} threads", inputs,
            t => F.LinearGeluLinear(t[0], t[1], t[2], t[3], t[4]),
            r => Reference.Linear(Reference.Gelu(Reference.Linear(r[0], r[1], r[2])), r[3], r[4]));
    }
}
