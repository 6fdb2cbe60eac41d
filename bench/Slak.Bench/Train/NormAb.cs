// Same-process A/B of the norm operators on slak_nano's shapes (batch 128), interleaved rounds (alternating which side
// goes first), best of N (the best is the least disturbed by other processes on a shared machine): the block's
// LayerNorm with its NCHW -> NHWC permute fused (F.LayerNormToChannelsLast) against F.ToChannelsLast -> F.LayerNorm,
// forward + backward through autograd; and the CPU training BatchNorm's forward kernel with one-pass statistics against
// the two-pass statistics it replaced; and the block's epilogue fused (F.ChannelsLastResidual) against F.MulLastDim ->
// F.ToChannelsFirst -> F.Add, forward + backward (no DropPath, as in the default run). Prints a Markdown table; then
// the BatchNorm2d and channels-first LayerNorm kernels before/after their backend switches on the slak_nano and
// slak_nano64 shapes, with the fraction of the cache bandwidth measured in the same run.
using Slak.Autograd;
using Slak.Backends.Cpu;
using Slak.Bench.DwConv;

namespace Slak.Bench.Train;

internal static class NormAb
{
    [BenchProgram("norm-ab", "LayerNorm + permute fused vs unfused, BatchNorm one-pass vs two-pass statistics, block epilogue fused vs unfused, slak_nano shapes; BatchNorm/LayerNorm kernels before/after with cache-bandwidth fractions [--reps N]")]
    private static int Run(string[] args)
    {
        int reps = DwConvBench.ParseInt(args, "--reps", 30);
        Console.WriteLine($"norm-ab: best of {reps} interleaved rounds; {DateTime.UtcNow:u}; threads {CpuParallel.Threads}; load {RunInfo.LoadAverage()}");
        Console.WriteLine();
        Console.WriteLine("| case | shape | before ms | after ms | after / before |");
        Console.WriteLine("|---|---|---:|---:|---:|");
        var rng = new Random(1);
        int[] widths = [31, 62, 124, 249];
        int[] sides = [8, 4, 2, 1];
        for (int s = 0; s < 4; s++)
        {
            int c = widths[s], hw = sides[s];
            var x = BenchData.Param(rng, [128, c, hw, hw], 1);
            var w = BenchData.Param(rng, [c], 1);
            var b = BenchData.Param(rng, [c], 0.1);
            var g = Tensor.FromArray(BenchData.Uniform(rng, (int)x.Numel, 1), [128, hw, hw, c], Device.Cpu);
            void Ln(bool fused)
            {
                using var scope = TensorScope.Begin();
                var y = fused ? F.LayerNormToChannelsLast(x, w, b, 1e-6f) : F.LayerNorm(F.ToChannelsLast(x), w, b, 1e-6f);
                y.Backward(g);
                foreach (var p in new[] { x, w, b }) p.ZeroGrad();
            }
            var (ta, tb) = Interleaved.Best(reps, () => Ln(false), () => Ln(true));
            Row($"LayerNorm + permute fwd+bwd, stage {s + 1}", $"(128, {c}, {hw}, {hw}) -> NHWC", ta, tb);
        }
        for (int s = 0; s < 4; s++)
        {
            int c = widths[s], hw = sides[s];
            var x = Tensor.FromArray(BenchData.Uniform(rng, 128 * c * hw * hw, 1), [128, c, hw, hw], Device.Cpu);
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
            var (ta, tb) = Interleaved.Best(reps, () => Bn(false), () => Bn(true));
            CpuBackend.BatchNormOnePassStatistics = true;
            Row($"BatchNorm2d training fwd, stage {s + 1}", $"(128, {c}, {hw}, {hw})", ta, tb);
        }
        for (int s = 0; s < 4; s++)
        {
            int c = widths[s], hw = sides[s];
            var input = BenchData.Param(rng, [128, c, hw, hw], 1);
            var y = BenchData.Param(rng, [128, hw, hw, c], 1);
            var gamma = BenchData.Param(rng, [c], 1);
            var g = Tensor.FromArray(BenchData.Uniform(rng, (int)input.Numel, 1), input.ShapeArray, Device.Cpu);
            void Epilogue(bool fused)
            {
                using var scope = TensorScope.Begin();
                var o = fused
                    ? F.ChannelsLastResidual(input, y, gamma, null)
                    : F.Add(input, F.ToChannelsFirst(F.MulLastDim(y, gamma)));
                o.Backward(g);
                foreach (var p in new[] { input, y, gamma }) p.ZeroGrad();
            }
            var (ta, tb) = Interleaved.Best(reps, () => Epilogue(false), () => Epilogue(true));
            Row($"block epilogue (layer scale, NCHW, residual add) fwd+bwd, stage {s + 1}", $"(128, {hw}, {hw}, {c}) -> NCHW", ta, tb);
        }
        Kernels(reps);
        return 0;
    }

