// `step-fixed-costs`: the per-step costs of the CPU training step outside the big operators (issue 27): the
// autograd engine's bookkeeping, the leaf gradients, the optimizer, the host work of forward and backward closures,
// the tensor scopes and the garbage collector. The step is train-vs-torch's (SyntheticTrainStep's recipe: batch 128,
// AdamW, ERK masks, synthetic images), here with one profiler region around each phase of the step (forward, loss,
// backward, scope disposal, optimizer, mask upkeep, gradient release), so that a phase's exclusive time is its host
// work: what train-vs-torch reports as "(outside regions)" split by phase.
// For each preset it reports: allocated bytes per step (all threads), garbage collections and GC pause time per step,
// the profile rows of the fixed costs (and the same rows inside a no-GC region, which shows the rows that collections
// land in), AdamW's traffic against the read bandwidth measured in the same run, the cost of one fork/join and of one
// profiler region, and, steps alternating between the old paths and the new (ABBA order), each phase's median wall
// time and the median paired difference. Old: leaf gradients copied (SLAK_LEAF_GRAD_ADOPT=0) and gradients cleared
// through the named parameter walk, as Module.ZeroGrad did before; new: the defaults.
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll step-fixed-costs [--presets slak_nano,slak_nano64] [--steps 40] [--warmup 50] [--profile-steps 10] [--out FILE] [--note TEXT]
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Autograd;
using Slak.Backends.Cpu;
using Slak.Diagnostics;
using Slak.Optim;

namespace Slak.Bench.Train;

