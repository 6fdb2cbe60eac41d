// `train-vs-torch`: in one run on one machine, the FMA peak and the cache / DRAM read bandwidth, then the project's CPU
// training step (forward, backward, AdamW, mask upkeep) and the same architecture in Debian's PyTorch
// (bench/torch/train_peer.py: dense math, masks multiplied after each step, same batch and threads) for slak_nano and
// slak_nano64, and a per-operator roofline table of our step from the profiler (SLAK_PROFILE's backend decorator,
// switched on in-process): ms, % of the step, FLOPs or bytes, achieved rate, fraction of the measured peak or
// bandwidth, and PyTorch's time (torch.profiler self CPU time) for the operator's category. Writes
// bench/results/train-vs-torch.md (or --out); last line:
//   train-vs-torch: slak_nano x<r>, slak_nano64 x<r>, step FMA utilisation <p>% / <p>%
// where the utilisation is the FLOPs of GEMMs, convolutions and in-bounds kept depthwise taps per step over the
// (unprofiled) step time and the measured peak. `--short` runs a few steps only (smoke test, numbers meaningless).
// Steady state: .NET's tiered JIT (with dynamic PGO) replaces a method's first code only after about 30 calls and a
// background compile, and most backend methods run a few times per step, so the first few dozen steps are slower
// than the thousands of a real run (slak_nano on 2 threads: 64 ms per step after 5 warm-up steps, 43 ms after 60,
// same machine and minute). Our step is timed after `--warmup` steps (default 50); the median of warm-up steps 6-25
// is reported beside it, so the effect stays visible.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text;
using System.Text.RegularExpressions;
using Slak.Backends.Cpu;
using Slak.Bench.DwConv;
using Slak.Diagnostics;
using Slak.Models;
using Slak.NN;

namespace Slak.Bench.Train;

internal static partial class TrainVsTorch
{
    private static readonly string[] PresetNames = ["slak_nano", "slak_nano64"];
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    [BenchProgram("train-vs-torch", "training step vs PyTorch (slak_nano, slak_nano64, batch 128) + per-operator roofline [--short]")]
    private static int Run(string[] args)
    {
        bool quick = args.Contains("--short");
        int threads = DwConvBench.ParseInt(args, "--threads", CpuParallel.Threads);
        int batch = DwConvBench.ParseInt(args, "--batch", 128);
        int steps = DwConvBench.ParseInt(args, "--steps", quick ? 2 : 20);
        int warmup = DwConvBench.ParseInt(args, "--warmup", quick ? 1 : 50);
        int profileSteps = DwConvBench.ParseInt(args, "--profile-steps", quick ? 1 : 5);
        int torchSteps = DwConvBench.ParseInt(args, "--torch-steps", quick ? 1 : 5);
        string outPath = ParseString(args, "--out") ?? Path.Combine(RepoRoot(), "bench", "results", "train-vs-torch.md");
        bool oursOnly = args.Contains("--ours-only"); // profile our step only (no PyTorch peer): quick before/after checks
        var presets = ParseString(args, "--presets")?.Split(',') ?? PresetNames;
        CpuParallel.Threads = threads;

        string load0 = RunInfo.LoadAverage();
        Console.Error.WriteLine($"train-vs-torch: threads {threads}, batch {batch}, load {load0}; measuring the FMA peak");
        int peakReps = quick ? 30 : 300;
        double peak = Avx512F.IsSupported ? FmaPeak.Measure(threads, peakReps, FmaPeak.Chains512, 12 * 16)
            : Fma.IsSupported ? FmaPeak.Measure(threads, peakReps, FmaPeak.Chains256, 12 * 8) : double.NaN;
        var (l2Bw, l3Bw, dramBw) = MemoryBandwidth.MeasureLevels(threads, quick);
        var bandwidth = new Bandwidths(threads, l2Bw, l3Bw, dramBw);
        Console.Error.WriteLine($"peak {peak:F1} GFLOP/s, L2 {l2Bw:F1} GB/s, L3 {l3Bw:F1} GB/s, DRAM {dramBw:F1} GB/s");

        var results = new List<PresetResult>();
        foreach (var name in presets)
        {
            Console.Error.WriteLine($"train-vs-torch: {name} (ours)");
            var r = RunOurs(name, batch, steps, warmup, profileSteps);
            if (!oursOnly)
            {
                Console.Error.WriteLine($"train-vs-torch: {name} (PyTorch)");
                r.Torch = RunTorch(name, threads, batch, torchSteps, quick, r.MaskedKeys, r.Density);
            }
            results.Add(r);
        }
        string load1 = RunInfo.LoadAverage();
        string md = Render(results, threads, batch, steps, warmup, profileSteps, torchSteps, quick, peak, bandwidth, load0, load1,
            ParseString(args, "--note"));
        if (ParseString(args, "--before") is { } beforePath) md = WithBefore(md, beforePath);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        File.WriteAllText(outPath, md);
        Console.WriteLine(md);
        Console.Error.WriteLine($"written to {outPath}");
        return oursOnly || results.All(r => r.Torch is not null) ? 0 : 1;
    }

