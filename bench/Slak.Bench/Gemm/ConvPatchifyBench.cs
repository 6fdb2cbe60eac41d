// The patchify convolutions of the training step (stem 4x4/4 and downsampling 2x2/2 of slak_nano and slak_nano64, batch
// 128), the direct per-block path as it was before its second round ('old', CpuConv2d.Direct.cs with
// TunedFilterGradient = false, SLAK_CONV2D_FILTER_GRAD=first) against the current default ('new': the weight gradient's
// second form, CpuConv2d.FilterGrad.cs), in one process: every repetition times each layer's forward, input gradient
// and weight gradient once per path, the two paths alternating which goes first, and the best of all repetitions is
// kept per (layer, pass, path). FLOPs: 2 * N * Cout * OutH * OutW * Cin * Kh * Kw per pass; the percentages are of the
// higher of the two FMA peaks measured in the same run (before and after the timings).
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll conv-patchify [--reps N] [--threads T] [--out FILE]
//     [--note TEXT] [--ref-peak GFLOPS] [--old-batched] [--compare whole-image-dw|plane-moves|moves-and-dw] [--evict MB]
// (--old-batched: 'old' is the batched-GEMM path instead, CpuConv2d.Batched.cs, SLAK_CONV2D_PATCHIFY=batched)
// (--compare plane-moves: 'old' moves the patches of 2x2 windows on 4x4 and 8x8 maps window row by window row,
// SLAK_CONV2D_PLANE_MOVES=off, 'new' plane by plane, CpuConv2d.PlaneMoves.cs)
// (--compare moves-and-dw: 'old' has both switched off, the direct path as before them)
// (--compare whole-image-dw: 'old' runs the weight gradient of one-pixel outputs in the direct path's loops,
// SLAK_CONV2D_WHOLE_IMAGE_DW=off, 'new' as one CpuGemm call, CpuConv2d.WholeImageFilter.cs; the other passes are the
// same code on both sides)
// (--evict MB: before every timed call each of the threads reads a buffer of its own of MB MiB, so that the call finds
// its operands in L3 or DRAM, not in L1/L2, as in the training step, where other operators run in between; a small MB,
// e.g. 0.01, keeps the caches and times what the threads' pause alone costs)
// (--ref-peak: a second peak to read the rates against, e.g. the quiet machine's, stated in --note; on a loaded machine
// the peak measured in the run can come out lower than the rates the convolutions reach, since a burst needs both
// cores undisturbed at once)
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Backends.Cpu;

namespace Slak.Bench.Gemm;

internal static class ConvPatchifyBench
{
    private enum Pass { Forward, BackwardData, BackwardFilter }

