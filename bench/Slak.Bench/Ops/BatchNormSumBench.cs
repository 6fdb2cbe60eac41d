// The large kernel's training tail (issue 27), old against new in one process: y = BN_0(x_0) + BN_1(x_1) + BN_2(x_2)
// forward and backward on every stage of slak_nano (8x8 .. 1x1 maps) and slak_nano64 (16x16 .. 2x2) at batch 128, two
// blocks per stage (each on its own tensors). Old: the unfused path (three BatchNormTrain calls and two Adds forward,
// three BatchNormBackward calls on the shared gradient backward); new: BatchNormTrainSum / BatchNormBackwardSum (one
// call each way). Rounds are interleaved (alternating which side goes first), the best of N is kept. Bytes: the lower
// bound of the fused tail (forward: three inputs read, y written; backward: dy and three inputs read, three input
// gradients written), read against the cache and DRAM bandwidth measured in the same run; beside it, each side's own
// passes (old forward 15, backward 15 tensor passes; new forward 7, backward 11, of which dy and x are re-read from
// the thread's own cache).
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll bn-sum-step [--reps N] [--out FILE] [--note TEXT]
//     [--wide-only]
using System.Globalization;
using Slak.Backends.Cpu;
using Slak.Bench.Train;

namespace Slak.Bench.Ops;

internal static class BatchNormSumBench
{
    private const int Batch = 128;
    private const int Branches = 3;
    private const int BlocksPerStage = 2;
    private static readonly int[] Widths = [31, 62, 124, 249];