    private sealed class PresetResult
    {
        public required string Name { get; init; }
        public required double StepMs { get; init; }
        public required double ProfiledStepMs { get; init; }
        /// <summary>Median of warm-up steps 6-25 (before the tiered JIT settles), NaN with fewer than 25 warm-up
        /// steps.</summary>
        public required double EarlyStepMs { get; init; }
        public required List<(string Name, long Calls, double Seconds)> Profile { get; init; }
        public required int ProfileSteps { get; init; }
        public required double GemmFlops { get; init; }
        public required Dictionary<string, double> FusedGemmFlops { get; init; }
        public required double ConvFwdFlops { get; init; }
        public required double ConvDxFlops { get; init; }
        public required double DwFlops { get; init; }
        public required string MaskedKeys { get; init; }
        public required double Density { get; init; }
        public TorchResult? Torch { get; set; }

        public double StepFlops => GemmFlops + 2 * ConvFwdFlops + ConvDxFlops + 3 * DwFlops;
    }

    private sealed record TorchResult(double StepMs, Dictionary<string, double> Categories);

    // ---- our training step -------------------------------------------------------------------------------------

    private static PresetResult RunOurs(string presetName, int batch, int steps, int warmup, int profileSteps)
    {
        var train = SyntheticTrainStep.Build(presetName, batch, "train-vs-torch");
        var (model, masking, size, Step) = train;

        var warm = new double[warmup];
        for (int i = 0; i < warmup; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Step();
            warm[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        double earlyMs = double.NaN;
        if (warmup >= 25)
        {
            var early = warm[5..25];
            Array.Sort(early);
            earlyMs = early[early.Length / 2];
        }
        var times = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Step();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(times);
        double stepMs = times[steps / 2];

        bool was = OpProfiler.Enabled;
        OpProfiler.Enabled = true;
        OpProfiler.Reset();
        long p0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < profileSteps; i++) Step();
        double profiledMs = Stopwatch.GetElapsedTime(p0).TotalMilliseconds / profileSteps;
        var profile = OpProfiler.Snapshot().ToList();
        OpProfiler.Enabled = was;

        var (gemm, convFwd, convDx, dw, fused) = CountFlops(model, size, batch);
        return new PresetResult
        {
            Name = presetName, StepMs = stepMs, ProfiledStepMs = profiledMs, EarlyStepMs = earlyMs, Profile = profile, ProfileSteps = profileSteps,
            GemmFlops = gemm, FusedGemmFlops = fused, ConvFwdFlops = convFwd, ConvDxFlops = convDx, DwFlops = dw,
            MaskedKeys = string.Join(',', masking.Layers.Select(l => l.Name)),
            Density = masking.Layers.Count == 0 ? 1 : masking.Layers.Sum(l => (double)l.Live) / masking.Layers.Sum(l => (double)l.Numel),
        };
    }

    // FLOPs of one step: GEMMs (fwd + dX + dW of every Linear), convolutions (fwd, dW of all; dX of all but the stem,
    // whose input needs no gradient), depthwise taps that are kept by the mask and fall inside the map (per pass).
    // The GEMMs run through the fused backend methods are counted apart as well: pwconv1's forward (LinearBiasGelu),
    // every other forward with a bias (LinearBias), pwconv2's input gradient (LinearBackwardDataGelu); the rest is
    // plain Gemm (pwconv1's input gradient, every weight gradient, the head's input gradient).
    private static (double Gemm, double ConvFwd, double ConvDx, double Dw, Dictionary<string, double> Fused) CountFlops(
        SlakModel model, int size, int batch)
    {
        double gemm = 0, convFwd = 0, convDx = 0, dw = 0;
        var fused = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["LinearBiasGelu"] = 0, ["LinearBias"] = 0, ["LinearBackwardDataGelu"] = 0, ["MlpForward"] = 0, ["MlpBackward"] = 0,
        };
        foreach (var (name, module) in model.NamedModules())
        {
            int stage = StageOf(name);
            int h = stage < 0 ? 1 : (size / 4) >> stage;
            switch (module)
            {
                case Linear l:
                {
                    double f = 2.0 * batch * h * h * l.InFeatures * l.OutFeatures;
                    gemm += 3 * f;
                    bool pw1 = name.EndsWith("pwconv1", StringComparison.Ordinal);
                    bool pw2 = name.EndsWith("pwconv2", StringComparison.Ordinal);
                    // The one-operator MLP (F.MlpOneOperator): both pointwise layers' GEMMs in MlpForward (fwd) and
                    // MlpBackward (dX, dW; a recomputed fc1 is not counted).
                    if (F.MlpOneOperator && (pw1 || pw2)) { fused["MlpForward"] += f; fused["MlpBackward"] += 2 * f; }
                    else if (pw1) fused["LinearBiasGelu"] += f;
                    else if (l.Bias is not null) fused["LinearBias"] += f;
                    if (pw2 && !F.MlpOneOperator) fused["LinearBackwardDataGelu"] += f;
                    break;
                }
                case Conv2d c:
                {
                    int down = DownsampleOf(name);
                    int ho = down <= 0 ? size / 4 : (size / 4) >> down;
                    double f = 2.0 * batch * ho * ho * c.InChannels * c.OutChannels * c.KernelSize * c.KernelSize;
                    convFwd += f;
                    if (down > 0) convDx += f;
                    break;
                }
                case DepthwiseConv2d d:
                    dw += DepthwiseTapFlops(d, h, batch);
                    break;
            }
        }
        return (gemm, convFwd, convDx, dw, fused);
    }

