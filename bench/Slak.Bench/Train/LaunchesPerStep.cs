// Kernel launches per training step on cuda-emu, as the emulator counts them (EmulatedDevice.LaunchCounts: every
// launch of every kernel, by name), for a small SLaK model: the forward pass, cross-entropy, the backward pass and
// the AdamW step of one batch, with sparse masks (density 0.6) bound to the depthwise convolutions as sparse
// training binds them. The first step is a warm-up; the later steps must launch the same kernels. GEMMs go to the
// host GEMM (cuBLAS on a GPU) and are not kernel launches of ours, so they are not in the count. --unfused runs each
// large kernel's branches as separate depthwise convolutions (ReparamLargeKernelConv.Fused = false).
//   dotnet run -c Release --project bench/Slak.Bench -- launches-per-step [--model tiny|<preset>] [--batch N]
//                                                                         [--size N] [--unfused]
using System.Globalization;
using Slak.Autograd;
using Slak.Cuda.Emulation;
using Slak.Models;
using Slak.NN;
using Slak.Optim;

namespace Slak.Bench.Train;

internal static class LaunchesPerStep
{
    [BenchProgram("launches-per-step", "kernel launches per training step on cuda-emu (small SLaK model, by kernel)")]
    private static int Run(string[] args)
    {
        string model = "tiny";
        int batch = 4, size = 32, steps = 2;
        bool unfused = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--model": model = args[++i]; break;
                case "--batch": batch = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--size": size = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--unfused": unfused = true; break;
                default:
                    Console.Error.WriteLine(
                        $"unknown argument '{args[i]}' (use --model tiny|<preset>, --batch N, --size N, --unfused)");
                    return 2;
            }
        }
        var device = Device.CudaEmu;
        var config = model == "tiny"
            ? new ModelConfig { InChans = 1, NumClasses = 10, Depths = [1, 1, 1, 1], Dims = [8, 16, 32, 64], KernelSize = [7, 7, 5, 5, 3], Decom = true }
            : ModelPresets.Get(model).Config with { InChans = 1, NumClasses = 10, DropPathRate = 0 };
        var net = new SlakModel(config.Validate(), ModuleInit.FromRandom(new SlakRandom(1), device));
        var rng = new SlakRandom(2);
        int largeKernels = 0;
        foreach (var (_, m) in net.NamedModules())
        {
            if (m is ReparamLargeKernelConv lk)
            {
                largeKernels++;
                lk.Fused = !unfused;
            }
            if (m is not DepthwiseConv2d dw) continue;
            var mask = new float[dw.Weight.Numel];
            for (int k = 0; k < mask.Length; k++) mask[k] = rng.NextDouble() < 0.6 ? 1f : 0f;
            dw.WeightMask = Tensor.FromArray(mask, dw.Weight.ShapeArray, device);
        }
        var optimizer = new AdamW(net.NamedParameters(), lr: 1e-3f);
        var images = new float[batch * size * size];
        for (int k = 0; k < images.Length; k++) images[k] = (float)(rng.NextDouble() - 0.5);
        int[] labels = Enumerable.Range(0, batch).Select(k => k % 10).ToArray();
        using var x = Tensor.FromArray(images, [batch, 1, size, size], device);
        net.Train();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"model {model} ({largeKernels} large kernels{(unfused ? ", unfused" : "")}, " +
            $"{net.ParameterCount():N0} parameters), batch {batch} x 1 x {size} x {size}, cuda-emu"));
        Dictionary<string, long> last = [];
        for (int s = 0; s <= steps; s++)
        {
            var before = new Dictionary<string, long>(EmulatedDevice.LaunchCounts);
            using (TensorScope.Begin())
            {
                var loss = F.CrossEntropy(net.Forward(x), labels);
                _ = loss.Item();
                loss.Backward();
            }
            using (TensorScope.Begin())
            using (GradMode.NoGrad())
            {
                optimizer.Step();
                net.ZeroGrad();
            }
            last = EmulatedDevice.LaunchCounts
                .Select(kv => (kv.Key, Count: kv.Value - before.GetValueOrDefault(kv.Key)))
                .Where(kv => kv.Count > 0).ToDictionary(kv => kv.Key, kv => kv.Count);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"step {s}{(s == 0 ? " (warm-up)" : "")}: {last.Values.Sum()} kernel launches"));
        }
        Console.WriteLine("| kernel | launches per step |");
        Console.WriteLine("|---|---:|");
        foreach (var (kernel, count) in last.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {kernel} | {count} |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| total | {last.Values.Sum()} |"));
        return 0;
    }
}