    /// <summary>The CPU BatchNorm2d and channels-first LayerNorm kernels on the slak_nano (8x8 .. 1x1) and slak_nano64
    /// (16x16 .. 2x2) shapes at batch 128: before/after through the backend's switches, with the bytes each kernel's
    /// passes move (every pass's reads and writes of batch-sized tensors) over the time, and that rate over the read
    /// bandwidth of a 256 KiB-per-thread buffer measured in the same run (TrainVsTorch's cache probe).</summary>
    private static void Kernels(int reps)
    {
        int threads = CpuParallel.Threads;
        // On a loaded machine the threads of a burst rarely run together: the probe takes the larger of the all-thread
        // burst and the one-thread rate times the threads (both best of 200).
        double together = MemoryBandwidth.Read(threads, 256 << 10, 200);
        double single = MemoryBandwidth.Read(1, 256 << 10, 200);
        double cacheBw = Math.Max(together, single * threads);
        Console.WriteLine();
        Console.WriteLine(FormattableString.Invariant(
            $"cache read bandwidth (256 KiB per thread): {threads} threads together {together:F1} GB/s, 1 thread {single:F1} GB/s; fractions below use {cacheBw:F1} GB/s"));
        Console.WriteLine();
        Console.WriteLine("| kernel | shape | before ms | after ms | after / before | MB moved | before % of cache bw | after % of cache bw |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
        var rng = new Random(2);
        var be = CpuBackend.Instance;
        int smallMap = CpuBackend.LayerNormChannelsFirstSmallMapBelow;
        int[] widths = [31, 62, 124, 249];
        int[] sides = [16, 8, 8, 4, 4, 2, 2, 1];
        for (int k = 0; k < sides.Length; k++)
        {
            int c = widths[k / 2], hw = sides[k];
            int[] shape = [128, c, hw, hw];
            int numel = 128 * c * hw * hw;
            string sh = $"(128, {c}, {hw}, {hw})";
            var x = Tensor.FromArray(BenchData.Uniform(rng, numel, 1), shape, Device.Cpu);
            var dy = Tensor.FromArray(BenchData.Uniform(rng, numel, 1), shape, Device.Cpu);
            var y = Tensor.Empty(shape, Device.Cpu);
            var dx = Tensor.Empty(shape, Device.Cpu);
            var w = Tensor.FromArray(BenchData.Uniform(rng, c, 1), [c], Device.Cpu);
            var b = Tensor.FromArray(BenchData.Uniform(rng, c, 0.1), [c], Device.Cpu);
            var rm = Tensor.Zeros([c], Device.Cpu);
            var rv = Tensor.Ones([c], Device.Cpu);
            var sm = Tensor.Empty([c], Device.Cpu);
            var si = Tensor.Empty([c], Device.Cpu);
            var dw = Tensor.Empty([c], Device.Cpu);
            var db = Tensor.Empty([c], Device.Cpu);
            be.BatchNormTrain(x, w, b, rm, rv, 0.1f, 1e-5f, y, sm, si);
            void BnBwd(bool cols)
            {
                CpuBackend.BatchNormColumnSums = cols;
                be.BatchNormBackward(x, w, sm, si, dy, dx, dw, db);
            }
            // Reads: dy, x (sums); dy, x (dx). Writes: dx.
            KernelRow("BatchNorm2d backward", sh, Interleaved.Best(reps, () => BnBwd(false), () => BnBwd(true)), 5.0 * numel * 4, cacheBw);
            void BnFwd(bool cols)
            {
                CpuBackend.BatchNormColumnSums = cols;
                be.BatchNormTrain(x, w, b, rm, rv, 0.1f, 1e-5f, y, sm, si);
            }
            // Reads: x (statistics), x (output). Writes: y.
            KernelRow("BatchNorm2d training fwd", sh, Interleaved.Best(reps, () => BnFwd(false), () => BnFwd(true)), 3.0 * numel * 4, cacheBw);
            CpuBackend.BatchNormColumnSums = true;
            var (te, _) = Interleaved.Best(reps, () => be.BatchNormEval(x, w, b, rm, rv, 1e-5f, y), () => { });
            // Reads: x. Writes: y. One pass, unchanged: 'after' repeats 'before'.
            KernelRow("BatchNorm2d eval (unchanged)", sh, (te, te), 2.0 * numel * 4, cacheBw);
            var mean = Tensor.Empty([128, 1, hw, hw], Device.Cpu);
            var rstd = Tensor.Empty([128, 1, hw, hw], Device.Cpu);
            be.LayerNormChannelsFirst(x, w, b, 1e-6f, y, mean, rstd);
            void LnBwd(bool once)
            {
                CpuBackend.LayerNormChannelsFirstMeansOnce = once;
                CpuBackend.LayerNormChannelsFirstSmallMapBelow = once ? smallMap : 0;
                be.LayerNormChannelsFirstBackward(x, w, mean, rstd, dy, dx, dw, db);
            }
            // Reads: x, dy (sums); x, dy (dx). Writes: dx.
            KernelRow("LayerNorm channels-first backward (means once, small-map path)", sh, Interleaved.Best(reps, () => LnBwd(false), () => LnBwd(true)), 5.0 * numel * 4, cacheBw);
            CpuBackend.LayerNormChannelsFirstMeansOnce = true;
            CpuBackend.LayerNormChannelsFirstSmallMapBelow = smallMap;
            var yl = Tensor.Empty([128, hw, hw, c], Device.Cpu);
            var dyl = Tensor.FromArray(BenchData.Uniform(rng, numel, 1), [128, hw, hw, c], Device.Cpu);
            var ml = Tensor.Empty([128 * hw * hw], Device.Cpu);
            var rl = Tensor.Empty([128 * hw * hw], Device.Cpu);
            be.LayerNormNchwToNhwc(x, w, b, 1e-6f, yl, ml, rl);
            void LlBwd(bool one)
            {
                CpuBackend.LayerNormLayoutOneRowPass = one;
                be.LayerNormNchwToNhwcBackward(x, w, ml, rl, dyl, dx, dw, db);
            }
            // Reads: x (gathered), dy (NHWC). Writes: dx (NCHW).
            KernelRow("LayerNorm NCHW -> NHWC backward (one row pass)", sh, Interleaved.Best(reps, () => LlBwd(false), () => LlBwd(true)), 3.0 * numel * 4, cacheBw);
            CpuBackend.LayerNormLayoutOneRowPass = true;
            // Reads: x (statistics and output from the gathered tile). Writes: y (NHWC). Unchanged.
            var (tl, _) = Interleaved.Best(reps, () => be.LayerNormNchwToNhwc(x, w, b, 1e-6f, yl, ml, rl), () => { });
            KernelRow("LayerNorm NCHW -> NHWC fwd (unchanged)", sh, (tl, tl), 2.0 * numel * 4, cacheBw);
            void LlSimd(bool simd, bool backward)
            {
                CpuBackend.LayerNormLayoutSimdTranspose = simd;
                if (backward) be.LayerNormNchwToNhwcBackward(x, w, ml, rl, dyl, dx, dw, db);
                else be.LayerNormNchwToNhwc(x, w, b, 1e-6f, yl, ml, rl);
            }
            KernelRow("LayerNorm NCHW -> NHWC fwd (8x8 transposes)", sh,
                      Interleaved.Best(reps, () => LlSimd(false, false), () => LlSimd(true, false)), 2.0 * numel * 4, cacheBw);
            KernelRow("LayerNorm NCHW -> NHWC backward (8x8 transposes)", sh,
                      Interleaved.Best(reps, () => LlSimd(false, true), () => LlSimd(true, true)), 3.0 * numel * 4, cacheBw);
            CpuBackend.LayerNormLayoutSimdTranspose = true;
        }
    }

    private static void KernelRow(string name, string shape, (double A, double B) t, double bytes, double cacheBw)
    {
        double fa = bytes / (t.A * 1e-3) / 1e9 / cacheBw * 100, fb = bytes / (t.B * 1e-3) / 1e9 / cacheBw * 100;
        Console.WriteLine(FormattableString.Invariant(
            $"| {name} | {shape} | {t.A:F3} | {t.B:F3} | {t.B / t.A:F2} | {bytes / 1e6:F2} | {fa:F0} | {fb:F0} |"));
    }

    private static void Row(string name, string shape, double a, double b) =>
        Console.WriteLine(FormattableString.Invariant($"| {name} | {shape} | {a:F3} | {b:F3} | {b / a:F2} |"));
}
