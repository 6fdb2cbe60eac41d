// The CPU LayerNorm fused with its NCHW -> NHWC permute (forward and backward), the channels-first LayerNorm (the stem
// and the downsampling layers; forward and backward) and the block epilogue of a training step (issue 27), old against new in one
// process, at batch 128 on every stage of slak_nano (8x8 .. 1x1 maps) and slak_nano64 (16x16 .. 2x2). old / new toggle
// the switches named by --toggle (default all): the LayerNorms' next-image prefetch (CpuBackend.LayoutImagePrefetch,
// SLAK_LAYOUT_IMAGE_PREFETCH), the LayerNorm forwards' two-vector chunks (LayerNormForwardLanesWide,
// SLAK_LAYERNORM_FWD_WIDE) and the residual's next-image prefetch (ResidualImagePrefetch, SLAK_RESIDUAL_IMAGE_PREFETCH;
// the default from 16 x 16, new forces it onto maps of 8 x 8 and more); named only: cf16 (the channels-first backward
// with pixels in the lanes on 16 x 16 maps, LayerNormBackwardLanesChannelsFirstBelow, SLAK_LAYERNORM_CF_LANES_16) and
// groups (the forwards on 2 x 2 maps with two images per vector, LayerNormImageGroups, SLAK_LAYERNORM_IMAGE_GROUPS),
// lanes512 (the 16-pixel chunks in one 512-bit vector, LayerNormLanes512, SLAK_LAYERNORM_LANES512), rows (the residual
// forward on 1 x 1 maps in one SIMD pass per row, ResidualRowsOnePass, SLAK_RESIDUAL_ROWS_ONE_PASS).
// Every other path is the default on both sides.
// Each call runs on its own tensors, as many calls per stage as a step makes; rounds are interleaved (alternating which
// side goes first) and the best of N rounds is kept. Bytes: every batch-sized tensor read or written once (LayerNorm
// forward: x, y; backward: x, dy, dx; residual forward: input, y, output; backward: dOut, y, dy), read against the
// cache bandwidth (256 KiB per thread) and the DRAM bandwidth (64 MiB per thread) measured in the same run, and against
// a plain stream of the same bytes at the same shape (as many calls, each on its own arrays: out = a + b for three
// tensors, a copy for two, split into equal contiguous blocks over the threads): what a memory operator with no layout
// change achieves there. --cold 1 flushes the caches before every timed call set (see _cold).
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll layout-norm-step [--reps N] [--out FILE] [--note TEXT]
using System.Globalization;
using System.Numerics.Tensors;
using Slak.Backends.Cpu;
using Slak.Bench.Train;

namespace Slak.Bench.Ops;

internal static class LayoutNormStepBench
{
    /// <summary>--only PASS, --side S: time only that pass, only maps of that side (to profile one kernel).</summary>
    private static string? _only;
    private static int _onlySide;

    /// <summary>--cold 1: every timed side of a round starts after a pass over <see cref="FlushBytes"/> of other
    /// memory (not timed), so that the tensors come from DRAM, as the block's activations do in a training step (the
    /// residual's input and the LayerNorm's x were written one block earlier); the default times them warm (the
    /// previous round left what fits of them in the last-level cache).</summary>
    private static bool _cold;

    /// <summary>--toggle LIST: the changes that old turns off (default all: prefetch = the LayerNorms' next-image
    /// prefetch, wide = the forwards' two-vector chunks, residual = the residual's next-image prefetch); the others
    /// keep their defaults on both sides, to time one change alone.</summary>
    private static string[] _toggle = ["prefetch", "wide", "residual"];

    private static void SetLayerNormSide(bool fresh)
    {
        if (_toggle.Contains("prefetch")) CpuBackend.LayoutImagePrefetch = fresh;
        if (_toggle.Contains("wide")) CpuBackend.LayerNormForwardLanesWide = fresh;
        if (_toggle.Contains("cf16")) CpuBackend.LayerNormBackwardLanesChannelsFirstBelow = fresh ? 512 : 128;
        if (_toggle.Contains("groups")) CpuBackend.LayerNormImageGroups = fresh;
        if (_toggle.Contains("lanes512")) CpuBackend.LayerNormLanes512 = fresh;
    }

