// slak gpu check: runs every kernel of the CUDA backend on SLaK-sized inputs, compares each output with the CPU
// backend (outputs poisoned with NaN first), times the kernel (warm-up, then the median of timed repeats, each
// synchronized), and prints one table: kernel, shape, max error, ms, GFLOP/s or GB/s and the fraction of the
// device's fp32 FMA peak. Exit code 1 when any kernel disagrees with the CPU.
//   Slak.GpuCheck [--device cuda|cuda-emu] [--scale full|tiny] [--repeats N] [--peak-tflops 66.9] [--out table.md]
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Backends;
using Slak.Backends.Cpu;
using Slak.Backends.Cuda;

namespace Slak.GpuCheck;

internal static class Program
{
    private static int Main(string[] args)
    {
        var opts = Options.Parse(args);
        var device = Device.Parse(opts.Device);
        if (!CudaBackend.IsAvailable(device, out string why))
        {
            Console.Error.WriteLine($"gpu-check: {device} unavailable: {why}");
            return 2;
        }
        var gpu = (CudaBackend)BackendRegistry.For(device);
        var runner = new CheckRunner(gpu, CpuBackend.Instance, opts.Repeats);
        Cases.AddAll(runner, opts.Full);

        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"# GPU check: {gpu.Gpu.Name}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, scale {(opts.Full ? "full" : "tiny")}, fp32");
        sb.AppendLine();
        sb.AppendLine("| kernel | shape | max abs err | max rel err | ok | ms (median) | GFLOP/s | GB/s | % fp32 peak |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        int failures = 0;
        foreach (var r in runner.Results)
        {
            if (!r.Ok) failures++;
            double gflops = r.Flops / (r.Ms * 1e6), gbs = r.Bytes / (r.Ms * 1e6);
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Name} | {r.Shape} | {r.MaxAbs:0.0e+0} | {r.MaxRel:0.0e+0} | {(r.Ok ? "yes" : "**NO**")} | {r.Ms:0.000} | " +
                $"{(r.Flops > 0 ? gflops.ToString("0.0", CultureInfo.InvariantCulture) : "-")} | {gbs:0.0} | " +
                $"{(r.Flops > 0 ? (100 * gflops / (opts.PeakTflops * 1000)).ToString("0.0", CultureInfo.InvariantCulture) : "-")} |");
        }
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{runner.Results.Count} kernels checked, {failures} disagree with the CPU backend.");
        Console.Write(sb.ToString());
        if (opts.Out is not null) File.WriteAllText(opts.Out, sb.ToString());
        return failures == 0 ? 0 : 1;
    }

    private sealed record Options(string Device, bool Full, int Repeats, double PeakTflops, string? Out)
    {
        public static Options Parse(string[] args)
        {
            string device = "cuda", scale = "full";
            int repeats = 20;
            double peak = 66.9;
            string? output = null;
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--device": device = Next(); break;
                    case "--scale": scale = Next(); break;
                    case "--repeats": repeats = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--peak-tflops": peak = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--out": output = Next(); break;
                    default: throw new ArgumentException($"unknown option {args[i]}");
                }
            }
            if (scale is not ("full" or "tiny")) throw new ArgumentException($"--scale must be full or tiny, got {scale}");
            return new Options(device, scale == "full", Math.Max(1, repeats), peak, output);
        }
    }
}

/// <summary>One row of the table.</summary>
internal sealed record CheckResult(string Name, string Shape, double MaxAbs, double MaxRel, bool Ok, double Ms,
                                   double Flops, double Bytes);

/// <summary>Creates inputs on both backends, runs a kernel on each, compares and times the GPU side.</summary>
internal sealed class CheckRunner(CudaBackend gpu, CpuBackend cpu, int repeats)
{
    private readonly SlakRandom _rng = new(1234);

    public List<CheckResult> Results { get; } = [];

    public (Tensor Cpu, Tensor Gpu) Random(params int[] shape)
    {
        var t = Tensor.RandN(_rng, shape, Device.Cpu);
        return (t, t.To(gpu.Device));
    }

    public (Tensor Cpu, Tensor Gpu) FromArray(float[] data, params int[] shape) =>
        (Tensor.FromArray(data, shape, Device.Cpu), Tensor.FromArray(data, shape, gpu.Device));

    public float[] Mask(int n, double density)
    {
        var m = new float[n];
        for (int i = 0; i < n; i++) m[i] = _rng.NextDouble() < density ? 1f : 0f;
        return m;
    }

    /// <summary>Runs <paramref name="run"/> on the CPU then the GPU (outputs poisoned), compares every output,
    /// then times the GPU run. <paramref name="outputs"/> are the output shapes
    /// (kernels that mutate their inputs in place are not run here).</summary>
    public void Check(string name, string shape, double flops, double bytes, int[][] outputs,
                      Action<IBackend, Tensor[]> run, double atol = 1e-4, double rtol = 1e-3)
    {
        var co = outputs.Select(s => Tensor.Full(s, float.NaN, Device.Cpu)).ToArray();
        var go = outputs.Select(s => Tensor.Full(s, float.NaN, gpu.Device)).ToArray();
        run(cpu, co);
        run(gpu, go);
        double maxAbs = 0, maxRel = 0;
        bool ok = true;
        for (int k = 0; k < outputs.Length; k++)
        {
            var e = co[k].Data;
            var a = go[k].ToArray();
            for (int i = 0; i < e.Length; i++)
            {
                double err = Math.Abs(a[i] - e[i]);
                if (float.IsNaN(a[i]) || err > atol + rtol * Math.Abs(e[i])) ok = false;
                maxAbs = Math.Max(maxAbs, err);
                maxRel = Math.Max(maxRel, err / Math.Max(Math.Abs(e[i]), 1e-3));
            }
        }
        run(gpu, go);
        gpu.Gpu.Synchronize();
        var times = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            var sw = Stopwatch.StartNew();
            run(gpu, go);
            gpu.Gpu.Synchronize();
            times[r] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        Results.Add(new CheckResult(name, shape, maxAbs, maxRel, ok, times[repeats / 2], flops, bytes));
        foreach (var t in co.Concat(go)) t.Dispose();
        Console.Error.WriteLine($"  {name} {shape}: {(ok ? "ok" : "MISMATCH")} {times[repeats / 2]:0.000} ms");
    }
}
