// `dwconv-model-path`: the model's large kernel (ReparamLargeKernelConv, SLaK-T kernels, BatchNorm per branch) on the
// CPU, fused operator (F.DecomposedDepthwiseConv2d: one input pass for all branches, one fused input-gradient pass,
// BatchNorms folded in inference) against the per-branch path (each branch its own depthwise conv), best of
// interleaved runs in one process: training forward+backward and inference forward. Options: --reps R,
// --threads T, --stage S (1-4, default all), --density D (masks bound to the depthwise modules; default 1 = dense),
// --passes (also the backend calls alone: forward, input grad, weight grad, per-branch calls vs one fused call).
using Slak.Autograd;
using Slak.Backends.Cpu;
using Slak.Models;
using Slak.NN;

namespace Slak.Bench.DwConv;

internal static class DwConvModelPath
{
    [BenchProgram("dwconv-model-path", "model large kernel: fused operator vs per-branch path (train fwd+bwd, infer)")]
    private static int Run(string[] args)
    {
        int reps = DwConvBench.ParseInt(args, "--reps", 3);
        CpuParallel.Threads = DwConvBench.ParseInt(args, "--threads", CpuParallel.Threads);
        int only = DwConvBench.ParseInt(args, "--stage", 0);
        int di = Array.IndexOf(args, "--density");
        double density = di >= 0 && di + 1 < args.Length
            ? double.Parse(args[di + 1], System.Globalization.CultureInfo.InvariantCulture) : 1.0;
        Console.WriteLine($"# {DwConvBench.Machine()}; threads {CpuParallel.Threads}; best of {reps} interleaved runs; " +
            $"wall time; mask density {density}");
        Console.WriteLine("| N,C,H,M | per-branch train ms | fused train ms | train x | per-branch infer ms | " +
            "fused infer ms | infer x |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var (n, c, h, m) in DwConvBench.Stages.Where((_, i) => only == 0 || only == i + 1))
        {
            var rng = new SlakRandom(1);
            var module = new ReparamLargeKernelConv(c, m, 5, decom: true, bn: true, ModuleInit.FromRandom(rng));
            if (density < 1)
                foreach (var b in module.Branches)
                {
                    var mask = new float[b.Conv.Weight.Numel];
                    for (int i = 0; i < mask.Length; i++) mask[i] = rng.NextDouble() < density ? 1f : 0f;
                    b.Conv.WeightMask = Tensor.FromArray(mask, b.Conv.Weight.Shape, Device.Cpu);
                }
            var x = Tensor.RandN(rng, [n, c, h, h], Device.Cpu);
            var r = Tensor.RandN(rng, [n, c, h, h], Device.Cpu);
            Action Train(bool fused) => () =>
            {
                module.Fused = fused;
                module.Train();
                using var scope = TensorScope.Begin();
                F.Sum(F.Mul(module.Forward(x), r)).Backward();
                foreach (var p in module.Parameters()) p.ZeroGrad();
            };
            Action Infer(bool fused) => () =>
            {
                module.Fused = fused;
                module.Eval();
                using var scope = TensorScope.Begin();
                using var noGrad = GradMode.NoGrad();
                _ = module.Forward(x);
            };
            var t = DwConvBench.BestOfInterleavedMs(reps, Train(false), Train(true), Infer(false), Infer(true));
            Console.WriteLine($"| {n},{c},{h},{m} | {t[0]:F1} | {t[1]:F1} | {t[0] / t[1]:F2} | {t[2]:F1} | " +
                $"{t[3]:F1} | {t[2] / t[3]:F2} |");
            if (args.Contains("--passes")) Passes(module, x, reps);
        }
        return 0;
    
    }

    // The backend calls alone, fused (one call for all branches) against one one-branch call per branch.
    private static void Passes(ReparamLargeKernelConv module, Tensor x, int reps)
    {
        var be = x.Backend;
        var ws = module.Branches.Select(b => b.Conv.Weight).ToArray();
        var ms = module.Branches.Select(b => b.Conv.WeightMask).ToArray();
        var ys = ws.Select(_ => Tensor.Empty(x.Shape, x.Device)).ToArray();
        var dws = ws.Select(w => (Tensor?)Tensor.Empty(w.Shape, w.Device)).ToArray();
        var dx = Tensor.Empty(x.Shape, x.Device);
        var t = DwConvBench.BestOfInterleavedMs(reps,
            () =>
            {
                for (int b = 0; b < ws.Length; b++) be.DecomposedDwConvForward(x, [ws[b]], [ms[b]], [ys[b]]);
            },
            () => be.DecomposedDwConvForward(x, ws, ms, ys),
            () =>
            {
                for (int b = 0; b < ws.Length; b++) be.DecomposedDwConvBackwardData([ys[b]], [ws[b]], [ms[b]], dx);
            },
            () => be.DecomposedDwConvBackwardData(ys, ws, ms, dx),
            () =>
            {
                for (int b = 0; b < ws.Length; b++) be.DecomposedDwConvBackwardFilter(x, [ys[b]], [ms[b]], [dws[b]]);
            },
            () => be.DecomposedDwConvBackwardFilter(x, ys, ms, dws));
        Console.WriteLine($"|   passes: fwd {t[0]:F1} / {t[1]:F1} ms, dgrad {t[2]:F1} / {t[3]:F1} ms, " +
            $"wgrad {t[4]:F1} / {t[5]:F1} ms (per-branch / fused) | | | | | |");
    }
}