    /// <summary>FLOPs of one pass of a depthwise convolution on a batch of h x h maps: 2 per multiply-add of a tap
    /// that the mask keeps and that falls inside the map (the accounting of every depthwise roofline row).</summary>
    internal static double DepthwiseTapFlops(DepthwiseConv2d d, int h, int batch)
    {
        var mask = d.WeightMask?.ToArray();
        int kh = d.KernelHeight, kw = d.KernelWidth;
        double taps = 0;
        for (int ch = 0; ch < d.Channels; ch++)
            for (int ty = 0; ty < kh; ty++)
                for (int tx = 0; tx < kw; tx++)
                {
                    if (mask is not null && mask[(ch * kh + ty) * kw + tx] == 0) continue;
                    taps += (double)Math.Max(0, h - Math.Abs(ty - kh / 2)) * Math.Max(0, h - Math.Abs(tx - kw / 2));
                }
        return 2.0 * batch * taps;
    }

    private static int StageOf(string name)
    {
        var m = StageRegex().Match(name);
        return m.Success ? int.Parse(m.Groups[1].Value, Inv) : -1;
    }

    private static int DownsampleOf(string name)
    {
        var m = DownsampleRegex().Match(name);
        return m.Success ? int.Parse(m.Groups[1].Value, Inv) : -1;
    }

    [GeneratedRegex(@"(?:^|\.)stages\.(\d+)\.")]
    private static partial Regex StageRegex();

    [GeneratedRegex(@"(?:^|\.)downsample_layers\.(\d+)\.")]
    private static partial Regex DownsampleRegex();

    // ---- PyTorch ------------------------------------------------------------------------------------------------

