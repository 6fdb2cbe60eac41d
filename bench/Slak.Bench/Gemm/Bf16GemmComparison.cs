// The CPU bf16 GEMM comparison (issue 24): the 1x1-convolution GEMMs of slak_nano at batch 128 (both MLP layers of each
// stage: forward, input gradient and weight gradient shapes, C = A(m, k) B(k, n)), timed in one run as
//   - fp32: CpuGemm.Sgemm, the CPU backend's GEMM;
//   - bf16 native: CpuBf16Gemm with VDPBF16PS (AVX512-BF16, libslak_cpu_bf16.so), bf16 operands, fp32 accumulation,
//     packing and rounding included (the bf16 path pays them on every call);
//   - bf16 portable: operands rounded to bf16, then the fp32 GEMM (what --precision bf16 does without the native path).
// Each shape runs the three interleaved, best of --reps calls each (the best call is the least disturbed one on a
// shared machine). Writes bench/results/bf16-gemm.md (or --out) with the load average before and after, and the
// decision: the native path is used for --precision bf16 on the CPU only if it is faster than fp32 over the step's
// GEMMs (their summed best times).
//   dotnet run -c Release --project bench/Slak.Bench -- bf16-gemm [--reps 15] [--threads N] [--out FILE]
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Backends.Cpu;
using Slak.Models;

namespace Slak.Bench.Gemm;