    private const int FlushBytes = 192 << 20;
    private static float[]? _flush;

    /// <summary>Best ms of <paramref name="a"/> and of <paramref name="b"/> over <paramref name="reps"/> rounds after 3
    /// warm-up rounds, alternating which goes first; with --cold each timed call follows a cache flush.</summary>
    private static (double A, double B) Best(int reps, Action a, Action b)
    {
        if (!_cold) return Interleaved.Best(reps, a, b);
        var flush = _flush ??= new float[FlushBytes / sizeof(float)];
        double Cold(Action run)
        {
            CpuParallel.For(0, CpuParallel.Threads, k =>
            {
                int per = flush.Length / CpuParallel.Threads;
                var s = flush.AsSpan(k * per, per);
                TensorPrimitives.Add(s, 1f, s);
            });
            return Interleaved.TimeMs(run);
        }
        for (int i = 0; i < 3; i++) { a(); b(); }
        double ba = double.MaxValue, bb = double.MaxValue;
        for (int i = 0; i < reps; i++)
        {
            if (i % 2 == 0) { ba = Math.Min(ba, Cold(a)); bb = Math.Min(bb, Cold(b)); }
            else { bb = Math.Min(bb, Cold(b)); ba = Math.Min(ba, Cold(a)); }
        }
        return (ba, bb);
    }

    private const int Batch = 128;
    private static readonly int[] Widths = [31, 62, 124, 249];
    private static readonly (string Preset, int[] Sides)[] Presets =
        [("slak_nano", [8, 4, 2, 1]), ("slak_nano64", [16, 8, 4, 2])];