    private static TorchResult? RunTorch(string preset, int threads, int batch, int steps, bool quick, string masked, double density)
    {
        string script = Path.Combine(RepoRoot(), "bench", "torch", "train_peer.py");
        string args = FormattableString.Invariant(
            $"\"{script}\" --preset {preset} --threads {threads} --batch {batch} --steps {steps} --warmup {(quick ? 1 : 2)} --profile-steps {(quick ? 1 : 2)} --density {density:F4} --masked {masked}");
        var psi = new ProcessStartInfo("/usr/bin/python3", args)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        try
        {
            using var p = Process.Start(psi)!;
            var errTask = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
            {
                Console.Error.WriteLine($"PyTorch peer failed ({p.ExitCode}): {errTask.Result}");
                return null;
            }
            double stepMs = double.NaN;
            var cats = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var f = line.Split(' ');
                if (f[0] == "step_ms") stepMs = double.Parse(f[1], Inv);
                else if (f[0] == "op") cats[f[1]] = double.Parse(f[2], Inv);
            }
            return new TorchResult(stepMs, cats);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.Error.WriteLine($"cannot start /usr/bin/python3: {e.Message}");
            return null;
        }
    }

    // ---- machine limits -----------------------------------------------------------------------------------------

    // ---- report ---------------------------------------------------------------------------------------------------

    /// <summary>The backend method (or "op.bwd" closure) a profiler region times: its first word, or the second after
    /// the "bwd " prefix that marks a backend call made inside the backward pass (OpProfiler), so that a method's
    /// forward and backward uses share its row as FlopsOf counts them.</summary>
    private static string MethodOf(string region)
    {
        var words = region.Split(' ');
        return words[0] == "bwd" && words.Length > 1 ? words[1] : words[0];
    }

    private static string CategoryOf(string region)
    {
        string op = MethodOf(region);
        if (op == "Gemm" || op is "MlpForward" or "MlpBackward" || (op.StartsWith("Linear", StringComparison.Ordinal) && !op.Contains(".bwd", StringComparison.Ordinal)))
            return "gemm";
        if (op.StartsWith("Conv2d", StringComparison.Ordinal)) return "conv";
        if (op.Contains("DwConv", StringComparison.Ordinal)) return "dwconv";
        if (op.StartsWith("Gelu", StringComparison.Ordinal)) return "gelu";
        if (op.StartsWith("LayerNorm", StringComparison.Ordinal)) return "layernorm";
        if (op.StartsWith("BatchNorm", StringComparison.Ordinal)) return "batchnorm";
        if (op.StartsWith("AdamW", StringComparison.Ordinal)) return "optimizer";
        return "other";
    }

    // Tensors of the first argument's size that a call of a memory-bound method reads or writes at least: one read and
    // one write, except the large kernel's fused sum of three BatchNorms (forward: three branches read, the sum
    // written; backward: the gradient and three branches read, three branch gradients written).
    // Tensors of the first operand's size that a memory-bound method must read or write once per call: the minimum
    // traffic, whatever its passes (BatchNormTrainSum reads three branches and writes their sum; the backward reads dy and
    // three branch inputs and writes three gradients; a LayerNorm backward reads dy and x and writes dx; the residual
    // epilogue reads the block input and the branch output and writes the sum).
    private static double TensorsMoved(string method) => method switch
    {
        "BatchNormTrainSum" => 4,
        "BatchNormBackwardSum" => 7,
        "LayerNormNchwToNhwcBackward" or "LayerNormChannelsFirstBackward" or "LayerNormLastDimBackward" => 3,
        "ChannelsLastResidual" or "ChannelsLastResidualBackward" or "Add" => 3,
        "GlobalAvgPool" or "Fill" => 1,
        _ => 2,
    };

    /// <summary>The read bandwidths measured in this run (GB/s) and the level a call's traffic streams from.</summary>
    private sealed record Bandwidths(int Threads, double L2, double L3, double Dram)
    {
        /// <summary>Traffic per call up to which it is counted at the L3 bandwidth: 16 MiB, half of the 32 MiB L3 of one
        /// core complex of this machine kind (the rest holds the tensors the next operators read).</summary>
        internal const long L3LimitBytes = 16L << 20;

        /// <summary>Seconds that <paramref name="bytes"/> of traffic take at the bandwidth of the level they fit in.</summary>
        internal double Seconds(double bytes)
        {
            double gbs = bytes <= Threads * (1L << 20) ? L2 : bytes <= L3LimitBytes ? L3 : Dram;
            return bytes / (gbs * 1e9);
        }
    }

    // FLOPs per step of a backend method with FLOPs (null: a memory-bound operator, measured in bytes).
    private static double? FlopsOf(string method, PresetResult r) => method switch
    {
        "Gemm" => r.GemmFlops - r.FusedGemmFlops.Values.Sum(),
        "LinearBiasGelu" or "LinearBias" or "LinearBackwardDataGelu" or "MlpForward" or "MlpBackward" => r.FusedGemmFlops[method],
        "Conv2dForward" or "Conv2dBackwardFilter" => r.ConvFwdFlops,
        "Conv2dBackwardData" => r.ConvDxFlops,
        "DecomposedDwConvForward" or "DecomposedDwConvBackwardData" or "DecomposedDwConvBackwardFilter" => r.DwFlops,
        _ => null,
    };

    private static long NumelOf(string region)
    {
        int open = region.IndexOf(" (", StringComparison.Ordinal);
        if (open < 0) return 0;
        int close = region.IndexOf(')', open);
        if (close < 0) return 0;
        long n = 1;
        foreach (var d in region[(open + 2)..close].Split(',', StringSplitOptions.RemoveEmptyEntries))
            if (long.TryParse(d.Trim(), NumberStyles.Integer, Inv, out long v)) n *= v; else return 0;
        return n;
    }

    private static string Render(List<PresetResult> results, int threads, int batch, int steps, int warmup, int profileSteps,
        int torchSteps, bool quick, double peak, Bandwidths bw, string load0, string load1, string? note)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# train-vs-torch");
        sb.AppendLine();
        sb.AppendLine(Inv, $"Generated by `dotnet run -c Release --project bench/Slak.Bench -- train-vs-torch{(quick ? " --short" : "")}` " +
            $"on {DwConvBench.Machine()}; threads {threads} (ours: CpuParallel.Threads; PyTorch: torch.set_num_threads), batch {batch}.");
        sb.AppendLine(Inv, $"Load average (1, 5, 15 min, /proc/loadavg) at the start: `{load0}`, at the end: `{load1}`. " +
            $"On a shared machine any load above ~0.5 makes every time below an upper bound, not the machine's figure.");
        if (note is not null) sb.AppendLine().AppendLine(Inv, $"Note: {note}");
        if (quick) sb.AppendLine().AppendLine("**Short (smoke-test) run: a few steps only; the numbers are not measurements.**");
        sb.AppendLine();
        sb.AppendLine(Inv, $"Measured limits in this run: FMA peak **{peak:F1} GFLOP/s** fp32 on {threads} threads " +
            $"({(Avx512F.IsSupported ? "Vector512" : "Vector256")} FMA, 12 chains, best burst); read bandwidth " +
            $"**{bw.L2:F1} GB/s** from L2 ({MemoryBandwidth.CacheBytesPerThread >> 10} KiB per thread), **{bw.L3:F1} GB/s** " +
            $"from L3 ({MemoryBandwidth.L3BytesPerThread >> 20} MiB per thread) and **{bw.Dram:F1} GB/s** from DRAM " +
            $"({MemoryBandwidth.DramBytesPerThread >> 20} MiB per thread).");
        sb.AppendLine();
        string early = warmup >= 25 ? string.Join(", ", results.Select(r => r.Name + " " + r.EarlyStepMs.ToString("F1", Inv) + " ms"))
            : "not measured (fewer than 25 warm-up steps)";
        sb.AppendLine(Inv, $"Ours: median of {steps} steps after {warmup} warm-up steps (forward, backward, AdamW, mask upkeep; " +
            $"ERK masks at the preset's density; drop path 0); profile over {profileSteps} further steps. The warm-up lets .NET's " +
            $"tiered JIT settle (a method's optimised code replaces its first code after ~30 calls and a background compile); " +
            $"the median of warm-up steps 6-25, before it settles: {early}. PyTorch: " +
            $"bench/torch/train_peer.py (tools/slak_reference_model.py, dense depthwise nn.Conv2d, masks multiplied after " +
            $"each AdamW step), median of {torchSteps} steps; per-category times are torch.profiler self CPU times.");
        sb.AppendLine();
        sb.AppendLine("| preset | ours ms/step | ours img/s | PyTorch ms/step | PyTorch img/s | x | step GFLOP | step GFLOP/s | FMA utilisation |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            double t = r.Torch?.StepMs ?? double.NaN;
            sb.AppendLine(Inv, $"| {r.Name} | {r.StepMs:F1} | {batch * 1e3 / r.StepMs:F0} | {t:F1} | {batch * 1e3 / t:F0} | " +
                $"{t / r.StepMs:F1} | {r.StepFlops / 1e9:F2} | {r.StepFlops / r.StepMs / 1e6:F1} | {100 * r.StepFlops / r.StepMs / 1e6 / peak:F1}% |");
        }
        foreach (var r in results) RenderRoofline(sb, r, peak, bw);
        sb.AppendLine();
        if (results.Count != 2)
        {
            foreach (var r in results)
                sb.AppendLine(Inv, $"{r.Name}: step FMA utilisation {100 * r.StepFlops / r.StepMs / 1e6 / peak:F0}%");
            return sb.ToString();
        }
        var nano = results[0];
        var n64 = results[1];
        sb.AppendLine(Inv, $"train-vs-torch: slak_nano x{(nano.Torch?.StepMs ?? double.NaN) / nano.StepMs:F1}, " +
            $"slak_nano64 x{(n64.Torch?.StepMs ?? double.NaN) / n64.StepMs:F1}, step FMA utilisation " +
            $"{100 * nano.StepFlops / nano.StepMs / 1e6 / peak:F0}% / {100 * n64.StepFlops / n64.StepMs / 1e6 / peak:F0}%");
        return sb.ToString();
    }

    /// <summary>The issue's per-operator targets against this run's rows: every pointwise GEMM >= 60 % of the peak,
    /// the depthwise passes >= 50 % (the issue asks it of stages 1-2; the profiler merges the stages of a method, so
    /// the row is all stages), the stem and downsampling convolutions >= 50 %, and every other row above 3 % of the
    /// step at least a third of its limit.</summary>
    private static void RenderOperatorTargets(StringBuilder sb, string name,
        List<(string Method, string Category, double StepShare, double Fraction, string Limit)> rows)
    {
        sb.AppendLine();
        sb.AppendLine(Inv, $"{name}, the issue's per-operator targets against the rows above (depthwise: the issue asks 50 % " +
            $"of stages 1-2; these rows merge every stage):");
        sb.AppendLine();
        sb.AppendLine("| operator | % of step | achieved | target | |");
        sb.AppendLine("|---|---:|---:|---:|---|");
        foreach (var row in rows)
        {
            double? target = row.Category switch
            {
                "gemm" => 0.60,
                "dwconv" or "conv" => 0.50,
                _ => row.StepShare >= 0.03 ? 1.0 / 3 : null,
            };
            if (target is not double t) continue;
            string verdict = row.Fraction >= t ? "met" : $"missed by {100 * (t - row.Fraction):F0} points";
            sb.AppendLine(Inv, $"| {row.Method} | {100 * row.StepShare:F1} | {100 * row.Fraction:F0}% of {row.Limit} | " +
                $"{100 * t:F0}% | {verdict} |");
        }
    }

    private static void RenderRoofline(StringBuilder sb, PresetResult r, double peak, Bandwidths bw)
    {
        double stepMs = r.ProfiledStepMs;
        int k = r.ProfileSteps;
        sb.AppendLine();
        sb.AppendLine(Inv, $"## {r.Name}: per-operator roofline (profiled step {stepMs:F1} ms, unprofiled {r.StepMs:F1} ms)");
        sb.AppendLine();
        sb.AppendLine("Rows are backend methods (shapes merged; forward and each backward are separate methods, except `Gemm`, " +
            "which the profiler keys by method and first operand only, so the products it runs share one row: those not fused, " +
            "i.e. pwconv1's dX, every dW and the head's dX; the fused ones are rows of their own: LinearBiasGelu = pwconv1 " +
            "forward with bias and GELU, LinearBias = the other forwards with bias, LinearBackwardDataGelu = pwconv2's dX " +
            "times GELU' with pwconv1's bias gradient) and " +
            "`<op>.bwd` host work of backward closures, `step.forward` / `step.backward` / `step.update` the host work of " +
            "the step's phases outside every other region (module glue, the autograd graph, optimizer and mask upkeep " +
            "bookkeeping). Compute rows: FLOPs per step and the fraction of the FMA peak; " +
            "memory rows: the bytes of every tensor the operator must read or write once per call (the minimum " +
            "traffic: e.g. LayerNorm backward reads dy and x and writes dx; small per-channel tensors left out) and the " +
            "fraction of the limit = the time that traffic takes at the read bandwidth of the level it fits in " +
            "(per call: L2 up to 1 MiB per thread, L3 up to " + (Bandwidths.L3LimitBytes >> 20) + " MiB, DRAM beyond), " +
            "summed over the calls, over the time measured.");
        sb.AppendLine();
        sb.AppendLine("| operator | category | calls/step | ms/step | % of step | GFLOP or MB /step | GFLOP/s or GB/s | fraction of limit |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|");
        var byMethod = r.Profile
            .GroupBy(e => MethodOf(e.Name))
            .Select(g => (Method: g.Key, Calls: g.Sum(e => e.Calls) / (double)k, Ms: g.Sum(e => e.Seconds) * 1e3 / k,
                          Bytes: g.Sum(e => TensorsMoved(g.Key) * 4 * NumelOf(e.Name) * e.Calls) / k,
                          IdealMs: g.Sum(e => e.Calls * bw.Seconds(TensorsMoved(g.Key) * 4 * NumelOf(e.Name))) * 1e3 / k))
            .OrderByDescending(g => g.Ms).ToList();
        double measured = 0;
        var fractions = new List<(string Method, string Category, double StepShare, double Fraction, string Limit)>();
        foreach (var g in byMethod)
        {
            measured += g.Ms;
            string cat = CategoryOf(g.Method);
            double? flops = FlopsOf(g.Method, r);
            string work, rate, frac;
            if (flops is double f)
            {
                work = (f / 1e9).ToString("F3", Inv);
                double gf = f / g.Ms / 1e6;
                rate = gf.ToString("F1", Inv);
                frac = (100 * gf / peak).ToString("F0", Inv) + "% of peak";
                fractions.Add((g.Method, cat, g.Ms / stepMs, gf / peak, "peak"));
            }
            else if (g.Bytes > 0 && !g.Method.Contains(".bwd", StringComparison.Ordinal))
            {
                work = (g.Bytes / 1e6).ToString("F2", Inv);
                double gb = g.Bytes / g.Ms / 1e6;
                rate = gb.ToString("F1", Inv);
                frac = (100 * g.IdealMs / g.Ms).ToString("F0", Inv) + "% of mem bw";
                fractions.Add((g.Method, cat, g.Ms / stepMs, g.IdealMs / g.Ms, "mem bw"));
            }
            else { work = ""; rate = ""; frac = ""; }
            sb.AppendLine(Inv, $"| {g.Method} | {cat} | {g.Calls:F0} | {g.Ms:F2} | {100 * g.Ms / stepMs:F1} | {work} | {rate} | {frac} |");
        }
        sb.AppendLine(Inv, $"| (outside regions) | | | {Math.Max(0, stepMs - measured):F2} | {100 * Math.Max(0, stepMs - measured) / stepMs:F1} | | | |");
        RenderOperatorTargets(sb, r.Name, fractions);

        sb.AppendLine();
        sb.AppendLine(Inv, $"{r.Name}, by category: ours (profiled) against PyTorch (torch.profiler self CPU time per step)");
        sb.AppendLine();
        sb.AppendLine("| category | ours ms/step | PyTorch ms/step | x |");
        sb.AppendLine("|---|---:|---:|---:|");
        var ours = byMethod.GroupBy(g => CategoryOf(g.Method)).ToDictionary(g => g.Key, g => g.Sum(e => e.Ms), StringComparer.Ordinal);
        ours["other"] = ours.GetValueOrDefault("other") + Math.Max(0, stepMs - measured);
        var cats = ours.Keys.Union(r.Torch?.Categories.Keys ?? Enumerable.Empty<string>()).OrderByDescending(c => ours.GetValueOrDefault(c));
        foreach (var c in cats)
        {
            double o = ours.GetValueOrDefault(c);
            double t = r.Torch is not null && r.Torch.Categories.TryGetValue(c, out double tv) ? tv : double.NaN;
            string oursCell = o > 0 ? o.ToString("F2", Inv) : c == "gelu" ? "fused into gemm" : "0.00";
            string torchCell = double.IsNaN(t) ? "-" : t.ToString("F2", Inv);
            string ratio = o > 0 && !double.IsNaN(t) ? (t / o).ToString("F1", Inv) : "-";
            sb.AppendLine(Inv, $"| {c} | {oursCell} | {torchCell} | {ratio} |");
        }
        // Our GELU runs inside the GEMM rows (LinearBiasGelu, LinearBackwardDataGelu), PyTorch's in its own kernels:
        // the fair pair is the sum of both categories.
        if (r.Torch is not null && r.Torch.Categories.TryGetValue("gelu", out double torchGelu))
        {
            double oursGemm = ours.GetValueOrDefault("gemm") + ours.GetValueOrDefault("gelu");
            double torchGemm = r.Torch.Categories.GetValueOrDefault("gemm") + torchGelu;
            sb.AppendLine(Inv, $"| gemm + gelu | {oursGemm:F2} | {torchGemm:F2} | {torchGemm / oursGemm:F1} |");
        }
    }

    // The summary table and last line of an earlier run's file (--before), quoted before this run's last line, so that
    // one file holds both; this run's last line stays the file's last line.
    private static string WithBefore(string md, string beforePath)
    {
        // Only the before file's own run: its lines up to its first section heading, and its last line (a file that
        // quotes an earlier run of its own does not pass that one on).
        var all = File.ReadAllLines(beforePath);
        int firstSection = Array.FindIndex(all, l => l.StartsWith("## ", StringComparison.Ordinal));
        var lines = (firstSection < 0 ? all : all[..firstSection]).Append(all.LastOrDefault(l => l.StartsWith("train-vs-torch:", StringComparison.Ordinal)) ?? "").ToArray();
        var quoted = lines.Where(l => l.StartsWith("| slak_nano", StringComparison.Ordinal) || l.StartsWith("Generated by", StringComparison.Ordinal)
            || l.StartsWith("Load average", StringComparison.Ordinal) || l.StartsWith("Measured limits", StringComparison.Ordinal)
            || l.StartsWith("train-vs-torch:", StringComparison.Ordinal)).ToList();
        int last = md.TrimEnd().LastIndexOf('\n');
        var sb = new StringBuilder(md[..(last + 1)]);
        sb.AppendLine(Inv, $"## Before (the same program's earlier result, {Path.GetFileName(beforePath)} as it was before this run)");
        sb.AppendLine();
        foreach (var l in quoted)
        {
            if (l.StartsWith("| slak_nano", StringComparison.Ordinal) && !sb.ToString().EndsWith("|\n", StringComparison.Ordinal))
                sb.AppendLine("| preset | ours ms/step | ours img/s | PyTorch ms/step | PyTorch img/s | x | step GFLOP | step GFLOP/s | FMA utilisation |")
                  .AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            sb.AppendLine(l.StartsWith("train-vs-torch:", StringComparison.Ordinal) ? "before: " + l : l);
            if (!l.StartsWith("| ", StringComparison.Ordinal)) sb.AppendLine();
        }
        sb.AppendLine();
        sb.Append(md[(last + 1)..]);
        return sb.ToString();
    }

    // ---- helpers --------------------------------------------------------------------------------------------------

    private static string? ParseString(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(Environment.CurrentDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Slak.Cuda.sln"))) return d.FullName;
        return Environment.CurrentDirectory;
    }
}
