// The CPU LayerNorm fused with its NCHW -> NHWC permute (forward and backward), the channels-first LayerNorm's backward
// (the stem and the downsampling layers) and the block epilogue of a training step (issue 27), old against new in one
// process, at batch 128 on every stage of slak_nano (8x8 .. 1x1 maps) and slak_nano64 (16x16 .. 2x2). old = the layout
// copies before this change: the LayerNorm's gather and scatter with 8 x 8 transposes on the multiples of 8 and the
// rest element by element (CpuBackend.LayerNormLayoutTailTransposes off, SLAK_LAYOUT_TAIL_TRANSPOSE=0), the residual's
// runs shorter than 8 pixels element by element (CpuBackend.ResidualTiles4 off, SLAK_RESIDUAL_TILES4=0); new = the
// defaults (whole runs in overlapping 8 x 8 / 4 x 4 register transposes, 4 x 4 residual tiles). Every other path is the
// default on both sides (pixel lanes where they are used, the residual's vector tails and prefetch). Each call runs on
// its own tensors, as many calls per stage as a step makes; rounds are interleaved (alternating which side goes first)
// and the best of N rounds is kept. Bytes: every batch-sized tensor read or written once (LayerNorm forward: x, y;
// backward: x, dy, dx; residual forward: input, y, output; backward: dOut, y, dy), read against the cache bandwidth
// (256 KiB per thread) and the DRAM bandwidth (64 MiB per thread) measured in the same run.
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll layout-norm-step [--reps N] [--out FILE] [--note TEXT]
using System.Globalization;
using Slak.Backends.Cpu;
using Slak.Bench.Train;

namespace Slak.Bench.Ops;

internal static class LayoutNormStepBench
{
    private const int Batch = 128;
    private static readonly int[] Widths = [31, 62, 124, 249];
    private static readonly (string Preset, int[] Sides)[] Presets =
        [("slak_nano", [8, 4, 2, 1]), ("slak_nano64", [16, 8, 4, 2])];