    [BenchProgram("layout-norm-step", "LayerNorm fused NCHW->NHWC fwd/bwd, channels-first bwd and ChannelsLastResidual fwd/bwd, old vs new layout copies, slak_nano/slak_nano64 step shapes, with cache and DRAM bandwidth [--reps N] [--out FILE] [--note TEXT]")]
    private static int Run(string[] args)
    {
        string? only = null;
        int onlySide = 0;
        if (ReportArgs.Parse(args, defaultReps: 30, "--reps N, --out FILE, --note TEXT, --only PASS, --side S, --cold 0|1, --toggle prefetch,wide,residual",
                (a, next) => a switch
                {
                    "--only" => (only = next()) is not null,
                    "--side" => (onlySide = int.Parse(next(), CultureInfo.InvariantCulture)) > 0,
                    "--cold" => (_cold = next() == "1") || true,
                    "--toggle" => (_toggle = next().Split(',')) is not null,
                    _ => false,
                }) is not { } opts) return 2;
        _only = only;
        _onlySide = onlySide;
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
        o.Line(Inv($"old / new, toggled: {string.Join(", ", _toggle)} (prefetch: the LayerNorms with pixels in the lanes, maps of 8 x 8 and more, without / with the next-image prefetch, `SLAK_LAYOUT_IMAGE_PREFETCH`, the default; wide: the LayerNorm forwards with pixels in the lanes in one-vector / two-vector chunks, `SLAK_LAYERNORM_FWD_WIDE`, the default; residual: ChannelsLastResidual forward and backward without / with the next-image prefetch, `SLAK_RESIDUAL_IMAGE_PREFETCH`, the default on maps of 16 x 16 and more; here forced onto maps of 8 x 8 and more). cf16: the channels-first LayerNorm backward on 16 x 16 maps on the plane path / with pixels in the lanes (`SLAK_LAYERNORM_CF_LANES_16`); groups: the LayerNorm forwards on 2 x 2 maps on the row path (fused) and the plane path (channels-first) / with pixels in the lanes, two images per vector (`SLAK_LAYERNORM_IMAGE_GROUPS`); lanes512: the LayerNorms' 16-pixel chunks (maps of 8 x 8 and more) in two 256-bit / one 512-bit vector (`SLAK_LAYERNORM_LANES512`); rows: ChannelsLastResidual on 1 x 1 maps in three TensorPrimitives calls / one SIMD pass per row (`SLAK_RESIDUAL_ROWS_ONE_PASS`). Other paths: the defaults on both sides (rows whose path has none of these run the same code on both sides and show the noise)."));
        o.Line(_cold
            ? "Cold (--cold 1): each timed call set follows a pass over 192 MiB of other memory, so the tensors come from DRAM (as the block's activations do in a training step)."
            : "Warm (--cold 0): the tensors stay in whatever cache the previous round left them (2 calls x 2-3 tensors: up to 24 MB at slak_nano64's stage 1).");
        o.Line(Inv($"Best of {reps} interleaved rounds; a round runs a stage's calls of a step back to back, each on its own tensors. Bytes: each batch-sized tensor read or written once (3 per call, 2 for the LayerNorm forward)."));
        o.Line();
        o.Line("| preset | pass | shape | calls | old ms/call | new ms/call | new / old | MB/call | old GB/s | new GB/s | stream GB/s | new % of stream | new % of cache bw | new % of DRAM bw |");
        o.Line("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
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
                ("LayerNormChannelsFirst", s => s == 0 ? 2 : s < 3 ? 1 : 0, (c, side, calls) => LayerNormBackward(c, side, calls, reps, nhwc: false, forward: true)),
                ("LayerNormChannelsFirstBackward", s => s == 0 ? 2 : s < 3 ? 1 : 0, (c, side, calls) => LayerNormBackward(c, side, calls, reps, nhwc: false)),
                ("ChannelsLastResidual", _ => 2, (c, side, calls) => Residual(c, side, calls, reps, backward: false)),
                ("ChannelsLastResidualBackward", _ => 2, (c, side, calls) => Residual(c, side, calls, reps, backward: true)),
            };
            foreach (var (name, callsOf, time) in passes)
            {
                if (_only is not null && name != _only) continue;
                double old = 0, fresh = 0;
                int total = 0;
                for (int s = 0; s < 4; s++)
                {
                    int calls = callsOf(s);
                    if (calls == 0 || _onlySide > 0 && sides[s] != _onlySide) continue;
                    var (a, b) = time(Widths[s], sides[s], calls);
                    int tensors = name is "LayerNormNchwToNhwc" or "LayerNormChannelsFirst" ? 2 : 3;
                    int numel = Batch * Widths[s] * sides[s] * sides[s];
                    double bytes = 4.0 * tensors * numel;
                    double stream = Stream(tensors, numel, calls, reps);
                    double gbs = bytes / (b * 1e-3) / 1e9, oldGbs = bytes / (a * 1e-3) / 1e9;
                    double streamGbs = bytes / (stream * 1e-3) / 1e9;
                    line(Inv($"| {preset} | {name} | ({Batch}, {Widths[s]}, {sides[s]}, {sides[s]}) | {calls} | {a:F4} | {b:F4} | {b / a:F2} | {bytes / 1e6:F2} | {oldGbs:F1} | {gbs:F1} | {streamGbs:F1} | {gbs / streamGbs * 100:F0} | {gbs / cacheBw * 100:F0} | {gbs / dramBw * 100:F0} |"));
                    old += calls * a;
                    fresh += calls * b;
                    total += calls;
                }
                steps.Add(Inv($"| {preset} | {name} | {total} | {old:F3} | {fresh:F3} | {fresh / old:F2} |"));
            }
        }
        return steps;
    }

    /// <summary>A LayerNorm backward (or, with <paramref name="forward"/>, its forward) on
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
        bool keep = CpuBackend.LayoutImagePrefetch, keepWide = CpuBackend.LayerNormForwardLanesWide;
        int keepCfBelow = CpuBackend.LayerNormBackwardLanesChannelsFirstBelow;
        bool keepGroups = CpuBackend.LayerNormImageGroups, keep512 = CpuBackend.LayerNormLanes512;
        void Bwd(bool fresh)
        {
            SetLayerNormSide(fresh);
            foreach (var t in sets)
            {
                if (forward && nhwc) be.LayerNormNchwToNhwc(t.X, t.W, t.B, 1e-6f, t.Y, t.Mean, t.Rstd);
                else if (forward) be.LayerNormChannelsFirst(t.X, t.W, t.B, 1e-6f, t.Y, t.Mean, t.Rstd);
                else if (nhwc) be.LayerNormNchwToNhwcBackward(t.X, t.W, t.Mean, t.Rstd, t.Dy, t.Dx, t.Dw, t.Db);
                else be.LayerNormChannelsFirstBackward(t.X, t.W, t.Mean, t.Rstd, t.Dy, t.Dx, t.Dw, t.Db);
            }
        }
        try
        {
            var r = Best(reps, () => Bwd(false), () => Bwd(true));
            return (r.A / calls, r.B / calls);
        }
        finally
        {
            CpuBackend.LayoutImagePrefetch = keep;
            CpuBackend.LayerNormForwardLanesWide = keepWide;
            CpuBackend.LayerNormBackwardLanesChannelsFirstBelow = keepCfBelow;
            CpuBackend.LayerNormImageGroups = keepGroups;
            CpuBackend.LayerNormLanes512 = keep512;
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
        bool keep = CpuBackend.ResidualImagePrefetch, keepRows = CpuBackend.ResidualRowsOnePass;
        void Go(bool fresh)
        {
            if (_toggle.Contains("rows")) CpuBackend.ResidualRowsOnePass = fresh;
            if (_toggle.Contains("residual"))
            {
                CpuBackend.ResidualImagePrefetch = fresh;
                CpuBackend.ResidualImagePrefetchFrom = 64;
            }
            foreach (var t in sets)
            {
                if (backward) be.ChannelsLastResidualBackward(t.Y, t.Gamma, t.Scale, t.DOut, t.Dy, t.Dg);
                else be.ChannelsLastResidual(t.Input, t.Y, t.Gamma, t.Scale, t.Output);
            }
        }
        try
        {
            var r = Best(reps, () => Go(false), () => Go(true));
            return (r.A / calls, r.B / calls);
        }
        finally
        {
            CpuBackend.ResidualImagePrefetch = keep;
            CpuBackend.ResidualImagePrefetchFrom = 256;
            CpuBackend.ResidualRowsOnePass = keepRows;
        }
    }

    /// <summary>Best ms per call of a plain stream of <paramref name="tensors"/> arrays of <paramref name="numel"/>
    /// floats (out = a + b, or a copy for two), <paramref name="calls"/> calls each on its own arrays, the elements
    /// split into one contiguous block per thread.</summary>
    private static double Stream(int tensors, int numel, int calls, int reps)
    {
        var rng = new Random(numel + tensors);
        var sets = Enumerable.Range(0, calls)
            .Select(_ => Enumerable.Range(0, tensors).Select(_ => BenchData.Uniform(rng, numel, 1, 0)).ToArray())
            .ToArray();
        int threads = CpuParallel.Threads;
        int per = (numel / threads + 15) / 16 * 16;
        void Go()
        {
            foreach (var t in sets)
                CpuParallel.For(0, threads, numel, k =>
                {
                    int s = Math.Min(numel, k * per), e = Math.Min(numel, s + per);
                    if (tensors == 2) t[0].AsSpan(s, e - s).CopyTo(t[1].AsSpan(s, e - s));
                    else TensorPrimitives.Add(t[0].AsSpan(s, e - s), t[1].AsSpan(s, e - s), t[2].AsSpan(s, e - s));
                });
        }
        var r = Best(reps, Go, Go);
        return Math.Min(r.A, r.B) / calls;
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
