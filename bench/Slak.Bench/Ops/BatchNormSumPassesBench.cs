// Where the fused BatchNorm sum's time goes (issue 27), and its output-pass kernels old against new in one process:
// BatchNormTrainSum and BatchNormBackwardSum on every stage of slak_nano (8x8 .. 1x1 maps) and slak_nano64 (16x16 ..
// 2x2) at batch 128, two blocks per stage (each on its own tensors, as the step's layers are). old = SLAK_BN_SUM_SMALL=0
// and SLAK_BN_SUM_PLANES=0 (the previous default), new = the default: on 2x2 and 1x1 maps the three-branch row
// kernels (CpuBackend.Norm.BatchSumSmallMaps.cs), on 4x4, 8x8 and 16x16 one channel plane a call
// (CpuBackend.Norm.BatchSumPlanes.cs); the two switches touch disjoint shapes.
// 'statistics only / old' times the call without its output pass (the bench-only switch BatchNormSumStatisticsOnly),
// in rounds of its own against old: the statistics pass's share, the rest is the output pass. Bytes per call, every
// tensor read and written once: forward reads the three inputs and writes y (4 tensors; y's lines are also read
// before they are written, write-allocate: 5 tensors of DRAM traffic), backward reads dy and the three inputs and
// writes three dx (7 tensors; 10 with write-allocate); a part's inputs are read a second time from the core's L2 for
// the output pass (forward 7, backward 11 tensor passes through the core). Rates are the tensors' bytes over the
// time, against the cache and DRAM read bandwidth measured in the same run (MemoryBandwidth.MeasureForRun).
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll bn-sum-passes [--reps N] [--blocks N] [--fold] [--out FILE] [--note TEXT]
// --blocks 1: every round on the same tensors (the small stages then run from cache), default 2.
// --fold: old = SLAK_BN_SUM_FOLD=0 SLAK_BN_SUM_TAIL=0 SLAK_BN_SUM_COLUMNS=0 (per-channel folds with the parameter spans
// taken anew, the forward's branches summed one sweep each, small-map output kernels one image's range a call with
// scalar tails), new = the default (CpuBackend.Norm.BatchSumFold.cs, CpuBackend.Norm.BatchSumSmallColumns.cs, the
// overlapped last vector), every other switch at its default on both sides; the
// statistics column is then the statistics pass alone, new over old (both without their output pass).
using System.Globalization;
using Slak.Backends.Cpu;

namespace Slak.Bench.Ops;

internal static class BatchNormSumPassesBench
{
    private const int Batch = 128;
    private static int BlocksPerStage = 2;
    private static bool CompareFold;
    private static readonly int[] Widths = [31, 62, 124, 249];