internal static class StepFixedCosts
{
    [BenchProgram("step-fixed-costs", "training step's fixed costs (autograd, leaf gradients, optimizer, closures, GC) old/new, alternating steps [--presets P,Q] [--steps N] [--warmup N] [--profile-steps N] [--out FILE] [--note TEXT]")]
    private static int Run(string[] args)
    {
        string? Arg(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        int steps = int.Parse(Arg("--steps") ?? "40", CultureInfo.InvariantCulture);
        int warmup = int.Parse(Arg("--warmup") ?? "50", CultureInfo.InvariantCulture);
        int profileSteps = int.Parse(Arg("--profile-steps") ?? "10", CultureInfo.InvariantCulture);
        var presets = (Arg("--presets") ?? "slak_nano,slak_nano64").Split(',');
        var sb = new StringBuilder();
        void Line(string s) { Console.WriteLine(s); sb.Append(s).Append('\n'); }
        Line("# Fixed per-step costs of the CPU training step (`step-fixed-costs`)");
        Line("");
        Line(Inv($"{DateTime.UtcNow:u}; commit {RunInfo.Commit()}; {RunInfo.CpuModel()}, {Environment.ProcessorCount} cores; {CpuParallel.Threads} threads; batch 128; {warmup} warm-up steps; GC: {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}{(Environment.GetEnvironmentVariable("DOTNET_GCgen0size") is { } gen0Size ? $", DOTNET_GCgen0size={gen0Size}" : "")}. Load average before: {RunInfo.LoadAverage()}."));
        if (Arg("--note") is { } note) Line(note);
        Line("");
        var (l2Bw, l3Bw, dramBw) = MemoryBandwidth.MeasureLevels(CpuParallel.Threads, quick: false);
        Line(Inv($"Read bandwidth measured in this run (MemoryBandwidth): L2 {l2Bw:F1} GB/s, L3 {l3Bw:F1} GB/s, DRAM {dramBw:F1} GB/s on {CpuParallel.Threads} threads."));
        var (forkUs, forkBytes) = ForkJoinCost(CpuParallel.Threads);
        Line(Inv($"Fork/join of CpuParallel.For (Parallel.For, {CpuParallel.Threads} items of no work, {CpuParallel.Threads} threads): {forkUs:F1} us and {forkBytes:F0} bytes allocated per call (median of 2000 calls in batches of 100)."));
        Line("");
        Line("old = leaf gradients copied (SLAK_LEAF_GRAD_ADOPT=0) and gradients cleared through the named parameter walk (Module.ZeroGrad before issue 27); new = the defaults. The step is train-vs-torch's (forward, backward, AdamW, mask upkeep) with one profiler region per phase: a phase's row is its exclusive time, i.e. host work outside every backend call and engine region.");
        var summary = new List<string>();
        bool was = AutogradEngine.AdoptLeafGradients;
        try
        {
            foreach (string name in presets)
            {
                var (step, optimizer) = Build(name, 128);
                for (int i = 0; i < warmup; i++)
                {
                    OldPaths = i % 2 == 0;
                    step();
                }
                Line("");
                Line($"## {name}");
                Line("");
                Line("| side | allocated KB/step, all threads | of which on the step's thread | gen0 / gen1 / gen2 GCs per 100 steps | GC pause ms/step |");
                Line("|---|---:|---:|---:|---:|");
                foreach (bool adopt in new[] { true, false, true, false })
                {
                    OldPaths = !adopt;
                    step();
                    GC.Collect();
                    long a0 = GC.GetTotalAllocatedBytes(precise: true), own0 = GC.GetAllocatedBytesForCurrentThread();
                    int g0 = GC.CollectionCount(0), g1 = GC.CollectionCount(1), g2 = GC.CollectionCount(2);
                    var p0 = GC.GetTotalPauseDuration();
                    for (int i = 0; i < steps; i++) step();
                    long bytes = GC.GetTotalAllocatedBytes(precise: true) - a0, own = GC.GetAllocatedBytesForCurrentThread() - own0;
                    double pause = (GC.GetTotalPauseDuration() - p0).TotalMilliseconds;
                    Line(Inv($"| {(adopt ? "new" : "old")} | {bytes / 1024.0 / steps:F1} | {own / 1024.0 / steps:F1} | {100.0 * (GC.CollectionCount(0) - g0) / steps:F1} / {100.0 * (GC.CollectionCount(1) - g1) / steps:F1} / {100.0 * (GC.CollectionCount(2) - g2) / steps:F1} | {pause / steps:F3} |"));
                }
                Line("");
                Line("Allocations by type (the runtime's allocation ticks: one sample per ~100 KB allocated, so the counts are proportional to bytes), new side:");
                Line("");
                OldPaths = false;
                using (var ticks = new AllocationTicks())
                {
                    for (int i = 0; i < steps; i++) step();
                    Line("| type | samples |");
                    Line("|---|---:|");
                    foreach (var (type, n) in ticks.Counts.OrderByDescending(kv => kv.Value).Take(12).Select(kv => (kv.Key, kv.Value)))
                        Line(Inv($"| {type} | {n} |"));
                }
                Line("");
                // The same steps with the collector held off (a no-GC region): the rows a collection lands in shrink.
                {
                    bool noGc = GC.TryStartNoGCRegion(200L << 20);
                    OpProfiler.Enabled = true;
                    OpProfiler.Reset();
                    long t0 = Stopwatch.GetTimestamp();
                    for (int i = 0; i < profileSteps; i++) step();
                    double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds / profileSteps;
                    var rows = OpProfiler.Snapshot().GroupBy(r => OpOf(r.Name)).ToDictionary(g => g.Key, g => 1e3 * g.Sum(r => r.Seconds) / profileSteps);
                    OpProfiler.Enabled = false;
                    if (noGc && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
                    Line(Inv($"New side without collections ({(noGc ? "no-GC region" : "no-GC region refused")}), {profileSteps} profiled steps, {ms:F1} ms per step: ") +
                        string.Join(", ", rows.Where(kv => kv.Key.Contains('.') || kv.Key is "Copy" or "bwd Copy").OrderByDescending(kv => kv.Value).Select(kv => Inv($"{kv.Key} {kv.Value:F3}"))) + " ms/step.");
                }
                Line("");
                var profiles = new Dictionary<bool, (List<(string Name, long Calls, double Seconds)> Rows, double StepMs)>();
                foreach (bool adopt in new[] { false, true })
                {
                    OldPaths = !adopt;
                    OpProfiler.Enabled = true;
                    OpProfiler.Reset();
                    long t0 = Stopwatch.GetTimestamp();
                    for (int i = 0; i < profileSteps; i++) step();
                    double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds / profileSteps;
                    profiles[adopt] = (OpProfiler.Snapshot().ToList(), ms);
                    OpProfiler.Enabled = false;
                }
                Line(Inv($"Profile, {profileSteps} steps per side (profiled step: old {profiles[false].StepMs:F1} ms, new {profiles[true].StepMs:F1} ms); ms per step, rows of the fixed costs and the largest others:"));
                Line("");
                Line("| row | old calls/step | old ms/step | new calls/step | new ms/step |");
                Line("|---|---:|---:|---:|---:|");
                var byOp = profiles.ToDictionary(kv => kv.Key, kv => kv.Value.Rows.GroupBy(r => OpOf(r.Name))
                    .ToDictionary(g => g.Key, g => (Calls: g.Sum(r => r.Calls) / (double)profileSteps, Ms: 1e3 * g.Sum(r => r.Seconds) / profileSteps)));
                var names = byOp[false].Keys.Union(byOp[true].Keys)
                    .OrderByDescending(k => Math.Max(byOp[false].GetValueOrDefault(k).Ms, byOp[true].GetValueOrDefault(k).Ms)).ToList();
                foreach (var k in names)
                {
                    var o = byOp[false].GetValueOrDefault(k);
                    var n = byOp[true].GetValueOrDefault(k);
                    if (Math.Max(o.Ms, n.Ms) < 0.02) continue;
                    Line(Inv($"| {k} | {o.Calls:F0} | {o.Ms:F3} | {n.Calls:F0} | {n.Ms:F3} |"));
                }
                foreach (bool adopt in new[] { false, true })
                {
                    double inRegions = byOp[adopt].Values.Sum(v => v.Ms);
                    Line(Inv($"| (outside regions, {(adopt ? "new" : "old")}) | | {(adopt ? "" : $"{profiles[false].StepMs - inRegions:F3}")} | | {(adopt ? $"{profiles[true].StepMs - inRegions:F3}" : "")} |"));
                }
                Line("");

                // Old and new steps alternate; a pair's difference (new - old) cancels most of the machine's drift.
                var off = new double[4][];
                var on = new double[4][];
                for (int k = 0; k < 4; k++) { off[k] = new double[steps]; on[k] = new double[steps]; }
                var offKb = new double[4][];
                var onKb = new double[4][];
                for (int k = 0; k < 4; k++) { offKb[k] = new double[steps]; onKb[k] = new double[steps]; }
                for (int i = 0; i < 2 * steps; i++)
                {
                    bool adopt = (i % 2 == 1) ^ (i / 2 % 2 == 1); // ABBA: each side goes first in half the pairs
                    OldPaths = !adopt;
                    step();
                    for (int k = 0; k < 4; k++) (adopt ? on : off)[k][i / 2] = PhaseMs[k];
                    for (int k = 0; k < 4; k++) (adopt ? onKb : offKb)[k][i / 2] = PhaseBytes[k] / 1024.0;
                }
                Line(Inv($"Unprofiled wall time by phase, {steps} old and {steps} new steps alternating (ms; the paired difference is the median of new - old over the {steps} pairs):"));
                Line("");
                Line("| phase | old median | new median | paired difference new - old | new / old | old KB allocated (step's thread, median) | new KB |");
                Line("|---|---:|---:|---:|---:|---:|---:|");
                for (int k = 0; k < 4; k++)
                {
                    var diff = on[k].Zip(off[k], (a, b) => a - b).ToArray();
                    Line(Inv($"| {PhaseNames[k]} | {Median(off[k]):F3} | {Median(on[k]):F3} | {Median(diff):+0.000;-0.000} | {Median(on[k]) / Median(off[k]):F3} | {Median(offKb[k]):F1} | {Median(onKb[k]):F1} |"));
                }
                Line("");
                double mOff = Median(off[3]), mOn = Median(on[3]), bOff = off[3].Min(), bOn = on[3].Min();
                // AdamW's traffic: read p, g, m, v (and the mask), write p, m, v, once per element.
                double adamBytes = optimizer.States.Sum(st => st.Parameter.Numel * 4.0 * (7 + (st.Mask is null ? 0 : 1)));
                double adamMs = byOp[true].GetValueOrDefault("AdamWStepGroup").Ms;
                long forks = profiles[true].Rows.Where(r => r.Name.StartsWith("fork/join", StringComparison.Ordinal)).Sum(r => r.Calls) / profileSteps;
                Line(Inv($"AdamW: {optimizer.States.Sum(st => st.Parameter.Numel) / 1e6:F2} M parameters, {adamBytes / 1e6:F1} MB of traffic per step (p, g, m, v and the mask read, p, m, v written), AdamWStepGroup {adamMs:F3} ms/step (new side's profile) = {adamBytes / adamMs / 1e6:F1} GB/s, {100 * adamBytes / adamMs / 1e6 / dramBw:F0}% of the DRAM and {100 * adamBytes / adamMs / 1e6 / l3Bw:F0}% of the L3 read bandwidth measured above."));
                Line(Inv($"Fork/joins per step (profile count): {forks}; at the fork/join cost measured above: {forks * forkUs / 1e3:F2} ms/step."));
                long regions = profiles[true].Rows.Where(r => !r.Name.StartsWith("fork/join", StringComparison.Ordinal)).Sum(r => r.Calls) / profileSteps;
                double regionUs = ProfilerRegionCost();
                Line(Inv($"Profiler: {regions} regions per step at {regionUs:F2} us each (a kernel region: its name formatted from method and shape, the clock read twice, the table entry found) = {regions * regionUs / 1e3:F2} ms/step of the profiled step's host work that the unprofiled step does not have."));
                Line("");
                Line(Inv($"Step time (unprofiled, {steps} steps per side, alternating): old median {mOff:F2} ms, new median {mOn:F2} ms, new / old {mOn / mOff:F3}; best old {bOff:F2} ms, new {bOn:F2} ms, new / old {bOn / bOff:F3}."));
                summary.Add(Inv($"{name} {mOn / mOff:F3} (median), {bOn / bOff:F3} (best)"));
            }
        }
        finally
        {
            AutogradEngine.AdoptLeafGradients = was;
            OpProfiler.Enabled = false;
        }
        Line("");
        Line(Inv($"Load average after: {RunInfo.LoadAverage()}; {DateTime.UtcNow:u}."));
        Line("");
        Line("step-fixed-costs: step time new / old: " + string.Join("; ", summary) + ".");
        if (Arg("--out") is { } outPath) File.WriteAllText(outPath, sb.ToString());
        return 0;
    }

    /// <summary>SyntheticTrainStep's step with a profiler region around each phase; with <see cref="OldPaths"/> the
    /// gradients are cleared the way Module.ZeroGrad did before issue 27 (through the named parameter walk).</summary>
    private static (Action Step, AdamW Optimizer) Build(string presetName, int batch)
    {
        var parts = SyntheticTrainParts.Create(presetName, batch);
        var (model, optimizer, masking) = (parts.Model, parts.Optimizer, parts.Masking);
        long step = 0;
        return (() =>
        {
            long t0 = Stopwatch.GetTimestamp(), b0 = GC.GetAllocatedBytesForCurrentThread();
            var scope = TensorScope.Begin();
            Tensor loss;
            using (OpProfiler.Measure("step.forward"))
            {
                loss = F.CrossEntropy(parts.Trainable.Forward(parts.Input()), parts.Labels);
            }
            using (OpProfiler.Measure("step.loss.Item"))
                if (!float.IsFinite(loss.Item())) throw new InvalidOperationException("step-fixed-costs: loss is not finite");
            long t1 = Stopwatch.GetTimestamp(), b1 = GC.GetAllocatedBytesForCurrentThread();
            using (OpProfiler.Measure("step.backward")) loss.Backward();
            using (OpProfiler.Measure("step.scope")) scope.Dispose();
            long t2 = Stopwatch.GetTimestamp(), b2 = GC.GetAllocatedBytesForCurrentThread();
            using (TensorScope.Begin())
            using (GradMode.NoGrad())
            {
                using (OpProfiler.Measure("step.optimizer")) optimizer.Step();
                using (OpProfiler.Measure("step.masking")) masking.AfterOptimizerStep(++step, optimizer);
                using (OpProfiler.Measure("step.zerograd"))
                {
                    if (!OldPaths) model.ZeroGrad();
                    else foreach (var p in model.NamedParameters().Select(n => n.Tensor)) p.ZeroGrad();
                }
            }
            long t3 = Stopwatch.GetTimestamp(), b3 = GC.GetAllocatedBytesForCurrentThread();
            PhaseBytes[0] = b1 - b0;
            PhaseBytes[1] = b2 - b1;
            PhaseBytes[2] = b3 - b2;
            PhaseBytes[3] = b3 - b0;
            PhaseMs[0] = Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds;
            PhaseMs[1] = Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds;
            PhaseMs[2] = Stopwatch.GetElapsedTime(t2, t3).TotalMilliseconds;
            PhaseMs[3] = Stopwatch.GetElapsedTime(t0, t3).TotalMilliseconds;
        }, optimizer);
    }

    /// <summary>Wall time of the last step's phases: forward (with the loss), backward (with the scope's disposal),
    /// optimizer (AdamW, mask upkeep, clearing the gradients), and the whole step.</summary>
    private static readonly double[] PhaseMs = new double[4];

    /// <summary>Bytes the last step's phases allocated on the step's thread.</summary>
    private static readonly long[] PhaseBytes = new long[4];

    private static readonly string[] PhaseNames = ["forward", "backward", "optimizer + zero grad", "step"];

    /// <summary>Counts the runtime's allocation-tick events by type while alive.</summary>
    private sealed class AllocationTicks : System.Diagnostics.Tracing.EventListener
    {
        public System.Collections.Concurrent.ConcurrentDictionary<string, int> Counts { get; } = new();

        protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
                EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1);
        }

        protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
        {
            if (e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.PayloadNames is null) return;
            int i = e.PayloadNames.IndexOf("TypeName");
            string type = i >= 0 ? e.Payload![i] as string ?? "?" : "?";
            Counts.AddOrUpdate(type, 1, (_, n) => n + 1);
        }
    }

