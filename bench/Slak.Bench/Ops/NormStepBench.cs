// The CPU norm passes of a training step (issue 27), old against new in one process: BatchNorm2d training forward and
// backward on every stage of slak_nano (8x8 .. 1x1 maps) and slak_nano64 (16x16 .. 2x2) at batch 128, six calls per
// stage as in a step (two blocks, one BatchNorm after each of the three depthwise branches), each call on its own
// tensors; the channels-first LayerNorm forward and backward on the stem / downsampling shapes; the block's LayerNorm
// fused with its NCHW -> NHWC permute, forward and backward, two calls per stage. 'old' and 'new' are selected by the
// backend's internal switches (BatchNormChannelParts with BatchNormColumnEdgeBlocks, LayerNormChannelsFirstFlatBelow
// for the channels-first backward, LayerNormLayoutPixelLanes for the channels-first forward, and for the fused
// LayerNorm + permute: forward LayerNormLayoutPixelLanes, old = the row path, new = pixels in the SIMD lanes on maps of
// at least one vector of pixels; backward LayerNormLayoutVectorTails with LayerNormLayoutTileSums, old = rows finished
// channel by channel, new = finished with the last whole vector); rounds are interleaved (alternating which side goes
// first) and the best of N rounds is kept (the least disturbed by other processes). Byte counts: every pass's reads and
// writes of batch-sized tensors (BatchNorm forward: x twice, y once; backward: dy and x twice, dx once), and, beside
// them, train-vs-torch's lower bound (2 x the input); rates are read against the cache bandwidth (256 KiB per thread)
// measured in the same run.
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll norm-step [--reps N] [--out FILE] [--note TEXT]
using System.Globalization;
using System.Text;
using Slak.Backends.Cpu;
using Slak.Bench.Train;

namespace Slak.Bench.Ops;

internal static class NormStepBench
{
    private const int Batch = 128;
    private const int CallsPerStage = 6;
    private static readonly int[] Widths = [31, 62, 124, 249];

