// Same-process A/B of this change's two CPU paths on slak_nano's shapes (batch 128), interleaved rounds, best of N
// (the best is the least disturbed by other processes on a shared machine): the block MLP fused
// (F.LinearGeluLinear: GEMM epilogues) against F.Linear -> F.Gelu -> F.Linear, forward + backward; and the decomposed
// depthwise convolution on the late stages' small maps with the small-map path on and off (forward, input gradient,
// weight gradient). Prints a Markdown table.
using Slak.Autograd;
using Slak.Backends.Cpu;
using Slak.Bench.DwConv;

namespace Slak.Bench.Train;

internal static class FusionAb
{
    [BenchProgram("fusion-ab", "fused MLP vs unfused, small-map depthwise path on vs off, slak_nano shapes [--reps N]")]
    private static int Run(string[] args)
    {
        int reps = DwConvBench.ParseInt(args, "--reps", 15);
        Console.WriteLine($"fusion-ab: best of {reps} interleaved rounds; {DateTime.UtcNow:u}; threads {CpuParallel.Threads}; load {RunInfo.LoadAverage()}");
        Console.WriteLine();
        Console.WriteLine("| case | shape | before ms | after ms | after / before |");
        Console.WriteLine("|---|---|---:|---:|---:|");
        var rng = new Random(1);
        int[] widths = [31, 62, 124, 249];
        int[] sides = [8, 4, 2, 1];
        for (int s = 0; s < 4; s++)
        {
            int c = widths[s], hw = sides[s];
            var x = BenchData.Param(rng, [128, hw, hw, c], 1);
            var w1 = BenchData.Param(rng, [4 * c, c], 1 / Math.Sqrt(c));
            var b1 = BenchData.Param(rng, [4 * c], 0.1);
            var w2 = BenchData.Param(rng, [c, 4 * c], 1 / Math.Sqrt(4 * c));
            var b2 = BenchData.Param(rng, [c], 0.1);
            var g = Tensor.FromArray(BenchData.Uniform(rng, (int)x.Numel, 1), x.ShapeArray, Device.Cpu);
            void Mlp(bool fused)
            {
                using var scope = TensorScope.Begin();
                var y = fused ? F.LinearGeluLinear(x, w1, b1, w2, b2) : F.Linear(F.Gelu(F.Linear(x, w1, b1)), w2, b2);
                y.Backward(g);
                foreach (var p in new[] { x, w1, b1, w2, b2 }) p.ZeroGrad();
            }
            var (a, b) = Interleaved.Best(reps, () => Mlp(false), () => Mlp(true));
            Row($"MLP fwd+bwd, stage {s + 1}", $"(128, {hw}, {hw}, {c}) -> {4 * c}", a, b);
        }
        int[] kernels = [15, 9, 5, 5];
        for (int s = 1; s < 4; s++)
        {
            int c = widths[s], hw = sides[s], m = kernels[s], n = 128, len = n * c * hw * hw;
            var xs = BenchData.Uniform(rng, len, 1);
            var branches = new List<CpuDwConvBranch>();
            foreach (var (kh, kw) in new[] { (m, 3), (3, m), (3, 3) })
            {
                var mask = Enumerable.Range(0, c * kh * kw).Select(_ => rng.NextDouble() < 0.6 ? 1f : 0f).ToArray();
                branches.Add(new CpuDwConvBranch(kh, kw, BenchData.Uniform(rng, c * kh * kw, 0.3), mask, CpuDwConvTapList.FromMask(c, kh, kw, mask, 1)));
            }
            var ys = branches.Select(_ => new Memory<float>(new float[len])).ToList();
            var dys = branches.Select(_ => new ReadOnlyMemory<float>(BenchData.Uniform(rng, len, 1))).ToList();
            var dx = new float[len];
            var dws = branches.Select(br => new Memory<float>(new float[c * br.Kh * br.Kw])).ToList();
            void Dw(bool small)
            {
                CpuDwConvSmallMap.Enabled = small;
                CpuDwConvDecomposed.Forward(n, c, hw, hw, branches, xs, ys, Span<float>.Empty);
                CpuDwConvDecomposed.BackwardData(n, c, hw, hw, branches, dys, dx);
                CpuDwConvDecomposed.BackwardFilter(n, c, hw, hw, branches, xs, dys, dws, skipMasked: true);
            }
            var (a, b) = Interleaved.Best(reps, () => Dw(false), () => Dw(true));
            CpuDwConvSmallMap.Enabled = true;
            Row($"depthwise fwd+dX+dW, stage {s + 1}", $"(128, {c}, {hw}, {hw}), {m}x3+3x{m}+3x3, density 0.6", a, b);
        }
        return 0;
    }

    private static void Row(string name, string shape, double a, double b) =>
        Console.WriteLine(FormattableString.Invariant($"| {name} | {shape} | {a:F3} | {b:F3} | {b / a:F2} |"));
}