    /// <summary>Median wall time and allocated bytes of one CpuParallel.For over <paramref name="threads"/> empty
    /// items.</summary>
    private static (double Us, double Bytes) ForkJoinCost(int threads)
    {
        for (int i = 0; i < 200; i++) CpuParallel.For(0, threads, _ => { });
        var us = new double[20];
        long a0 = GC.GetTotalAllocatedBytes(precise: true);
        for (int b = 0; b < us.Length; b++)
        {
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < 100; i++) CpuParallel.For(0, threads, _ => { });
            us[b] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds / 100;
        }
        double bytes = (GC.GetTotalAllocatedBytes(precise: true) - a0) / (us.Length * 100.0);
        return (Median(us), bytes);
    }

    /// <summary>Median cost of one profiled kernel region (as ProfilingBackend opens one per backend call), in us.</summary>
    private static double ProfilerRegionCost()
    {
        using var t = Tensor.Empty([128, 31, 8, 8], Device.Cpu);
        bool was = OpProfiler.Enabled;
        OpProfiler.Enabled = true;
        var us = new double[20];
        for (int b = 0; b < us.Length; b++)
        {
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < 1000; i++)
                using (OpProfiler.MeasureKernel("ProfilerRegionCost", t)) { }
            us[b] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds / 1000;
        }
        OpProfiler.Enabled = was;
        OpProfiler.Reset();
        return Median(us);
    }

    /// <summary>The old side: every switch of this program off.</summary>
    private static bool OldPaths
    {
        get => !AutogradEngine.AdoptLeafGradients;
        set => AutogradEngine.AdoptLeafGradients = !value;
    }

    private static string OpOf(string name)
    {
        int paren = name.IndexOf(" (", StringComparison.Ordinal);
        return paren < 0 ? name : name[..paren];
    }

    private static double Median(double[] v)
    {
        var s = (double[])v.Clone();
        Array.Sort(s);
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
