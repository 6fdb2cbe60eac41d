// `bn-sum-train-step`: the fused sum of the large kernel's BatchNorms (ReparamLargeKernelConv.FusedBatchNormSum,
// SLAK_BN_SUM) inside the training step. The step is train-vs-torch's (SyntheticTrainStep: batch 128, AdamW, ERK
// masks, synthetic images); steps alternate between the switch off and on after a warm-up, so that both see the same
// machine load (separate runs on this shared machine swing by far more than the BatchNorms' share of the step).
// Reports the median and the best step of each side and their ratios.
//   dotnet bench/Slak.Bench/bin/Release/net10.0/Slak.Bench.dll bn-sum-train-step [--presets slak_nano,slak_nano64] [--steps 40] [--warmup 20] [--out FILE] [--note TEXT]
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Backends.Cpu;
using Slak.Models;

namespace Slak.Bench.Ops;

internal static class BatchNormSumStep
{
    [BenchProgram("bn-sum-train-step", "training step with the large kernel's fused sum of BatchNorms off/on (SLAK_BN_SUM), alternating steps [--presets P,Q] [--steps N] [--warmup N] [--out FILE] [--note TEXT]")]
    private static int Run(string[] args)
    {
        string? Arg(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        int steps = int.Parse(Arg("--steps") ?? "40", CultureInfo.InvariantCulture);
        int warmup = int.Parse(Arg("--warmup") ?? "20", CultureInfo.InvariantCulture);
        var presets = (Arg("--presets") ?? "slak_nano,slak_nano64").Split(',');
        var sb = new StringBuilder();
        void Line(string s) { Console.WriteLine(s); sb.Append(s).Append('\n'); }
        Line("# The large kernel's fused sum of BatchNorms inside the training step (`bn-sum-train-step`)");
        Line("");
        Line(Inv($"{DateTime.UtcNow:u}; commit {RunInfo.Commit()}; {RunInfo.CpuModel()}, {Environment.ProcessorCount} cores; {CpuParallel.Threads} threads; batch 128; {warmup} warm-up steps, then {steps} steps with the switch off and {steps} on, alternating. Load average before: {RunInfo.LoadAverage()}."));
        if (Arg("--note") is { } note) Line(note);
        Line("");
        Line("off = `SLAK_BN_SUM=0` (one BatchNorm2d per branch and the adds), on = the default (F.BatchNorm2dSum). The step is train-vs-torch's (forward, backward, AdamW, mask upkeep).");
        Line("");
        Line("| preset | off median ms | on median ms | on / off (median) | off best ms | on best ms | on / off (best) |");
        Line("|---|---:|---:|---:|---:|---:|---:|");
        var summary = new List<string>();
        bool was = ReparamLargeKernelConv.FusedBatchNormSum;
        try
        {
            foreach (string name in presets)
            {
                var step = Train.SyntheticTrainStep.Build(name, 128, "bn-sum-train-step").Run;
                for (int i = 0; i < warmup; i++)
                {
                    ReparamLargeKernelConv.FusedBatchNormSum = i % 2 == 1;
                    step();
                }
                var off = new double[steps];
                var on = new double[steps];
                for (int i = 0; i < 2 * steps; i++)
                {
                    bool fused = i % 2 == 1;
                    ReparamLargeKernelConv.FusedBatchNormSum = fused;
                    long t0 = Stopwatch.GetTimestamp();
                    step();
                    (fused ? on : off)[i / 2] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }
                double mOff = Median(off), mOn = Median(on), bOff = off.Min(), bOn = on.Min();
                Line(Inv($"| {name} | {mOff:F1} | {mOn:F1} | {mOn / mOff:F3} | {bOff:F1} | {bOn:F1} | {bOn / bOff:F3} |"));
                summary.Add(Inv($"{name} {mOn / mOff:F3} (median), {bOn / bOff:F3} (best)"));
            }
        }
        finally
        {
            ReparamLargeKernelConv.FusedBatchNormSum = was;
        }
        Line("");
        Line(Inv($"Load average after: {RunInfo.LoadAverage()}; {DateTime.UtcNow:u}."));
        Line("");
        Line("bn-sum-train-step: step time with the fused sum over without: " + string.Join("; ", summary) + ".");
        if (Arg("--out") is { } outPath) File.WriteAllText(outPath, sb.ToString());
        return 0;
    }

    private static double Median(double[] v)
    {
        var s = (double[])v.Clone();
        Array.Sort(s);
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
