// docs/csharp.md, "Benchmark the kernel at your shape": a BenchmarkDotNet project that times SLaK's decomposed
// depthwise convolution (forward, and forward + backward) at a shape, branch set and mask density of your choice,
// on each device you name, through the public API only (Tensor, F, Device). Run:
//   dotnet run -c Release -- --shape 8,124,56,56 --branches 51x5,5x51,5x5 --density 0.6 --devices cpu
// (--devices cpu,cuda for a GPU; cuda-emu runs the CUDA kernels on the host emulator: a correctness tool, slow;
// --job dry|short|default picks BenchmarkDotNet's job).
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Slak;

var options = KernelOptions.Parse(args);
KernelBenchmark.Options = options;
var job = options.Job switch
{
    "dry" => Job.Dry,
    "short" => Job.ShortRun,
    "default" => Job.Default,
    _ => throw new ArgumentException($"--job must be dry, short or default, got '{options.Job}'"),
};
// In-process: the benchmark runs in this process, so the options parsed above reach it.
var config = DefaultConfig.Instance.AddJob(job.WithToolchain(InProcessEmitToolchain.Instance));
BenchmarkRunner.Run<KernelBenchmark>(config);

// #region kernel-benchmark
/// <summary>The decomposed depthwise convolution at one shape, per device.</summary>
public class KernelBenchmark
{
    public static KernelOptions Options { get; set; } = KernelOptions.Parse([]);

    public static IEnumerable<string> Devices => Options.Devices;

    [ParamsSource(nameof(Devices))]
    public string Device { get; set; } = "cpu";

    private Tensor _x = null!;
    private Tensor[] _weights = null!;
    private Tensor?[] _masks = null!;

    [GlobalSetup]
    public void Setup()
    {
        var device = Slak.Device.Parse(Device);
        var rng = new SlakRandom(seed: 42);
        var o = Options;
        _x = Tensor.RandN(rng, o.Shape, device);
        _weights = [.. o.Branches.Select(k => Tensor.RandN(rng, [o.Shape[1], 1, k.Kh, k.Kw], device, std: 0.02f))];
        _masks = [.. o.Branches.Select(k => o.Density >= 1 ? null : RandomMask(rng, [o.Shape[1], 1, k.Kh, k.Kw], o.Density, device))];
        foreach (var w in _weights) w.RequiresGrad = true;
    }

    [Benchmark(Description = "forward")]
    public void Forward()
    {
        using var scope = TensorScope.Begin();
        using var noGrad = Slak.Autograd.GradMode.NoGrad();
        var ys = F.DecomposedDepthwiseConv2d(_x, _weights, _masks);
        _ = ys[0].ToArray().Length; // waits for the device
    }

    [Benchmark(Description = "forward+backward")]
    public void ForwardBackward()
    {
        using var scope = TensorScope.Begin();
        var ys = F.DecomposedDepthwiseConv2d(_x, _weights, _masks);
        // Backward(gradient) seeds each branch with ones, as a sum over all outputs would, without an extra kernel.
        var sum = ys[0];
        for (int b = 1; b < ys.Length; b++) sum = F.Add(sum, ys[b]);
        sum.Backward(Tensor.Ones(sum.Shape, sum.Device));
        _ = _weights[0].Grad!.ToArray().Length;
        foreach (var w in _weights) w.ZeroGrad();
    }

    private static Tensor RandomMask(SlakRandom rng, int[] shape, double density, Slak.Device device)
    {
        var keep = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int i = 0; i < keep.Length; i++) keep[i] = rng.NextDouble() < density ? 1f : 0f;
        return Tensor.FromArray(keep, shape, device);
    }
}
// #endregion

/// <summary>The command line: --shape N,C,H,W --branches KhxKw,... --density D --devices a,b --job dry|short|default.</summary>
public sealed record KernelOptions(int[] Shape, (int Kh, int Kw)[] Branches, double Density, string[] Devices, string Job)
{
    public static KernelOptions Parse(string[] args)
    {
        var o = new KernelOptions([8, 124, 56, 56], [(51, 5), (5, 51), (5, 5)], 0.6, ["cpu"], "short");
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            string v = args[i + 1];
            o = args[i] switch
            {
                "--shape" => o with { Shape = [.. v.Split(',').Select(int.Parse)] },
                "--branches" => o with { Branches = [.. v.Split(',').Select(b => b.Split('x')).Select(p => (int.Parse(p[0]), int.Parse(p[1])))] },
                "--density" => o with { Density = double.Parse(v, System.Globalization.CultureInfo.InvariantCulture) },
                "--devices" => o with { Devices = v.Split(',') },
                "--job" => o with { Job = v },
                _ => throw new ArgumentException($"unknown option {args[i]} (expected --shape, --branches, --density, --devices, --job)"),
            };
        }
        if (o.Shape.Length != 4) throw new ArgumentException($"--shape needs N,C,H,W, got {string.Join(",", o.Shape)}");
        if (o.Density is <= 0 or > 1) throw new ArgumentException($"--density must be in (0, 1], got {o.Density}");
        return o;
    }
}