    [BenchProgram("bn-sum-passes", "fused BatchNorm sum: statistics vs output pass, output-pass kernels (SLAK_BN_SUM_SMALL, SLAK_BN_SUM_PLANES) old/new, GB/s vs cache and DRAM [--reps N] [--blocks N] [--out FILE] [--note TEXT]")]
    private static int Run(string[] args)
    {
        int blocks = 2;
        bool fold = false;
        if (ReportArgs.Parse(args, defaultReps: 30, "--reps N, --out FILE, --note TEXT, --blocks N, --fold",
                (arg, next) => arg == "--fold" ? fold = true
                    : arg == "--blocks" && (blocks = int.Parse(next(), CultureInfo.InvariantCulture)) > 0) is not { } opts) return 2;
        BlocksPerStage = blocks;
        CompareFold = fold;
        int reps = opts.Reps, threads = CpuParallel.Threads;
        var o = new Report();
        string start = Inv($"{DateTime.UtcNow:u}; commit {RunInfo.Commit()}; {RunInfo.CpuModel()}, {Environment.ProcessorCount} cores; {threads} threads; load average at start {RunInfo.LoadAverage()}");
        var (cacheBw, dramBw) = MemoryBandwidth.MeasureForRun(threads, quick: false);
        o.Line("# bn-sum-passes: where the fused BatchNorm sum's time goes; its output-pass kernels old against new");
        o.Line();
        o.Line(Inv($"Program: `bn-sum-passes --reps {reps} --blocks {blocks}{(fold ? " --fold" : "")}` (bench/Slak.Bench/Ops/BatchNormSumPassesBench.cs); {start}."));
        if (opts.Note is not null) o.Line(opts.Note);
        o.Line(Inv($"Read bandwidth measured in this run (MemoryBandwidth.MeasureForRun): cache {cacheBw:F1} GB/s, DRAM {dramBw:F1} GB/s."));
        o.Line();
        if (fold)
            o.Line(Inv($"Best of {reps} interleaved rounds, ms per call ({BlocksPerStage} blocks a round, each on its own tensors). old = SLAK_BN_SUM_FOLD=0 SLAK_BN_SUM_TAIL=0 SLAK_BN_SUM_COLUMNS=0 (each channel folded alone, the parameter tensors' spans taken anew; the forward sums each branch in a sweep of its own; the small-map output kernels take one image's range a call, nine constant loads a vector, and end a range in a scalar loop), new = default (spans once per part and branch, eight channels a vector; the forward's three branches summed in one sweep; on 2x2 and 1x1 maps one vector column down the images a call with the constants in registers, the range's last vector overlapped); every other switch at its default on both sides. MB = the tensors each call reads and writes once (forward: 3 inputs + y; backward: dy + 3 inputs + 3 dx); GB/s = MB over the time. 'statistics only new / old' = the calls without their output pass, new against old in rounds of their own."));
        else
            o.Line(Inv($"Best of {reps} interleaved rounds, ms per call ({BlocksPerStage} blocks a round, each on its own tensors). old = SLAK_BN_SUM_SMALL=0 SLAK_BN_SUM_PLANES=0, new = default (2x2 and 1x1 maps: output passes in one three-branch 512-bit pass with per-position rows; 4x4 .. 16x16: one channel plane a call, the channel's scalars broadcast once). The statistics passes are the same code on both sides. MB = the tensors each call reads and writes once (forward: 3 inputs + y; backward: dy + 3 inputs + 3 dx); GB/s = MB over the time. 'statistics only / old' = the call without its output pass (rounds of its own against old): the rest of old is the output pass."));
        o.Line();
        o.Line($"| preset | op | branch shape | MB | old ms | new ms | new / old | {(fold ? "statistics only new / old" : "statistics only / old")} | old GB/s | new GB/s | new % of DRAM bw | new % of cache bw |");
        o.Line("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        Table(Math.Max(1, reps / 3), _ => { }, cacheBw, dramBw); // warm-up: the tiered JIT's first code is slower
        var steps = Table(reps, o.Line, cacheBw, dramBw);
        o.Line();
        o.Line(Inv($"Per step ({BlocksPerStage} blocks x 4 stages, the kernels alone):"));
        o.Line();
        o.Line("| preset | op | MB/step | old ms/step | new ms/step | new / old | old GB/s | new GB/s |");
        o.Line("|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var s in steps) o.Line(s);
        o.Line();
        o.Line(Inv($"Load average at end {RunInfo.LoadAverage()}; {DateTime.UtcNow:u}."));
        if (opts.Out is not null) File.WriteAllText(opts.Out, o.ToString());
        return 0;
    }

    private static List<string> Table(int reps, Action<string> line, double cacheBw, double dramBw)
    {
        var steps = new List<string>();
        foreach (var (preset, sides) in new[] { ("slak_nano", new[] { 8, 4, 2, 1 }), ("slak_nano64", new[] { 16, 8, 4, 2 }) })
        {
            double fOld = 0, fNew = 0, bOld = 0, bNew = 0, fBytes = 0, bBytes = 0;
            for (int s = 0; s < 4; s++)
            {
                var (fwd, bwd) = Stage(Widths[s], sides[s], reps);
                double tensor = 4.0 * Batch * Widths[s] * sides[s] * sides[s];
                string sh = Inv($"({Batch}, {Widths[s]}, {sides[s]}, {sides[s]})");
                Row(line, preset, "BatchNormTrainSum", sh, fwd, 4 * tensor, cacheBw, dramBw);
                Row(line, preset, "BatchNormBackwardSum", sh, bwd, 7 * tensor, cacheBw, dramBw);
                fOld += BlocksPerStage * fwd.Old; fNew += BlocksPerStage * fwd.New; fBytes += BlocksPerStage * 4 * tensor;
                bOld += BlocksPerStage * bwd.Old; bNew += BlocksPerStage * bwd.New; bBytes += BlocksPerStage * 7 * tensor;
            }
            steps.Add(Inv($"| {preset} | BatchNormTrainSum | {fBytes / 1e6:F1} | {fOld:F3} | {fNew:F3} | {fNew / fOld:F2} | {Rate(fBytes, fOld):F1} | {Rate(fBytes, fNew):F1} |"));
            steps.Add(Inv($"| {preset} | BatchNormBackwardSum | {bBytes / 1e6:F1} | {bOld:F3} | {bNew:F3} | {bNew / bOld:F2} | {Rate(bBytes, bOld):F1} | {Rate(bBytes, bNew):F1} |"));
        }
        return steps;
    }

    private static double Rate(double bytes, double ms) => bytes / (ms * 1e-3) / 1e9;

    private sealed record Times(double Old, double New, double StatisticsShare);

    /// <summary>One stage: best ms per call of old and new and the statistics pass's share, forward and
    /// backward.</summary>
    private static (Times Fwd, Times Bwd) Stage(int c, int side, int reps)
    {
        var rng = new Random(c * 173 + side);
        int[] shape = [Batch, c, side, side];
        int numel = Batch * c * side * side;
        var be = CpuBackend.Instance;
        Tensor[] Three(Func<Tensor> make) => [make(), make(), make()];
        var blocks = Enumerable.Range(0, BlocksPerStage).Select(_ => new
        {
            X = Three(() => Tensor.FromArray(BenchData.Uniform(rng, numel, 1.5, 0.3), shape, Device.Cpu)),
            Dy = Tensor.FromArray(BenchData.Uniform(rng, numel, 1, 0), shape, Device.Cpu),
            Y = Tensor.Empty(shape, Device.Cpu),
            Dx = Three(() => Tensor.Empty(shape, Device.Cpu)),
            W = Three(() => Tensor.FromArray(BenchData.Uniform(rng, c, 1, 1), [c], Device.Cpu)),
            B = Three(() => Tensor.FromArray(BenchData.Uniform(rng, c, 0.1, 0), [c], Device.Cpu)),
            Rm = Three(() => Tensor.Zeros([c], Device.Cpu)),
            Rv = Three(() => Tensor.Ones([c], Device.Cpu)),
            Sm = Three(() => Tensor.Empty([c], Device.Cpu)),
            Si = Three(() => Tensor.Empty([c], Device.Cpu)),
            Dw = Three(() => Tensor.Empty([c], Device.Cpu)),
            Db = Three(() => Tensor.Empty([c], Device.Cpu)),
        }).ToArray();
        float[] momenta = [0.1f, 0.1f, 0.1f], eps = [1e-5f, 1e-5f, 1e-5f];
        void Fwd()
        {
            foreach (var t in blocks) be.BatchNormTrainSum(t.X, t.W, t.B, t.Rm, t.Rv, momenta, eps, t.Y, t.Sm, t.Si);
        }
        void Bwd()
        {
            foreach (var t in blocks) be.BatchNormBackwardSum(t.X, t.W, t.Sm, t.Si, t.Dy, t.Dx, t.Dw, t.Db);
        }
        bool keep = CpuBackend.BatchNormSumSmallMaps, keepPlanes = CpuBackend.BatchNormSumPlanes;
        bool keepFold = CpuBackend.BatchNormSumFold, keepTail = CpuBackend.BatchNormSumOverlapTail;
        bool keepColumns = CpuBackend.BatchNormSumSmallColumns;
        try
        {
            Times Time(Action run)
            {
                Action With(bool fresh, bool statisticsOnly) => () =>
                {
                    CpuBackend.BatchNormSumSmallMaps = fresh || CompareFold;
                    CpuBackend.BatchNormSumPlanes = fresh || CompareFold;
                    CpuBackend.BatchNormSumFold = CpuBackend.BatchNormSumOverlapTail = fresh || !CompareFold;
                    CpuBackend.BatchNormSumSmallColumns = fresh || !CompareFold;
                    CpuBackend.BatchNormSumStatisticsOnly = statisticsOnly;
                    run();
                    CpuBackend.BatchNormSumStatisticsOnly = false;
                };
                var (old, neu) = Interleaved.Best(reps, With(false, false), With(true, false));
                var (old2, stats) = Interleaved.Best(reps, With(false, CompareFold), With(CompareFold, true));
                return new Times(old / BlocksPerStage, neu / BlocksPerStage, stats / old2);
            }
            return (Time(Fwd), Time(Bwd));
        }
        finally
        {
            CpuBackend.BatchNormSumSmallMaps = keep;
            CpuBackend.BatchNormSumPlanes = keepPlanes;
            CpuBackend.BatchNormSumFold = keepFold;
            CpuBackend.BatchNormSumOverlapTail = keepTail;
            CpuBackend.BatchNormSumSmallColumns = keepColumns;
            CpuBackend.BatchNormSumStatisticsOnly = false;
        }
    }

    private static void Row(Action<string> line, string preset, string op, string shape, Times t, double bytes,
                            double cacheBw, double dramBw)
    {
        double rNew = Rate(bytes, t.New);
        line(Inv($"| {preset} | {op} | {shape} | {bytes / 1e6:F2} | {t.Old:F4} | {t.New:F4} | {t.New / t.Old:F2} | {t.StatisticsShare:F2} | {Rate(bytes, t.Old):F1} | {rNew:F1} | {rNew / dramBw * 100:F0} | {rNew / cacheBw * 100:F0} |"));
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