    [BenchProgram("layout-norm-step", "LayerNorm fused NCHW->NHWC fwd/bwd, channels-first bwd and ChannelsLastResidual fwd/bwd, old vs new layout copies, slak_nano/slak_nano64 step shapes, with cache and DRAM bandwidth [--reps N] [--out FILE] [--note TEXT]")]
    private static int Run(string[] args)
    {
        if (ReportArgs.Parse(args, defaultReps: 30) is not { } opts) return 2;
        int reps = opts.Reps, threads = CpuParallel.Threads;
        var o = new Report();
        string start = Inv($"{DateTime.UtcNow:u}; commit {RunInfo.Commit()}; {RunInfo.CpuModel()}, {Environment.ProcessorCount} cores; {threads} threads");
        string loadStart = RunInfo.LoadAverage();
        // On a loaded machine the threads of a burst rarely run together: the larger of the all-thread burst and the
        // one-thread rate times the threads (as norm-step does).
        double cacheBw = Math.Max(MemoryBandwidth.Read(threads, 256 << 10, 200),
                                  MemoryBandwidth.Read(1, 256 << 10, 200) * threads);
        double dramBw = Math.Max(MemoryBandwidth.Read(threads, 64 << 20, 5),
                                 MemoryBandwidth.Read(1, 64 << 20, 5) * threads);
        o.Line("# layout-norm-step: the CPU LayerNorm around the block MLP and the block epilogue of a training step, old vs new");
        o.Line();
        o.Line(Inv($"Program: `layout-norm-step --reps {reps}` (bench/Slak.Bench/Ops/LayoutNormStepBench.cs); {start}; load average at start {loadStart}."));
        if (opts.Note is not null) o.Line(opts.Note);
        o.Line(Inv($"Read bandwidth measured in this run: cache (256 KiB per thread, best of 200) {cacheBw:F1} GB/s, DRAM (64 MiB per thread, best of 5) {dramBw:F1} GB/s ({threads} threads; the larger of all threads together and one thread times {threads})."));
        o.Line();
        o.Line("old / new: the fused LayerNorm's gather / scatter with 8 x 8 transposes on multiples of 8 and the rest element by element / whole runs in overlapping 8 x 8 or 4 x 4 register transposes (`SLAK_LAYOUT_TAIL_TRANSPOSE`); ChannelsLastResidual runs shorter than 8 pixels (2 x 2 maps) element by element / in 4 x 4 tiles (`SLAK_RESIDUAL_TILES4`). Other paths: the defaults on both sides (the channels-first backward is unchanged: its rows show the noise).");
        o.Line(Inv($"Best of {reps} interleaved rounds; a round runs a stage's calls of a step back to back, each on its own tensors. Bytes: each batch-sized tensor read or written once (3 per call, 2 for the LayerNorm forward)."));
        o.Line();
        o.Line("| preset | pass | shape | calls | old ms/call | new ms/call | new / old | MB/call | new GB/s | new % of cache bw | new % of DRAM bw |");
        o.Line("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        // A first round over every shape, not printed: the tiered JIT replaces first-tier code while it runs.
        Table(Math.Max(1, reps / 3), _ => { }, cacheBw, dramBw);
        var steps = Table(reps, o.Line, cacheBw, dramBw);
        o.Line();
        o.Line("Per step (the kernels alone, back to back):");
        o.Line();
        o.Line("| preset | pass | calls/step | old ms/step | new ms/step | new / old |");
        o.Line("|---|---|---:|---:|---:|---:|");
        foreach (var s in steps) o.Line(s);
        o.Line();
        o.Line(Inv($"Load average at end {RunInfo.LoadAverage()}; {DateTime.UtcNow:u}."));
        if (opts.Out is not null) File.WriteAllText(opts.Out, o.ToString());
        return 0;
    }

    /// <summary>The per-shape rows (through <paramref name="line"/>) and the per-step rows (returned).</summary>
    private static List<string> Table(int reps, Action<string> line, double cacheBw, double dramBw)
    {
        var steps = new List<string>();
        foreach (var (preset, sides) in Presets)
        {
            // (pass, stage) -> calls per step: two blocks per stage; the channels-first LayerNorm twice on stage 1's
            // map (the stem's and the first downsampling layer's), once before each of the other two downsamplings.
            var passes = new (string Name, Func<int, int> Calls, Func<int, int, int, (double, double)> Time)[]
            {
                ("LayerNormNchwToNhwc", _ => 2, (c, side, calls) => LayerNormBackward(c, side, calls, reps, nhwc: true, forward: true)),
                ("LayerNormNchwToNhwcBackward", _ => 2, (c, side, calls) => LayerNormBackward(c, side, calls, reps, nhwc: true)),
                ("LayerNormChannelsFirstBackward", s => s == 0 ? 2 : s < 3 ? 1 : 0, (c, side, calls) => LayerNormBackward(c, side, calls, reps, nhwc: false)),
                ("ChannelsLastResidual", _ => 2, (c, side, calls) => Residual(c, side, calls, reps, backward: false)),
                ("ChannelsLastResidualBackward", _ => 2, (c, side, calls) => Residual(c, side, calls, reps, backward: true)),
            };
            foreach (var (name, callsOf, time) in passes)
            {
                double old = 0, fresh = 0;
                int total = 0;
                for (int s = 0; s < 4; s++)
                {
                    int calls = callsOf(s);
                    if (calls == 0) continue;
                    var (a, b) = time(Widths[s], sides[s], calls);
                    double bytes = (name == "LayerNormNchwToNhwc" ? 2.0 : 3.0) * Batch * Widths[s] * sides[s] * sides[s] * 4;
                    double gbs = bytes / (b * 1e-3) / 1e9;
                    line(Inv($"| {preset} | {name} | ({Batch}, {Widths[s]}, {sides[s]}, {sides[s]}) | {calls} | {a:F4} | {b:F4} | {b / a:F2} | {bytes / 1e6:F2} | {gbs:F1} | {gbs / cacheBw * 100:F0} | {gbs / dramBw * 100:F0} |"));
                    old += calls * a;
                    fresh += calls * b;
                    total += calls;
                }
                steps.Add(Inv($"| {preset} | {name} | {total} | {old:F3} | {fresh:F3} | {fresh / old:F2} |"));
            }
        }
        return steps;
    }

    /// <summary>A LayerNorm backward (or, with <paramref name="forward"/>, the fused forward) on
    /// <paramref name="calls"/> sets of tensors, best ms per call of old and new.</summary>
    private static (double Old, double New) LayerNormBackward(int c, int side, int calls, int reps, bool nhwc,
        bool forward = false)
    {
        var rng = new Random(c * 571 + side + (nhwc ? 1 : 0));
        int[] shape = [Batch, c, side, side];
        int[] yShape = nhwc ? [Batch, side, side, c] : shape;
        int numel = Batch * c * side * side;
        var be = CpuBackend.Instance;
        var sets = Enumerable.Range(0, calls).Select(_ =>
        {
            var x = Tensor.FromArray(BenchData.Uniform(rng, numel, 1.5, 0.3), shape, Device.Cpu);
            var w = Tensor.FromArray(BenchData.Uniform(rng, c, 1, 1), [c], Device.Cpu);
            var b = Tensor.Zeros([c], Device.Cpu);
            var y = Tensor.Empty(yShape, Device.Cpu);
            var mean = Tensor.Empty(nhwc ? [Batch * side * side] : [Batch, 1, side, side], Device.Cpu);
            var rstd = Tensor.Empty(nhwc ? [Batch * side * side] : [Batch, 1, side, side], Device.Cpu);
            if (nhwc) be.LayerNormNchwToNhwc(x, w, b, 1e-6f, y, mean, rstd);
            else be.LayerNormChannelsFirst(x, w, b, 1e-6f, y, mean, rstd);
            return new
            {
                X = x, W = w, B = b, Y = y, Mean = mean, Rstd = rstd,
                Dy = Tensor.FromArray(BenchData.Uniform(rng, numel, 1, 0), yShape, Device.Cpu),
                Dx = Tensor.Empty(shape, Device.Cpu),
                Dw = Tensor.Empty([c], Device.Cpu),
                Db = Tensor.Empty([c], Device.Cpu),
            };
        }).ToArray();
        bool keep = CpuBackend.LayerNormLayoutTailTransposes;
        void Bwd(bool fresh)
        {
            CpuBackend.LayerNormLayoutTailTransposes = fresh;
            foreach (var t in sets)
            {
                if (forward) be.LayerNormNchwToNhwc(t.X, t.W, t.B, 1e-6f, t.Y, t.Mean, t.Rstd);
                else if (nhwc) be.LayerNormNchwToNhwcBackward(t.X, t.W, t.Mean, t.Rstd, t.Dy, t.Dx, t.Dw, t.Db);
                else be.LayerNormChannelsFirstBackward(t.X, t.W, t.Mean, t.Rstd, t.Dy, t.Dx, t.Dw, t.Db);
            }
        }
        try
        {
            var r = Interleaved.Best(reps, () => Bwd(false), () => Bwd(true));
            return (r.A / calls, r.B / calls);
        }
        finally
        {
            CpuBackend.LayerNormLayoutTailTransposes = keep;
        }
    }

    /// <summary>ChannelsLastResidual (with layer scale and DropPath, as in training) or its backward (dy and dgamma) on
    /// <paramref name="calls"/> sets of tensors, best ms per call of old and new.</summary>
    private static (double Old, double New) Residual(int c, int side, int calls, int reps, bool backward)
    {
        var rng = new Random(c * 313 + side + (backward ? 1 : 0));
        int[] shape = [Batch, c, side, side];
        int[] yShape = [Batch, side, side, c];
        int numel = Batch * c * side * side;
        var be = CpuBackend.Instance;
        var sets = Enumerable.Range(0, calls).Select(_ => new
        {
            Input = Tensor.FromArray(BenchData.Uniform(rng, numel, 1, 0), shape, Device.Cpu),
            Y = Tensor.FromArray(BenchData.Uniform(rng, numel, 1, 0), yShape, Device.Cpu),
            Gamma = Tensor.FromArray(BenchData.Uniform(rng, c, 1e-6, 0), [c], Device.Cpu),
            Scale = Tensor.FromArray(Enumerable.Range(0, Batch).Select(i => i % 10 == 0 ? 0f : 1f / 0.9f).ToArray(), [Batch], Device.Cpu),
            Output = Tensor.Empty(shape, Device.Cpu),
            DOut = Tensor.FromArray(BenchData.Uniform(rng, numel, 1, 0), shape, Device.Cpu),
            Dy = Tensor.Empty(yShape, Device.Cpu),
            Dg = Tensor.Empty([c], Device.Cpu),
        }).ToArray();
        bool keep = CpuBackend.ResidualTiles4;
        void Go(bool fresh)
        {
            CpuBackend.ResidualTiles4 = fresh;
            foreach (var t in sets)
            {
                if (backward) be.ChannelsLastResidualBackward(t.Y, t.Gamma, t.Scale, t.DOut, t.Dy, t.Dg);
                else be.ChannelsLastResidual(t.Input, t.Y, t.Gamma, t.Scale, t.Output);
            }
        }
        try
        {
            var r = Interleaved.Best(reps, () => Go(false), () => Go(true));
            return (r.A / calls, r.B / calls);
        }
        finally
        {
            CpuBackend.ResidualTiles4 = keep;
        }
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