    [BenchProgram("bn-sum-step", "the large kernel's training BatchNorms + sum, unfused vs fused (BatchNormTrainSum/BatchNormBackwardSum), slak_nano/slak_nano64 stages, with cache and DRAM bandwidth [--reps N] [--out FILE] [--note TEXT] [--wide-only]")]
    private static int Run(string[] args)
    {
        bool wideOnly = false;
        if (ReportArgs.Parse(args, defaultReps: 30, "--reps N, --out FILE, --note TEXT, --wide-only",
                (arg, _) => arg == "--wide-only" && (wideOnly = true)) is not { } opts) return 2;
        _wideOnly = wideOnly;
        int reps = opts.Reps;
        var o = new Report();
        int threads = CpuParallel.Threads;
        string start = Inv($"{DateTime.UtcNow:u}; commit {RunInfo.Commit()}; {RunInfo.CpuModel()}, {Environment.ProcessorCount} cores; {threads} threads");
        string loadStart = RunInfo.LoadAverage();
        // As norm-step: on a loaded machine the threads of a burst rarely run together, so the larger of the
        // all-thread burst and the one-thread rate times the threads.
        double cacheBw = Math.Max(MemoryBandwidth.Read(threads, 256 << 10, 200),
            MemoryBandwidth.Read(1, 256 << 10, 200) * threads);
        double dramBw = MemoryBandwidth.Read(threads, 64 << 20, 15);
        o.Line("# bn-sum-step: the large kernel's training BatchNorms and their sum, unfused vs fused");
        o.Line();
        o.Line(Inv($"Program: `bn-sum-step --reps {reps}{(wideOnly ? " --wide-only" : "")}` (bench/Slak.Bench/Ops/BatchNormSumBench.cs); {start}; load average at start {loadStart}."));
        if (opts.Note is not null) o.Line(opts.Note);
        o.Line(Inv($"Read bandwidth measured in this run: cache (256 KiB per thread) {cacheBw:F1} GB/s, DRAM (64 MiB per thread) {dramBw:F1} GB/s."));
        o.Line();
        o.Line(Inv($"Best of {reps} interleaved rounds; a round runs the {BlocksPerStage} blocks of a stage (each on its own tensors). old = {Branches} x BatchNormTrain + {Branches - 1} x Add forward, {Branches} x BatchNormBackward backward; new = one BatchNormTrainSum / BatchNormBackwardSum. ms per block. 'MB (bound)' = the fused tail's least traffic (forward 4, backward 7 tensors); the rates and fractions are that traffic over the time (new). Two choices inside the fused kernels, each timed against the default in rounds of its own (time ratio; above 1: the default is faster): 'threads-only parts' = channel ranges split by the thread count alone (BatchNormSumPartBytes unlimited; default: parts of at most that many bytes of inputs, so that they are still in L2 for the output pass); 'row outputs' = the output passes reading per-position scale rows (BatchNormSumChannelScalars off; default: each channel's scalars on maps of at least one vector); 'per-branch sweeps' (backward) = the column sums of dy and dy * x_b swept once per branch (BatchNormSumOneSweep off; default: one sweep for the three branches); '256-bit kernels' = the fused kernels' 256-bit column sums and per-branch output passes (BatchNormSumWide off, SLAK_BN_SUM_WIDE=0; default: whole cache lines as 512-bit vectors, four lines a sweep forward, two per stream backward, the three branches' outputs in one pass), with its ms (new ms x that ratio) and rate."));
        o.Line();
        o.Line("| preset | pass | branch shape | old ms | new ms | new / old | threads-only parts / default | row outputs / default | per-branch sweeps / default | 256-bit kernels / default | 256-bit ms | 256-bit GB/s | MB (bound) | old GB/s | new GB/s | new % of cache bw | new % of DRAM bw |");
        o.Line("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        Table(Math.Max(1, reps / 3), _ => { }, cacheBw, dramBw); // warm-up: the tiered JIT's first code is slower
        var steps = Table(reps, o.Line, cacheBw, dramBw);
        o.Line();
        o.Line(Inv($"Per step ({BlocksPerStage} blocks x 4 stages; the kernels alone, back to back):"));
        o.Line();
        o.Line("| preset | pass | old ms/step | new ms/step | new / old |");
        o.Line("|---|---|---:|---:|---:|");
        foreach (var s in steps) o.Line(s);
        o.Line();
        o.Line(Inv($"Load average at end {RunInfo.LoadAverage()}; {DateTime.UtcNow:u}."));
        if (opts.Out is not null) File.WriteAllText(opts.Out, o.ToString());
        return 0;
    }

    /// <summary>--wide-only: time only old/new and the 256-bit kernels against the default (the other choices' columns
    /// empty), for a quick A/B of the switch.</summary>
    private static bool _wideOnly;

    private static List<string> Table(int reps, Action<string> line, double cacheBw, double dramBw)
    {
        var steps = new List<string>();
        foreach (var (preset, sides) in new[] { ("slak_nano", new[] { 8, 4, 2, 1 }), ("slak_nano64", new[] { 16, 8, 4, 2 }) })
        {
            double fOld = 0, fNew = 0, bOld = 0, bNew = 0;
            for (int s = 0; s < 4; s++)
            {
                var (fwd, bwd) = Stage(Widths[s], sides[s], reps);
                long numel = (long)Batch * Widths[s] * sides[s] * sides[s];
                string sh = Inv($"({Batch}, {Widths[s]}, {sides[s]}, {sides[s]})");
                Row(line, preset, "forward", sh, fwd, (Branches + 1) * numel * 4.0, cacheBw, dramBw);
                Row(line, preset, "backward", sh, bwd, (2 * Branches + 1) * numel * 4.0, cacheBw, dramBw);
                fOld += BlocksPerStage * fwd.Old; fNew += BlocksPerStage * fwd.New;
                bOld += BlocksPerStage * bwd.Old; bNew += BlocksPerStage * bwd.New;
            }
            steps.Add(Inv($"| {preset} | forward | {fOld:F3} | {fNew:F3} | {fNew / fOld:F2} |"));
            steps.Add(Inv($"| {preset} | backward | {bOld:F3} | {bNew:F3} | {bNew / bOld:F2} |"));
        }
        return steps;
    }

    /// <summary>One stage: best ms per block of each side, forward and backward.</summary>
    private static ((double Old, double New, double ThreadParts, double RowOutputs, double BranchSweeps, double Narrow) Fwd, (double Old, double New, double ThreadParts, double RowOutputs, double BranchSweeps, double Narrow) Bwd) Stage(int c, int side, int reps)
    {
        var rng = new Random(c * 173 + side);
        int[] shape = [Batch, c, side, side];
        int numel = Batch * c * side * side;
        var be = CpuBackend.Instance;
        Tensor[] Many(Func<Tensor> make) => Enumerable.Range(0, Branches).Select(_ => make()).ToArray();
        var blocks = Enumerable.Range(0, BlocksPerStage).Select(_ => new
        {
            X = Many(() => Tensor.FromArray(BenchData.Uniform(rng, numel, 1.5, 0.3), shape, Device.Cpu)),
            Dy = Tensor.FromArray(BenchData.Uniform(rng, numel, 1, 0), shape, Device.Cpu),
            Ys = Many(() => Tensor.Empty(shape, Device.Cpu)),
            Sum01 = Tensor.Empty(shape, Device.Cpu),
            Y = Tensor.Empty(shape, Device.Cpu),
            Dx = Many(() => Tensor.Empty(shape, Device.Cpu)),
            W = Many(() => Tensor.FromArray(BenchData.Uniform(rng, c, 1, 1), [c], Device.Cpu)),
            B = Many(() => Tensor.FromArray(BenchData.Uniform(rng, c, 0.1, 0), [c], Device.Cpu)),
            Rm = Many(() => Tensor.Zeros([c], Device.Cpu)),
            Rv = Many(() => Tensor.Ones([c], Device.Cpu)),
            Sm = Many(() => Tensor.Empty([c], Device.Cpu)),
            Si = Many(() => Tensor.Empty([c], Device.Cpu)),
            Dw = Many(() => Tensor.Empty([c], Device.Cpu)),
            Db = Many(() => Tensor.Empty([c], Device.Cpu)),
        }).ToArray();
        float[] momenta = [.. Enumerable.Repeat(0.1f, Branches)], eps = [.. Enumerable.Repeat(1e-5f, Branches)];
        void Fwd(bool fused)
        {
            foreach (var t in blocks)
            {
                if (fused)
                {
                    be.BatchNormTrainSum(t.X, t.W, t.B, t.Rm, t.Rv, momenta, eps, t.Y, t.Sm, t.Si);
                    continue;
                }
                for (int b = 0; b < Branches; b++)
                    be.BatchNormTrain(t.X[b], t.W[b], t.B[b], t.Rm[b], t.Rv[b], 0.1f, 1e-5f, t.Ys[b], t.Sm[b], t.Si[b]);
                be.Add(t.Ys[0], t.Ys[1], t.Sum01);
                be.Add(t.Sum01, t.Ys[2], t.Y);
            }
        }
        void Bwd(bool fused)
        {
            foreach (var t in blocks)
            {
                if (fused)
                {
                    be.BatchNormBackwardSum(t.X, t.W, t.Sm, t.Si, t.Dy, t.Dx, t.Dw, t.Db);
                    continue;
                }
                for (int b = 0; b < Branches; b++)
                    be.BatchNormBackward(t.X[b], t.W[b], t.Sm[b], t.Si[b], t.Dy, t.Dx[b], t.Dw[b], t.Db[b]);
            }
        }
        var f = Interleaved.Best(reps, () => Fwd(false), () => Fwd(true));
        var g = Interleaved.Best(reps, () => Bwd(false), () => Bwd(true));
        // Two choices inside the fused kernels, each against the default in rounds of its own: channel ranges split by
        // the thread count only (no cache-sized parts), and the output passes reading per-position rows instead of
        // each channel's scalars.
        int keep = CpuBackend.BatchNormSumPartBytes;
        void Parts(bool bySize) => CpuBackend.BatchNormSumPartBytes = bySize ? keep : int.MaxValue;
        void Scalars(bool on) => CpuBackend.BatchNormSumChannelScalars = on;
        void Sweep(bool one) => CpuBackend.BatchNormSumOneSweep = one;
        void Wide(bool on) => CpuBackend.BatchNormSumWide = on;
        try
        {
            if (_wideOnly)
            {
                var fw = Interleaved.Best(reps, () => { Wide(false); Fwd(true); }, () => { Wide(true); Fwd(true); });
                var gw1 = Interleaved.Best(reps, () => { Wide(false); Bwd(true); }, () => { Wide(true); Bwd(true); });
                return ((f.A / BlocksPerStage, f.B / BlocksPerStage, double.NaN, double.NaN, double.NaN, fw.A / fw.B),
                        (g.A / BlocksPerStage, g.B / BlocksPerStage, double.NaN, double.NaN, double.NaN, gw1.A / gw1.B));
            }
            var fp = Interleaved.Best(reps, () => { Parts(false); Fwd(true); }, () => { Parts(true); Fwd(true); });
            var gp = Interleaved.Best(reps, () => { Parts(false); Bwd(true); }, () => { Parts(true); Bwd(true); });
            Parts(true);
            var fs = Interleaved.Best(reps, () => { Scalars(false); Fwd(true); }, () => { Scalars(true); Fwd(true); });
            var gs = Interleaved.Best(reps, () => { Scalars(false); Bwd(true); }, () => { Scalars(true); Bwd(true); });
            Scalars(true);
            var gw = Interleaved.Best(reps, () => { Sweep(false); Bwd(true); }, () => { Sweep(true); Bwd(true); });
            Sweep(true);
            var fn = Interleaved.Best(reps, () => { Wide(false); Fwd(true); }, () => { Wide(true); Fwd(true); });
            var gn = Interleaved.Best(reps, () => { Wide(false); Bwd(true); }, () => { Wide(true); Bwd(true); });
            return ((f.A / BlocksPerStage, f.B / BlocksPerStage, fp.A / fp.B, fs.A / fs.B, double.NaN, fn.A / fn.B),
                    (g.A / BlocksPerStage, g.B / BlocksPerStage, gp.A / gp.B, gs.A / gs.B, gw.A / gw.B, gn.A / gn.B));
        }
        finally
        {
            CpuBackend.BatchNormSumPartBytes = keep;
            CpuBackend.BatchNormSumChannelScalars = true;
            CpuBackend.BatchNormSumOneSweep = true;
            CpuBackend.BatchNormSumWide = true;
        }
    }

    private static void Row(Action<string> line, string preset, string pass, string shape,
                            (double Old, double New, double ThreadParts, double RowOutputs, double BranchSweeps, double Narrow) t, double bytes, double cacheBw, double dramBw)
    {
        double Rate(double ms) => bytes / (ms * 1e-3) / 1e9;
        line(Inv($"| {preset} | {pass} | {shape} | {t.Old:F4} | {t.New:F4} | {t.New / t.Old:F2} | {Opt(t.ThreadParts)} | {Opt(t.RowOutputs)} | {Opt(t.BranchSweeps)} | {t.Narrow:F2} | {t.New * t.Narrow:F4} | {Rate(t.New * t.Narrow):F1} | {bytes / 1e6:F2} | {Rate(t.Old):F1} | {Rate(t.New):F1} | {Rate(t.New) / cacheBw * 100:F0} | {Rate(t.New) / dramBw * 100:F0} |"));
    }

    private static string Opt(double ratio) => double.IsNaN(ratio) ? "" : Inv($"{ratio:F2}");

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