    [BenchProgram("norm-step", "BatchNorm2d train fwd/bwd, channels-first LayerNorm bwd, fused LayerNorm + permute fwd/bwd, old vs new, slak_nano/slak_nano64 step shapes, with the cache bandwidth [--reps N] [--out FILE] [--note TEXT]")]
    private static int Run(string[] args)
    {
        if (ReportArgs.Parse(args, defaultReps: 30) is not { } opts) return 2;
        int reps = opts.Reps;
        string? outFile = opts.Out, note = opts.Note;
        var o = new Report();
        int threads = CpuParallel.Threads;
        string start = Inv($"{DateTime.UtcNow:u}; commit {RunInfo.Commit()}; {RunInfo.CpuModel()}, {Environment.ProcessorCount} cores; {threads} threads");
        string loadStart = RunInfo.LoadAverage();
        var peak = FmaPeak.MeasureForRun(threads);
        // On a loaded machine the threads of a burst rarely run together: take the larger of the all-thread burst and
        // the one-thread rate times the threads (both best of 200), as norm-ab does.
        double together = MemoryBandwidth.Read(threads, 256 << 10, 200);
        double single = MemoryBandwidth.Read(1, 256 << 10, 200);
        double cacheBw = Math.Max(together, single * threads);
        o.Line("# norm-step: the CPU norm passes of a training step, old vs new");
        o.Line();
        o.Line(Inv($"Program: `norm-step --reps {reps}` (bench/Slak.Bench/Ops/NormStepBench.cs); {start}; load average at start {loadStart}."));
        if (note is not null) o.Line(note);
        o.Line(FmaPeak.HeaderLine(peak));
        o.Line(Inv($"Cache read bandwidth measured in this run (256 KiB per thread, best of 200 bursts): {threads} threads together {together:F1} GB/s, 1 thread {single:F1} GB/s; the fractions below use {cacheBw:F1} GB/s."));
        o.Line();
        o.Line(Inv($"Best of {reps} interleaved rounds; a round times the {CallsPerStage} calls of a stage (each on its own tensors) back to back. ms/call = round / {CallsPerStage}; ms/step = the sum over the stages of {CallsPerStage} calls (BatchNorm) or the calls of the step (LayerNorm)."));
        o.Line("Bytes: 'passes' = every pass's reads and writes of batch-sized tensors; '2x in' = train-vs-torch's lower bound.");
        o.Line();
        o.Line("| preset | pass | shape | old ms/call | new ms/call | new / old | MB/call (passes) | old % of cache bw | new % of cache bw | new % (2x in) |");
        o.Line("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
        // A first round over every shape, not printed: the tiered JIT replaces first-tier code while it runs (the
        // first shapes measured without it ran up to 2.5x slower than later, larger ones).
        Table(Math.Max(1, reps / 3), _ => { }, cacheBw);
        var steps = Table(reps, o.Line, cacheBw);
        o.Line();
        o.Line("Per step (the kernels alone, back to back; the step's own figures in train-vs-torch.md include what the data's journey through the rest of the step costs):");
        o.Line();
        o.Line("| preset | pass | calls/step | old ms/step | new ms/step | new / old |");
        o.Line("|---|---|---:|---:|---:|---:|");
        foreach (var s in steps) o.Line(s);
        o.Line();
        o.Line(Inv($"Load average at end {RunInfo.LoadAverage()}; {DateTime.UtcNow:u}."));
        if (outFile is not null) File.WriteAllText(outFile, o.ToString());
        return 0;
    }

    /// <summary>The per-shape rows (through <paramref name="line"/>) and the per-step rows (returned).</summary>
    private static List<string> Table(int reps, Action<string> line, double cacheBw)
    {
        var steps = new List<string>();
        foreach (var (preset, sides) in new[] { ("slak_nano", new[] { 8, 4, 2, 1 }), ("slak_nano64", new[] { 16, 8, 4, 2 }) })
        {
            double fOld = 0, fNew = 0, bOld = 0, bNew = 0;
            for (int s = 0; s < 4; s++)
            {
                var (fwd, bwd) = BatchNormStage(Widths[s], sides[s], reps);
                long numel = (long)Batch * Widths[s] * sides[s] * sides[s];
                string sh = Inv($"({Batch}, {Widths[s]}, {sides[s]}, {sides[s]})");
                Row(line, preset, "BatchNormTrain", sh, fwd, 3.0 * numel * 4, 2.0 * numel * 4, cacheBw);
                Row(line, preset, "BatchNormBackward", sh, bwd, 5.0 * numel * 4, 2.0 * numel * 4, cacheBw);
                fOld += CallsPerStage * fwd.Old; fNew += CallsPerStage * fwd.New;
                bOld += CallsPerStage * bwd.Old; bNew += CallsPerStage * bwd.New;
            }
            steps.Add(Inv($"| {preset} | BatchNormTrain | {4 * CallsPerStage} | {fOld:F3} | {fNew:F3} | {fNew / fOld:F2} |"));
            steps.Add(Inv($"| {preset} | BatchNormBackward | {4 * CallsPerStage} | {bOld:F3} | {bNew:F3} | {bNew / bOld:F2} |"));
        }
        // The channels-first LayerNorms: the stem's and the first downsampling layer's on stage 1's map, then one
        // before each of the other two downsamplings.
        foreach (var (preset, sides) in new[] { ("slak_nano", new[] { 8, 4, 2 }), ("slak_nano64", new[] { 16, 8, 4 }) })
        {
            double lOld = 0, lNew = 0, fOld = 0, fNew = 0;
            for (int s = 0; s < 3; s++)
            {
                int calls = s == 0 ? 2 : 1, hw = sides[s] * sides[s];
                var (fwd, (old, flat)) = LayerNormStage(Widths[s], sides[s], calls, reps);
                bool flatByDefault = hw < CpuBackend.LayerNormChannelsFirstFlatBelow;
                long numel = (long)Batch * Widths[s] * hw;
                string sh = Inv($"({Batch}, {Widths[s]}, {sides[s]}, {sides[s]})");
                string pass = flatByDefault ? "LayerNormChannelsFirstBackward" : "LayerNormChannelsFirstBackward (flat forced; not the default here)";
                // Forward: x read, y written (the lower bound in both byte columns).
                Row(line, preset, "LayerNormChannelsFirst", sh, fwd, 2.0 * numel * 4, 2.0 * numel * 4, cacheBw);
                Row(line, preset, pass, sh, (old, flat), 5.0 * numel * 4, 2.0 * numel * 4, cacheBw);
                fOld += calls * fwd.Old; fNew += calls * fwd.New;
                lOld += calls * old;
                lNew += calls * (flatByDefault ? flat : old);
            }
            steps.Add(Inv($"| {preset} | LayerNormChannelsFirst | 4 | {fOld:F3} | {fNew:F3} | {fNew / fOld:F2} |"));
            steps.Add(Inv($"| {preset} | LayerNormChannelsFirstBackward | 4 | {lOld:F3} | {lNew:F3} | {lNew / lOld:F2} |"));
        }
        // The block's LayerNorm fused with the NCHW -> NHWC permute: two blocks per stage.
        foreach (var (preset, sides) in new[] { ("slak_nano", new[] { 8, 4, 2, 1 }), ("slak_nano64", new[] { 16, 8, 4, 2 }) })
        {
            double fOld = 0, fNew = 0, bOld = 0, bNew = 0;
            for (int s = 0; s < 4; s++)
            {
                var (fwd, bwd) = LayoutStage(Widths[s], sides[s], reps);
                long numel = (long)Batch * Widths[s] * sides[s] * sides[s];
                string sh = Inv($"({Batch}, {Widths[s]}, {sides[s]}, {sides[s]}) -> NHWC");
                // Forward: x read (gathered), y written. Backward: x gathered, dy read, dx written.
                Row(line, preset, "LayerNormNchwToNhwc", sh, fwd, 2.0 * numel * 4, 2.0 * numel * 4, cacheBw);
                Row(line, preset, "LayerNormNchwToNhwcBackward", sh, bwd, 3.0 * numel * 4, 2.0 * numel * 4, cacheBw);
                fOld += LayoutCalls * fwd.Old; fNew += LayoutCalls * fwd.New;
                bOld += LayoutCalls * bwd.Old; bNew += LayoutCalls * bwd.New;
            }
            steps.Add(Inv($"| {preset} | LayerNormNchwToNhwc | {4 * LayoutCalls} | {fOld:F3} | {fNew:F3} | {fNew / fOld:F2} |"));
            steps.Add(Inv($"| {preset} | LayerNormNchwToNhwcBackward | {4 * LayoutCalls} | {bOld:F3} | {bNew:F3} | {bNew / bOld:F2} |"));
        }
        return steps;
    }

    private const int LayoutCalls = 2;

    /// <summary>The fused LayerNorm + permute on <see cref="LayoutCalls"/> sets of tensors, best ms per call: forward
    /// old = the row path (a pixel's channels in the SIMD lanes), new = pixels in the lanes on maps of at least one
    /// vector of pixels (the row path below that); backward old = rows finished channel by channel, new = finished
    /// with the last whole vector.</summary>
    private static ((double Old, double New) Fwd, (double Old, double New) Bwd) LayoutStage(int c, int side, int reps)
    {
        var rng = new Random(c * 353 + side);
        int[] shape = [Batch, c, side, side];
        int numel = Batch * c * side * side, pixels = Batch * side * side;
        var be = CpuBackend.Instance;
        var sets = Enumerable.Range(0, LayoutCalls).Select(_ => new
        {
            X = Tensor.FromArray(BenchData.Uniform(rng, numel, 1.5, 0.3), shape, Device.Cpu),
            W = Tensor.FromArray(BenchData.Uniform(rng, c, 1, 1), [c], Device.Cpu),
            B = Tensor.FromArray(BenchData.Uniform(rng, c, 0.1, 0), [c], Device.Cpu),
            Y = Tensor.Empty([Batch, side, side, c], Device.Cpu),
            Mean = Tensor.Empty([pixels], Device.Cpu),
            Rstd = Tensor.Empty([pixels], Device.Cpu),
            Dy = Tensor.FromArray(BenchData.Uniform(rng, numel, 1, 0), [Batch, side, side, c], Device.Cpu),
            Dx = Tensor.Empty(shape, Device.Cpu),
            Dw = Tensor.Empty([c], Device.Cpu),
            Db = Tensor.Empty([c], Device.Cpu),
        }).ToArray();
        void Fwd(bool fresh)
        {
            CpuBackend.LayerNormLayoutPixelLanes = fresh;
            foreach (var t in sets) be.LayerNormNchwToNhwc(t.X, t.W, t.B, 1e-6f, t.Y, t.Mean, t.Rstd);
        }
        void Bwd(bool fresh)
        {
            CpuBackend.LayerNormLayoutVectorTails = fresh;
            CpuBackend.LayerNormLayoutTileSums = fresh;
            foreach (var t in sets) be.LayerNormNchwToNhwcBackward(t.X, t.W, t.Mean, t.Rstd, t.Dy, t.Dx, t.Dw, t.Db);
        }
        try
        {
            var f = Interleaved.Best(reps, () => Fwd(false), () => Fwd(true));
            var b = Interleaved.Best(reps, () => Bwd(false), () => Bwd(true));
            return ((f.A / LayoutCalls, f.B / LayoutCalls), (b.A / LayoutCalls, b.B / LayoutCalls));
        }
        finally
        {
            CpuBackend.LayerNormLayoutPixelLanes = true;
            CpuBackend.LayerNormLayoutVectorTails = true;
            CpuBackend.LayerNormLayoutTileSums = true;
        }
    }

    /// <summary>The channels-first LayerNorm on <paramref name="calls"/> sets of tensors, best ms per call of each
    /// side: forward old = the plane path, new = pixels in the SIMD lanes (LayerNormLayoutPixelLanes; the plane path
    /// below one vector of pixels); backward old = the per-plane and small-map paths, against the flat path forced
    /// on.</summary>
    private static ((double Old, double New) Fwd, (double Old, double Flat) Bwd) LayerNormStage(int c, int side, int calls, int reps)
    {
        var rng = new Random(c * 977 + side);
        int[] shape = [Batch, c, side, side];
        int numel = Batch * c * side * side;
        var be = CpuBackend.Instance;
        int keep = CpuBackend.LayerNormChannelsFirstFlatBelow;
        var sets = Enumerable.Range(0, calls).Select(_ =>
        {
            var x = Tensor.FromArray(BenchData.Uniform(rng, numel, 1.5, 0.3), shape, Device.Cpu);
            var w = Tensor.FromArray(BenchData.Uniform(rng, c, 1, 1), [c], Device.Cpu);
            var mean = Tensor.Empty([Batch, 1, side, side], Device.Cpu);
            var rstd = Tensor.Empty([Batch, 1, side, side], Device.Cpu);
            be.LayerNormChannelsFirst(x, w, Tensor.Zeros([c], Device.Cpu), 1e-6f, Tensor.Empty(shape, Device.Cpu), mean, rstd);
            return new
            {
                X = x, W = w, B = Tensor.Zeros([c], Device.Cpu), Y = Tensor.Empty(shape, Device.Cpu), Mean = mean, Rstd = rstd,
                Dy = Tensor.FromArray(BenchData.Uniform(rng, numel, 1, 0), shape, Device.Cpu),
                Dx = Tensor.Empty(shape, Device.Cpu),
                Dw = Tensor.Empty([c], Device.Cpu),
                Db = Tensor.Empty([c], Device.Cpu),
            };
        }).ToArray();
        void Bwd(bool flat)
        {
            CpuBackend.LayerNormChannelsFirstFlatBelow = flat ? int.MaxValue : 0;
            foreach (var t in sets) be.LayerNormChannelsFirstBackward(t.X, t.W, t.Mean, t.Rstd, t.Dy, t.Dx, t.Dw, t.Db);
        }
        void Fwd(bool lanes)
        {
            CpuBackend.LayerNormLayoutPixelLanes = lanes;
            foreach (var t in sets) be.LayerNormChannelsFirst(t.X, t.W, t.B, 1e-6f, t.Y, t.Mean, t.Rstd);
        }
        try
        {
            var f = Interleaved.Best(reps, () => Fwd(false), () => Fwd(true));
            var r = Interleaved.Best(reps, () => Bwd(false), () => Bwd(true));
            return ((f.A / calls, f.B / calls), (r.A / calls, r.B / calls));
        }
        finally
        {
            CpuBackend.LayerNormChannelsFirstFlatBelow = keep;
            CpuBackend.LayerNormLayoutPixelLanes = true;
        }
    }

    /// <summary>BatchNorm2d training forward and backward, old (two fork/joins) against new (one, over channel ranges),
    /// on <see cref="CallsPerStage"/> sets of tensors of one stage's shape: best ms per call of each side.</summary>
    private static ((double Old, double New) Fwd, (double Old, double New) Bwd) BatchNormStage(int c, int side, int reps)
    {
        var rng = new Random(c * 131 + side);
        int[] shape = [Batch, c, side, side];
        int numel = Batch * c * side * side;
        var be = CpuBackend.Instance;
        var sets = Enumerable.Range(0, CallsPerStage).Select(_ => new
        {
            X = Tensor.FromArray(BenchData.Uniform(rng, numel, 1.5, 0.3), shape, Device.Cpu),
            Dy = Tensor.FromArray(BenchData.Uniform(rng, numel, 1, 0), shape, Device.Cpu),
            Y = Tensor.Empty(shape, Device.Cpu),
            Dx = Tensor.Empty(shape, Device.Cpu),
            W = Tensor.FromArray(BenchData.Uniform(rng, c, 1, 1), [c], Device.Cpu),
            B = Tensor.FromArray(BenchData.Uniform(rng, c, 0.1, 0), [c], Device.Cpu),
            Rm = Tensor.Zeros([c], Device.Cpu),
            Rv = Tensor.Ones([c], Device.Cpu),
            Sm = Tensor.Empty([c], Device.Cpu),
            Si = Tensor.Empty([c], Device.Cpu),
            Dw = Tensor.Empty([c], Device.Cpu),
            Db = Tensor.Empty([c], Device.Cpu),
        }).ToArray();
        void Fwd(bool fresh)
        {
            CpuBackend.BatchNormChannelParts = fresh;
            CpuBackend.BatchNormColumnEdgeBlocks = fresh;
            foreach (var t in sets) be.BatchNormTrain(t.X, t.W, t.B, t.Rm, t.Rv, 0.1f, 1e-5f, t.Y, t.Sm, t.Si);
        }
        void Bwd(bool fresh)
        {
            CpuBackend.BatchNormChannelParts = fresh;
            CpuBackend.BatchNormColumnEdgeBlocks = fresh;
            foreach (var t in sets) be.BatchNormBackward(t.X, t.W, t.Sm, t.Si, t.Dy, t.Dx, t.Dw, t.Db);
        }
        try
        {
            var f = Interleaved.Best(reps, () => Fwd(false), () => Fwd(true));
            var b = Interleaved.Best(reps, () => Bwd(false), () => Bwd(true));
            return ((f.A / CallsPerStage, f.B / CallsPerStage), (b.A / CallsPerStage, b.B / CallsPerStage));
        }
        finally
        {
            CpuBackend.BatchNormChannelParts = true;
            CpuBackend.BatchNormColumnEdgeBlocks = true;
        }
    }

    private static void Row(Action<string> line, string preset, string pass, string shape, (double Old, double New) t,
                            double bytes, double lowerBytes, double cacheBw)
    {
        double Pct(double b, double ms) => b / (ms * 1e-3) / 1e9 / cacheBw * 100;
        line(Inv($"| {preset} | {pass} | {shape} | {t.Old:F4} | {t.New:F4} | {t.New / t.Old:F2} | {bytes / 1e6:F2} | {Pct(bytes, t.Old):F0} | {Pct(bytes, t.New):F0} | {Pct(lowerBytes, t.New):F0} |"));
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

}