internal static class Bf16GemmComparison
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    [BenchProgram("bf16-gemm", "fp32 vs bf16-input (AVX512-BF16) GEMMs of slak_nano's 1x1 convolutions at batch 128 -> bench/results/bf16-gemm.md")]
    public static int Run(string[] args)
    {
        CultureInfo.CurrentCulture = Inv; // every number in the report is formatted invariantly
        int reps = Arg(args, "--reps", 15);
        int threads = Arg(args, "--threads", CpuParallel.Threads);
        string outPath = Value(args, "--out") ?? Path.Combine(RepoRoot(), "bench", "results", "bf16-gemm.md");
        CpuParallel.Threads = threads;
        string? note = Value(args, "--note");
        string load0 = RunInfo.LoadAverage();
        var preset = ModelPresets.Get("slak_nano");
        int[] widths = preset.Config.StageWidths();
        const int batch = 128;
        int side = preset.InputSize / 4;
        var rows = new List<(string Name, int M, int N, int K, double Fp32, double Native, double Portable)>();
        var rng = new Random(24);
        for (int s = 0; s < widths.Length; s++, side /= 2)
        {
            int c = widths[s], r = batch * side * side;
            foreach (var (name, m, n, k) in new[]
                     {
                         ($"s{s + 1} pw1 fwd / pw2 dX", r, 4 * c, c), ($"s{s + 1} pw2 fwd / pw1 dX", r, c, 4 * c),
                         ($"s{s + 1} pw1 dW", 4 * c, c, r), ($"s{s + 1} pw2 dW", c, 4 * c, r),
                     })
            {
                var a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
                var b = Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
                var cm = new float[m * n];
                double fp32 = double.MaxValue, native = double.MaxValue, portable = double.MaxValue;
                for (int rep = 0; rep < reps + 2; rep++) // two warm-up rounds
                {
                    double t1 = Time(() => CpuGemm.Sgemm(false, false, m, n, k, 1f, a, k, b, n, 0f, cm, n));
                    double t2 = CpuBf16Gemm.IsSupported ? Time(() => CpuBf16Gemm.Gemm(m, n, k, a, k, b, n, 0f, cm, n, native: true)) : double.NaN;
                    double t3 = Time(() => CpuBf16Gemm.Gemm(m, n, k, a, k, b, n, 0f, cm, n, native: false));
                    if (rep < 2) continue;
                    fp32 = Math.Min(fp32, t1);
                    native = double.IsNaN(t2) ? double.NaN : Math.Min(native, t2);
                    portable = Math.Min(portable, t3);
                }
                rows.Add((name, m, n, k, fp32, native, portable));
                Console.Error.WriteLine(string.Create(Inv, $"{name}: fp32 {fp32 * 1e6:F0} us, bf16 native {native * 1e6:F0} us, bf16 portable {portable * 1e6:F0} us"));
            }
        }
        string load1 = RunInfo.LoadAverage();
        File.WriteAllText(outPath, Report(rows, reps, threads, load0, load1, note));
        Console.WriteLine($"wrote {outPath}");
        return 0;
    }

    private static double OneMinute(string loadAverage) =>
        double.Parse(loadAverage.Split(' ')[0], Inv);

    private static double Time(Action f)
    {
        var sw = Stopwatch.StartNew();
        f();
        return sw.Elapsed.TotalSeconds;
    }

    private static string Report(List<(string Name, int M, int N, int K, double Fp32, double Native, double Portable)> rows,
                                 int reps, int threads, string load0, string load1, string? note)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# CPU bf16 GEMM vs fp32 on slak_nano's 1x1 convolutions (batch 128)");
        sb.AppendLine();
        sb.AppendLine(string.Create(Inv, $"Produced by `dotnet run -c Release --project bench/Slak.Bench -- bf16-gemm` on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, ") +
            $"{Environment.ProcessorCount} logical cores, {threads} threads; AVX512-BF16 native path available: {(CpuBf16Gemm.IsSupported ? "yes" : "no")}. " +
            $"Best of {reps} calls per shape, the three variants interleaved.");
        sb.AppendLine();
        // Quiet: the 1-minute load average at the start and at the end below the number of threads the run uses plus
        // one (this program's own threads make up most of it); otherwise the decision is provisional.
        bool quiet = OneMinute(load0) < threads + 1 && OneMinute(load1) < threads + 1;
        sb.AppendLine(string.Create(Inv, $"Commit {RunInfo.Commit()}, {RunInfo.CpuModel()}. Load average (1, 5, 15 min) `{load0}` at the start, `{load1}` at the end: ") +
            (quiet ? "**quiet machine** (1-minute load under the run's threads + 1)." :
                     "**the machine was loaded** (other processes ran beside this one): the times are inflated and noisy, the ratios were measured side by side, and the decision is **provisional until a quiet run**.") +
            (note is null ? "" : " Note: " + note));
        sb.AppendLine();
        sb.AppendLine("bf16 calls include rounding the operands and packing B on every call (what the bf16 path pays). Shapes are " +
            "C(m, n) = A(m, k) B(k, n); `pw1` is the MLP's first 1x1 convolution (C -> 4C), `pw2` the second (4C -> C); the forward " +
            "of one layer and the input gradient of the other have the same shape.");
        sb.AppendLine();
        sb.AppendLine("| GEMM | m | n | k | MFLOP | fp32 (us) | bf16 native (us) | bf16 portable (us) | native / fp32 |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(Inv, $"| {r.Name} | {r.M} | {r.N} | {r.K} | {2.0 * r.M * r.N * r.K / 1e6:F1} | {r.Fp32 * 1e6:F0} | ") +
                $"{(double.IsNaN(r.Native) ? "n/a" : (r.Native * 1e6).ToString("F0", Inv))} | {r.Portable * 1e6:F0} | " +
                $"{(double.IsNaN(r.Native) ? "n/a" : (r.Fp32 / r.Native).ToString("F2", Inv) + "x")} |");
        double fp32 = rows.Sum(r => r.Fp32), portable = rows.Sum(r => r.Portable);
        double native = rows.Any(r => double.IsNaN(r.Native)) ? double.NaN : rows.Sum(r => r.Native);
        sb.AppendLine(string.Create(Inv, $"| **sum (one step's GEMMs, per layer)** | | | | | **{fp32 * 1e6:F0}** | **{(double.IsNaN(native) ? "n/a" : (native * 1e6).ToString("F0", Inv))}** | **{portable * 1e6:F0}** | ") +
            $"**{(double.IsNaN(native) ? "n/a" : (fp32 / native).ToString("F2", Inv) + "x")}** |");
        sb.AppendLine();
        sb.AppendLine("## Decision");
        sb.AppendLine();
        if (double.IsNaN(native))
            sb.AppendLine("This CPU has no AVX512-BF16: the portable path (bf16 rounding + the fp32 GEMM) is the only one; nothing to decide here.");
        else if (native < fp32)
            sb.AppendLine(string.Create(Inv, $"The native bf16 GEMMs took {native / fp32:P0} of the fp32 time over these shapes ({fp32 / native:F2}x): ") +
                "faster, so using them for `--precision bf16` on CPUs with AVX512-BF16 is justified by this run." +
                (quiet ? "" : " Provisional: the run was on a loaded machine; re-measure on a quiet one before relying on it."));
        else
            sb.AppendLine(string.Create(Inv, $"The native bf16 GEMMs took {native / fp32:P0} of the fp32 time over these shapes ({fp32 / native:F2}x): ") +
                "not faster, so `--precision bf16` on the CPU keeps the portable path (operands rounded to bf16, the fp32 GEMM)." +
                (quiet ? "" : " Provisional: the run was on a loaded machine; re-measure on a quiet one."));
        sb.AppendLine();
        sb.AppendLine(string.Create(Inv, $"The portable bf16 path costs {portable / fp32:F2}x the fp32 GEMM (the rounding passes): that is the price of ") +
            "checking bf16 numerics on the CPU, not a speed-up.");
        return sb.ToString();
    }

    private static int Arg(string[] args, string name, int fallback)
    {
        string? v = Value(args, name);
        return v is null ? fallback : int.Parse(v, Inv);
    }

    private static string? Value(string[] args, string name)
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