    [BenchProgram("conv-patchify", "stem/downsampling conv2d, direct path before (old) and after (new) its second round, slak_nano/nano64 [--reps N] [--threads T] [--out FILE] [--note TEXT] [--ref-peak GFLOPS] [--old-batched] [--compare whole-image-dw|plane-moves|moves-and-dw] [--evict MB]")]
    private static int Run(string[] args)
    {
        int threads = 2;
        double refPeak = double.NaN;
        var compare = Compare.FilterForm;
        double evictMib = 0;
        var opts = ReportArgs.Parse(args, defaultReps: 40, "--reps N, --threads T, --out FILE, --note TEXT, --ref-peak GFLOPS",
            (arg, value) =>
            {
                switch (arg)
                {
                    case "--threads": threads = int.Parse(value(), CultureInfo.InvariantCulture); return true;
                    case "--ref-peak": refPeak = double.Parse(value(), CultureInfo.InvariantCulture); return true;
                    case "--no-whole-image-gemm": CpuConv2d.WholeImageGemm = false; return true;
                    case "--old-batched": compare = Compare.Batched; return true;
                    case "--compare":
                        compare = value() switch
                        {
                            "whole-image-dw" => Compare.WholeImageDw,
                            "plane-moves" => Compare.PlaneMoves,
                            "moves-and-dw" => Compare.MovesAndDw,
                            var other => throw new ArgumentException($"--compare {other}: expected whole-image-dw, plane-moves or moves-and-dw"),
                        };
                        return true;
                    case "--evict": evictMib = double.Parse(value(), CultureInfo.InvariantCulture); return true;
                    default: return false;
                }
            });
        if (opts is null) return 2;
        int reps = opts.Reps;
        string? outFile = opts.Out, note = opts.Note;
        var o = new Report();
        CpuParallel.Threads = threads;
        string loadStart = RunInfo.LoadAverage();
        var peak = FmaPeak.MeasureForRun(threads);
        o.Line(compare switch
        {
            Compare.Batched => "# conv-patchify: stem and downsampling convolutions, batched GEMM (old) vs direct per-block path (new)",
            Compare.WholeImageDw => "# conv-patchify: stem and downsampling convolutions, one-pixel weight gradient in the direct path's loops (old) vs one CpuGemm call (new)",
            Compare.MovesAndDw => "# conv-patchify: stem and downsampling convolutions, before (old) and after (new) the plane moves and the one-pixel weight gradient GEMM",
            Compare.PlaneMoves => "# conv-patchify: stem and downsampling convolutions, patch moves on 4 x 4 and 8 x 8 maps window row by window row (old) vs plane by plane (new)",
            _ => "# conv-patchify: stem and downsampling convolutions, direct path before (old) and after (new) its second round",
        });
        o.Line();
        o.Line(Inv($"Program: `conv-patchify {string.Join(' ', args)}` (bench/Slak.Bench/Gemm/ConvPatchifyBench.cs); {DateTime.UtcNow:u}; commit {RunInfo.Commit()}; {Environment.ProcessorCount} cores ({Environment.GetEnvironmentVariable("HOSTNAME") ?? "host"}); load average at start {loadStart}."));
        if (note is not null) o.Line(note);
        if (!CpuConv2d.WholeImageGemm) o.Line("(--no-whole-image-gemm: 'new' runs 1x1 output maps through its own micro-kernel, not CpuGemm.)");
        o.Line(FmaPeak.HeaderLine(peak));
        o.Line(compare switch
             {
                 Compare.Batched => "'old' = CpuConv2d.Batched.cs (SLAK_CONV2D_PATCHIFY=batched: space-to-depth, one packed GEMM over the batch, " +
                                    "transpose back), 'new' = the default. ",
                 Compare.WholeImageDw => "'old' = the weight gradient of one-pixel outputs (slak_nano's ds3) in the direct path's second form " +
                                         "(SLAK_CONV2D_WHOLE_IMAGE_DW=off), 'new' = the default (one CpuGemm call on x and dy as they are, " +
                                         "CpuConv2d.WholeImageFilter.cs); every other cell runs the same code on both sides (a noise check). ",
                 Compare.MovesAndDw => "'old' = SLAK_CONV2D_PLANE_MOVES=off and SLAK_CONV2D_WHOLE_IMAGE_DW=off (the direct path as at eeca47b), " +
                                       "'new' = the default (plane moves on 4 x 4 and 8 x 8 maps, CpuConv2d.PlaneMoves.cs; the weight gradient of " +
                                       "one-pixel outputs as one CpuGemm call, CpuConv2d.WholeImageFilter.cs). ",
                 Compare.PlaneMoves => "'old' = the general patch moves of the direct path for 2 x 2 windows on 4 x 4 and 8 x 8 maps " +
                                       "(slak_nano's ds1 and ds2, slak_nano64's ds2 and ds3; SLAK_CONV2D_PLANE_MOVES=off), 'new' = the default " +
                                       "(whole channel planes moved with vector permutations, CpuConv2d.PlaneMoves.cs; on 8 x 8 maps the forward " +
                                       "and the input gradient only); the stem and the other layers run the same code on both sides (a noise check). ",
                 _ => "'old' = CpuConv2d.Direct.cs with TunedFilterGradient = false (the direct path's first form, " +
                      "SLAK_CONV2D_FILTER_GRAD=first), 'new' = the default (weight gradient in its second form, " +
                      "CpuConv2d.FilterGrad.cs: 16-row tiles for the stem, 128-pixel blocks with L1-resident patch panels for the others). ",
             } +
             "Best of the repetitions per cell; each repetition " +
             "runs old and new back to back (alternating which goes first), so the machine's load hits both alike.");
        if (evictMib > 0)
            o.Line(Inv($"Caches evicted before every timed call: each of the {threads} threads reads {evictMib} MiB of its own first (--evict), so operands come from L3 or DRAM as in the training step."));
        o.Line("Rows 'step' sum the layers as the training step calls them (the stem's input gradient is not computed " +
             "there: the image needs none).");
        o.Line();

        var presets = new (string Name, Conv2dShape[] Layers)[]
        {
            ("slak_nano", Layers(32)),
            ("slak_nano64", Layers(64)),
        };
        // Both presets are timed before anything is written: the peak the tables use is the higher of the two
        // measured (start and end), since on a shared machine one of them can catch a core busy with other work.
        var bests = presets.Select(pr => Measure(pr.Layers, reps, compare, evictMib, threads)).ToArray();
        string loadEnd = RunInfo.LoadAverage(), timeEnd = Inv($"{DateTime.UtcNow:u}");
        var peakEnd = FmaPeak.MeasureForRun(threads);
        double peakUsed = Math.Max(peak.Gflops, peakEnd.Gflops);
        for (int pi = 0; pi < presets.Length; pi++)
        {
            var (name, layers) = presets[pi];
            var best = bests[pi];
            o.Line(Inv($"## {name} (batch 128, {threads} threads)"));
            o.Line();
            string refCols = double.IsNaN(refPeak) ? "" : Inv($" old % of {refPeak:F0} | new % of {refPeak:F0} |");
            o.Line("| layer | pass | GFLOP | old ms | new ms | new/old | old GFLOP/s | new GFLOP/s | old % of peak | new % of peak |" + refCols);
            o.Line("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + (double.IsNaN(refPeak) ? "" : "---:|---:|"));
            foreach (Pass pass in Enum.GetValues<Pass>())
            {
                double stepOld = 0, stepNew = 0, stepFlop = 0;
                for (int l = 0; l < layers.Length; l++)
                {
                    double flop = Flop(layers[l]);
                    var (tOld, tNew) = best[l, (int)pass];
                    o.Line(Row(LayerName(l, layers[l]), pass, flop, tOld, tNew, peakUsed, refPeak));
                    if (pass == Pass.BackwardData && l == 0) continue;
                    stepOld += tOld;
                    stepNew += tNew;
                    stepFlop += flop;
                }
                o.Line(Row("**step**", pass, stepFlop, stepOld, stepNew, peakUsed, refPeak));
            }
            o.Line();
        }
        o.Line(Inv($"Load average at end {loadEnd}; {timeEnd}."));
        o.Line(Inv($"FMA peak measured again at the end: {peakEnd.Description}. The tables use the higher of the two ({peakUsed:F1})."));
        if (outFile is not null) File.WriteAllText(outFile, o.ToString());
        return 0;
    }

    // Stem 1 -> 31 (4x4/4), then 31 -> 62 -> 124 -> 249 (2x2/2), batch 128.
    private static Conv2dShape[] Layers(int px) =>
    [
        new(128, 1, px, px, 31, 4, 4, 4, 4, 0, 0),
        new(128, 31, px / 4, px / 4, 62, 2, 2, 2, 2, 0, 0),
        new(128, 62, px / 8, px / 8, 124, 2, 2, 2, 2, 0, 0),
        new(128, 124, px / 16, px / 16, 249, 2, 2, 2, 2, 0, 0),
    ];

    private static string LayerName(int l, Conv2dShape s) =>
        Inv($"{(l == 0 ? "stem" : $"ds{l}")} {s.Cin}->{s.Cout} on {s.H}x{s.W}");

    private static double Flop(Conv2dShape s) => 2.0 * s.OutputSize * s.Cin * s.Kh * s.Kw;

    private static string Row(string layer, Pass pass, double flop, double tOld, double tNew, double peak, double refPeak)
    {
        double gOld = flop / tOld / 1e9, gNew = flop / tNew / 1e9;
        string row = Inv($"| {layer} | {pass} | {flop / 1e9:F4} | {tOld * 1e3:F3} | {tNew * 1e3:F3} | {tNew / tOld:F2} | {gOld:F1} | {gNew:F1} | {FmaPeak.PercentOf(gOld, peak)} | {FmaPeak.PercentOf(gNew, peak)} |");
        return double.IsNaN(refPeak) ? row : row + Inv($" {FmaPeak.PercentOf(gOld, refPeak)} | {FmaPeak.PercentOf(gNew, refPeak)} |");
    }

    // best[layer, pass] = (old seconds, new seconds).
    private static (double Old, double New)[,] Measure(Conv2dShape[] layers, int reps, Compare compare, double evictMib,
        int threads)
    {
        var evict = Enumerable.Range(0, evictMib > 0 ? threads : 0).Select(_ => new float[(int)(evictMib * (1 << 18))])
            .ToArray();
        var rng = new Random(27);
        float[] Rand(long n)
        {
            var a = new float[n];
            for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() - 0.5);
            return a;
        }
        var data = layers.Select(s => (X: Rand(s.InputSize), W: Rand(s.WeightSize), B: Rand(s.Cout), Dy: Rand(s.OutputSize),
            Y: new float[s.OutputSize], Dx: new float[s.InputSize], Dw: new float[s.WeightSize], Db: new float[s.Cout])).ToArray();
        var best = new (double Old, double New)[layers.Length, 3];
        for (int l = 0; l < layers.Length; l++)
            for (int p = 0; p < 3; p++) best[l, p] = (double.MaxValue, double.MaxValue);
        const int warmup = 5;
        for (int r = 0; r < warmup + reps; r++)
            for (int l = 0; l < layers.Length; l++)
                for (int p = 0; p < 3; p++)
                    for (int side = 0; side < 2; side++)
                    {
                        bool isNew = (side == 0) == (r % 2 == 0);
                        SelectPath(isNew, compare);
                        var s = layers[l];
                        var d = data[l];
                        if (evict.Length > 0) Evict(evict);
                        long t0 = Stopwatch.GetTimestamp();
                        switch ((Pass)p)
                        {
                            case Pass.Forward: CpuConv2d.Forward(s, d.X, d.W, d.B, d.Y); break;
                            case Pass.BackwardData: CpuConv2d.BackwardData(s, d.Dy, d.W, d.Dx); break;
                            default: CpuConv2d.BackwardFilter(s, d.X, d.Dy, d.Dw, d.Db); break;
                        }
                        double t = (double)(Stopwatch.GetTimestamp() - t0) / Stopwatch.Frequency;
                        if (r < warmup) continue;
                        var b = best[l, p];
                        best[l, p] = isNew ? (b.Old, Math.Min(b.New, t)) : (Math.Min(b.Old, t), b.New);
                    }
        SelectPath(true, compare);
        return best;
    }

