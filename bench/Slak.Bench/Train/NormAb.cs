// Same-process A/B of the norm operators on slak_nano's shapes (batch 128), interleaved rounds (alternating which
// side goes first), best of N (the best is the least disturbed by other processes on a shared machine): the block's LayerNorm with its NCHW -> NHWC permute
// fused (F.LayerNormToChannelsLast) against F.ToChannelsLast -> F.LayerNorm, forward + backward through autograd; and
// the CPU training BatchNorm's forward kernel with one-pass statistics against the two-pass statistics it replaced;
// and the block's epilogue fused (F.ChannelsLastResidual) against F.MulLastDim -> F.ToChannelsFirst -> F.Add, forward
// + backward (no DropPath, as in the default run). Prints a Markdown table.
using System.Diagnostics;
using Slak.Autograd;
using Slak.Backends.Cpu;
using Slak.Bench.DwConv;

namespace Slak.Bench.Train;

internal static class NormAb
{
    [BenchProgram("norm-ab", "LayerNorm + permute fused vs unfused, BatchNorm one-pass vs two-pass statistics, block epilogue fused vs unfused, slak_nano shapes [--reps N]")]
    private static int Run(string[] args)
    {
        int reps = DwConvBench.ParseInt(args, "--reps", 30);
        Console.WriteLine($"norm-ab: best of {reps} interleaved rounds; {DateTime.UtcNow:u}; threads {CpuParallel.Threads}; load {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine();
        Console.WriteLine("| case | shape | before ms | after ms | after / before |");
        Console.WriteLine("|---|---|---:|---:|---:|");
        var rng = new Random(1);
        int[] widths = [31, 62, 124, 249];
        int[] sides = [8, 4, 2, 1];
        for (int s = 0; s < 4; s++)
        {
            int c = widths[s], hw = sides[s];
            var x = Param(rng, [128, c, hw, hw], 1);
            var w = Param(rng, [c], 1);
            var b = Param(rng, [c], 0.1);
            var g = Tensor.FromArray(Rand(rng, (int)x.Numel, 1), [128, hw, hw, c], Device.Cpu);
            void Ln(bool fused)
            {
                using var scope = TensorScope.Begin();
                var y = fused ? F.LayerNormToChannelsLast(x, w, b, 1e-6f) : F.LayerNorm(F.ToChannelsLast(x), w, b, 1e-6f);
                y.Backward(g);
                foreach (var p in new[] { x, w, b }) p.ZeroGrad();
            }
            var (ta, tb) = Best(reps, () => Ln(false), () => Ln(true));
            Row($"LayerNorm + permute fwd+bwd, stage {s + 1}", $"(128, {c}, {hw}, {hw}) -> NHWC", ta, tb);
        }
        for (int s = 0; s < 4; s++)
        {
            int c = widths[s], hw = sides[s];
            var x = Tensor.FromArray(Rand(rng, 128 * c * hw * hw, 1), [128, c, hw, hw], Device.Cpu);
            var y = Tensor.Empty(x.ShapeArray, Device.Cpu);
            var w = Tensor.Ones([c], Device.Cpu);
            var b = Tensor.Zeros([c], Device.Cpu);
            var rm = Tensor.Zeros([c], Device.Cpu);
            var rv = Tensor.Ones([c], Device.Cpu);
            var sm = Tensor.Empty([c], Device.Cpu);
            var si = Tensor.Empty([c], Device.Cpu);
            void Bn(bool onePass)
            {
                CpuBackend.BatchNormOnePassStatistics = onePass;
                CpuBackend.Instance.BatchNormTrain(x, w, b, rm, rv, 0.1f, 1e-5f, y, sm, si);
            }
            var (ta, tb) = Best(reps, () => Bn(false), () => Bn(true));
            CpuBackend.BatchNormOnePassStatistics = true;
            Row($"BatchNorm2d training fwd, stage {s + 1}", $"(128, {c}, {hw}, {hw})", ta, tb);
        }
        for (int s = 0; s < 4; s++)
        {
            int c = widths[s], hw = sides[s];
            var input = Param(rng, [128, c, hw, hw], 1);
            var y = Param(rng, [128, hw, hw, c], 1);
            var gamma = Param(rng, [c], 1);
            var g = Tensor.FromArray(Rand(rng, (int)input.Numel, 1), input.ShapeArray, Device.Cpu);
            void Epilogue(bool fused)
            {
                using var scope = TensorScope.Begin();
                var o = fused
                    ? F.ChannelsLastResidual(input, y, gamma, null)
                    : F.Add(input, F.ToChannelsFirst(F.MulLastDim(y, gamma)));
                o.Backward(g);
                foreach (var p in new[] { input, y, gamma }) p.ZeroGrad();
            }
            var (ta, tb) = Best(reps, () => Epilogue(false), () => Epilogue(true));
            Row($"block epilogue (layer scale, NCHW, residual add) fwd+bwd, stage {s + 1}", $"(128, {hw}, {hw}, {c}) -> NCHW", ta, tb);
        }
        return 0;
    }

    private static void Row(string name, string shape, double a, double b) =>
        Console.WriteLine(FormattableString.Invariant($"| {name} | {shape} | {a:F3} | {b:F3} | {b / a:F2} |"));

    private static (double A, double B) Best(int reps, Action a, Action b)
    {
        for (int i = 0; i < 3; i++) { a(); b(); }
        double ba = double.MaxValue, bb = double.MaxValue;
        for (int i = 0; i < reps; i++)
        {
            // Alternate which side runs first, so that neither always inherits the other's cache state.
            if (i % 2 == 0) { ba = Math.Min(ba, Time(a)); bb = Math.Min(bb, Time(b)); }
            else { bb = Math.Min(bb, Time(b)); ba = Math.Min(ba, Time(a)); }
        }
        return (ba, bb);
    }

    private static double Time(Action run)
    {
        long t0 = Stopwatch.GetTimestamp();
        run();
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    private static float[] Rand(Random rng, int n, double std) =>
        Enumerable.Range(0, n).Select(_ => (float)(std * (rng.NextDouble() * 2 - 1))).ToArray();

    private static Tensor Param(Random rng, int[] shape, double std)
    {
        var t = Tensor.FromArray(Rand(rng, shape.Aggregate(1, (p, d) => p * d), std), shape, Device.Cpu);
        t.RequiresGrad = true;
        return t;
    }
}