    // What 'old' is: the direct path's first form of the weight gradient, the batched path, or the direct path's loops
    // for the one-pixel weight gradient.
    private enum Compare { FilterForm, Batched, WholeImageDw, PlaneMoves, MovesAndDw }

    // 'new' = the defaults; 'old' = the path the comparison names.
    private static void SelectPath(bool isNew, Compare compare)
    {
        CpuConv2d.DirectPatchify = isNew || compare != Compare.Batched;
        CpuConv2d.TunedFilterGradient = isNew || compare is not (Compare.FilterForm or Compare.Batched);
        CpuConv2d.WholeImageFilterGemm = isNew || compare == Compare.PlaneMoves;
        CpuConv2d.PlaneMoves = isNew || compare is not (Compare.PlaneMoves or Compare.MovesAndDw);
    }

    // Every thread reads its own buffer once (one float per cache line), pushing the operands of the last call out of
    // its core's L1/L2. The threads are held at a barrier so that each buffer is read on a core of its own.
    private static void Evict(float[][] buffers)
    {
        using var barrier = new Barrier(buffers.Length);
        var sums = new float[buffers.Length];
        var workers = buffers.Select((buf, t) => new Thread(() =>
        {
            barrier.SignalAndWait();
            float sum = 0;
            for (int i = 0; i < buf.Length; i += 16) sum += buf[i];
            sums[t] = sum;
        })).ToArray();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

}
