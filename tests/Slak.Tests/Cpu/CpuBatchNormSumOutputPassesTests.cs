// The fused BatchNorm sum's output-pass kernels: on maps smaller than a cache line (H*W < 16) the three-branch 512-bit
// pass with line-aligned parts (CpuBackend.Norm.BatchSumSmallMaps.cs, SLAK_BN_SUM_SMALL), on maps of whole lines one
// channel plane a call (CpuBackend.Norm.BatchSumPlanes.cs, SLAK_BN_SUM_PLANES). Both on against both off bit for bit,
// and y and every dx_b against a float64 reference; at the presets' stage shapes (batch 128 on the small maps, batch
// scaled down on the large: slak_nano 8x8 .. 1x1, slak_nano64 16x16 .. 2x2) and odd ones (channel counts that leave a
// scalar tail in the last part, maps of 3 and 9 positions, 4x8); at 1, 2 and 3 threads, serial and parallel; outputs
// NaN-poisoned before every call; the same bits on a repeated call. The statistics passes' fold (parameter spans once
// per part, eight channels a vector; the forward's three branches summed in one sweep: CpuBackend.Norm.BatchSumFold.cs,
// SLAK_BN_SUM_FOLD), the small-map kernels' overlapped last vector (SLAK_BN_SUM_TAIL) and their vector columns down the
// images (CpuBackend.Norm.BatchSumSmallColumns.cs, SLAK_BN_SUM_COLUMNS) are checked the same way: on
// against off bit for bit (every output, the running statistics too), and the saved statistics and parameter
// gradients against float64.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
// Changes BatchNormSerialBelow, BatchNormSumSmallMaps, BatchNormSumPlanes, BatchNormSumFold, BatchNormSumOverlapTail,
// BatchNormSumSmallColumns and CpuParallel.Threads.
[NonParallelizable]
public class CpuBatchNormSumOutputPassesTests
{
    private const float Eps = 1e-5f;

    [TestCase(128, 124, 2, 2)]
    [TestCase(128, 249, 1, 1)]
    [TestCase(128, 249, 2, 2)]
    [TestCase(16, 62, 2, 2)]
    [TestCase(9, 31, 1, 1)]
    [TestCase(7, 13, 1, 3)]
    [TestCase(5, 11, 3, 3)]
    [TestCase(3, 37, 1, 1)]
    [TestCase(12, 31, 8, 8)]
    [TestCase(16, 62, 4, 4)]
    [TestCase(6, 31, 16, 16)]
    [TestCase(10, 62, 8, 8)]
    [TestCase(16, 124, 4, 4)]
    [TestCase(5, 7, 4, 8)]
    [TestCase(4, 25, 2, 2)]
    [TestCase(6, 17, 1, 1)]
    public void MatchesPerImagePassesBitForBitAndFloat64(int n, int c, int h, int w)
    {
        var rng = TestRandom.ForCurrentTest();
        int[] shape = [n, c, h, w];
        int numel = n * c * h * w;
        var xs = Enumerable.Range(0, 3).Select(b => rng.NormalArray(numel, 1.3 + b, 0.4 - b)).ToArray();
        var ws = Enumerable.Range(0, 3).Select(_ => rng.NormalArray(c)).ToArray();
        var bs = Enumerable.Range(0, 3).Select(_ => rng.NormalArray(c, 0.2)).ToArray();
        var dy = rng.NormalArray(numel);
        bool keepSmall = CpuBackend.BatchNormSumSmallMaps, keepPlanes = CpuBackend.BatchNormSumPlanes;
        bool keepFold = CpuBackend.BatchNormSumFold, keepTail = CpuBackend.BatchNormSumOverlapTail;
        bool keepColumns = CpuBackend.BatchNormSumSmallColumns;
        int keepThreads = CpuParallel.Threads, keepSerial = CpuBackend.BatchNormSerialBelow;
        try
        {
            foreach (bool serial in new[] { true, false })
            {
                CpuBackend.BatchNormSerialBelow = serial ? int.MaxValue : 1;
                foreach (int threads in new[] { 1, 2, 3 })
                {
                    CpuParallel.Threads = threads;
                    string what = $"{n}x{c}x{h}x{w} ({(serial ? "serial" : "parallel")}, {threads} threads)";
                    CpuBackend.BatchNormSumSmallMaps = CpuBackend.BatchNormSumPlanes = true;
                    CpuBackend.BatchNormSumFold = CpuBackend.BatchNormSumOverlapTail = true;
                    CpuBackend.BatchNormSumSmallColumns = true;
                    var fresh = Run(xs, ws, bs, dy, shape);
                    CheckFloat64(fresh, xs, ws, bs, dy, shape, what, rng);
                    var again = Run(xs, ws, bs, dy, shape);
                    CpuBackend.BatchNormSumFold = CpuBackend.BatchNormSumOverlapTail = false;
                    CpuBackend.BatchNormSumSmallColumns = false;
                    var unfolded = Run(xs, ws, bs, dy, shape);
                    CpuBackend.BatchNormSumSmallMaps = CpuBackend.BatchNormSumPlanes = false;
                    var old = Run(xs, ws, bs, dy, shape);
                    // The fold with channel-range parts (partial lines at the parts' ends: SLAK_BN_SUM_SMALL=0).
                    CpuBackend.BatchNormSumFold = CpuBackend.BatchNormSumOverlapTail = true;
                    var foldOnly = Run(xs, ws, bs, dy, shape);
                    for (int k = 0; k < fresh.Length; k++)
                    {
                        Expect.Exactly(fresh[k], old[k],
                            rng.Ctx($"{what}: output {k}, new output passes and fold vs old"));
                        Expect.Exactly(fresh[k], unfolded[k], rng.Ctx(
                            $"{what}: output {k}, fold, tail, columns vs SLAK_BN_SUM_FOLD=0 TAIL=0 COLUMNS=0"));
                        Expect.Exactly(foldOnly[k], old[k], rng.Ctx($"{what}: output {k}, fold alone vs old"));
                        Expect.Exactly(again[k], fresh[k], rng.Ctx($"{what}: output {k}, repeated"));
                    }
                }
            }
        }
        finally
        {
            CpuBackend.BatchNormSumSmallMaps = keepSmall;
            CpuBackend.BatchNormSumPlanes = keepPlanes;
            CpuBackend.BatchNormSumFold = keepFold;
            CpuBackend.BatchNormSumOverlapTail = keepTail;
            CpuBackend.BatchNormSumSmallColumns = keepColumns;
            CpuParallel.Threads = keepThreads;
            CpuBackend.BatchNormSerialBelow = keepSerial;
        }
    }

    /// <summary>Forward and backward of the fused sum; returns y, then per branch dx, dweight, dbias, saved mean and
    /// saved 1/std (every output NaN before the call), then per branch the running mean and variance.</summary>
    private static float[][] Run(float[][] xs, float[][] ws, float[][] bs, float[] dy, int[] shape)
    {
        var be = CpuBackend.Instance;
        int c = shape[1];
        Tensor T(float[] d, params int[] s) => Tensor.FromArray((float[])d.Clone(), s, Device.Cpu);
        Tensor Nan(params int[] s) => Tensor.Full(s, float.NaN, Device.Cpu);
        var x = xs.Select(d => T(d, shape)).ToArray();
        var w = ws.Select(d => T(d, c)).ToArray();
        var b = bs.Select(d => T(d, c)).ToArray();
        var rm = Enumerable.Range(0, 3).Select(_ => Tensor.Zeros([c], Device.Cpu)).ToArray();
        var rv = Enumerable.Range(0, 3).Select(_ => Tensor.Ones([c], Device.Cpu)).ToArray();
        var sm = Enumerable.Range(0, 3).Select(_ => Nan(c)).ToArray();
        var si = Enumerable.Range(0, 3).Select(_ => Nan(c)).ToArray();
        var y = Nan(shape);
        var dx = Enumerable.Range(0, 3).Select(_ => Nan(shape)).ToArray();
        var dw = Enumerable.Range(0, 3).Select(_ => Nan(c)).ToArray();
        var db = Enumerable.Range(0, 3).Select(_ => Nan(c)).ToArray();
        be.BatchNormTrainSum(x, w, b, rm, rv, [0.1f, 0.2f, 0.3f], [Eps, Eps, Eps], y, sm, si);
        be.BatchNormBackwardSum(x, w, sm, si, T(dy, shape), dx, dw, db);
        var outputs = new List<float[]> { y.ToArray() };
        for (int k = 0; k < 3; k++)
            outputs.AddRange([dx[k].ToArray(), dw[k].ToArray(), db[k].ToArray(), sm[k].ToArray(), si[k].ToArray()]);
        for (int k = 0; k < 3; k++) outputs.AddRange([rm[k].ToArray(), rv[k].ToArray()]);
        return [.. outputs];
    }

    /// <summary>y = sum_b (w_b xhat_b + b_b) and dx_b = w_b inv_b / M (M dy - sum(dy) - xhat_b sum(dy xhat_b)), the
    /// saved mean and 1/std, dbias = sum(dy) and dweight = sum(dy xhat), in float64 from two-pass statistics.</summary>
    private static void CheckFloat64(float[][] o, float[][] xs, float[][] ws, float[][] bs, float[] dy, int[] shape,
                                     string what, TestRandom rng)
    {
        int n = shape[0], c = shape[1], hw = shape[2] * shape[3];
        double count = (double)n * hw;
        var y = new double[dy.Length];
        for (int b = 0; b < 3; b++)
        {
            var x = xs[b];
            var dx = new double[dy.Length];
            double[] mean = new double[c], invStd = new double[c], dbias = new double[c], dweight = new double[c];
            double gain = 1; // dx's terms are O(|w| / std |dy|), and so is their float rounding
            double dyMass = 0; // the largest sum of |dy| and of |dy xhat| over a channel: the gradients' rounding scale
            for (int ch = 0; ch < c; ch++)
            {
                var idx = Enumerable.Range(0, n).SelectMany(img => Enumerable.Range((img * c + ch) * hw, hw)).ToArray();
                double m = idx.Sum(i => (double)x[i]) / count;
                double inv = 1 / Math.Sqrt(idx.Sum(i => (x[i] - m) * (x[i] - m)) / count + Eps);
                gain = Math.Max(gain, Math.Abs(ws[b][ch]) * inv);
                double sdy = idx.Sum(i => (double)dy[i]), sdyx = idx.Sum(i => dy[i] * (x[i] - m) * inv);
                (mean[ch], invStd[ch], dbias[ch], dweight[ch]) = (m, inv, sdy, sdyx);
                dyMass = Math.Max(dyMass, Math.Max(idx.Sum(i => Math.Abs((double)dy[i])),
                                                   idx.Sum(i => Math.Abs(dy[i] * (x[i] - m) * inv))));
                foreach (int i in idx)
                {
                    double xhat = (x[i] - m) * inv;
                    y[i] += xhat * ws[b][ch] + bs[b][ch];
                    dx[i] = ws[b][ch] * inv / count * (count * dy[i] - sdy - xhat * sdyx);
                }
            }
            // dx cancels three terms of O(|w| inv |dy|); the sums run over up to ~1500 values of O(1).
            Expect.AllClose(o[1 + 5 * b], dx, 5e-5 * gain, 1e-4, rng.Ctx($"{what}: dx {b}"));
            // Float64 sums rounded once to float; the saved mean from float64 sums, 1/std from their variance.
            Expect.AllClose(o[2 + 5 * b], dweight, 1e-6 * dyMass, 1e-5, rng.Ctx($"{what}: dweight {b}"));
            Expect.AllClose(o[3 + 5 * b], dbias, 1e-6 * dyMass, 1e-5, rng.Ctx($"{what}: dbias {b}"));
            Expect.AllClose(o[4 + 5 * b], mean, 1e-6, 1e-5, rng.Ctx($"{what}: saved mean {b}"));
            Expect.AllClose(o[5 + 5 * b], invStd, 1e-6, 1e-4, rng.Ctx($"{what}: saved 1/std {b}"));
        }
        // y: float rounding of each branch's x - mean, scale and shift (~1e-6 of O(1)) and of two adds.
        Expect.AllClose(o[0], y, 5e-5, 1e-5, rng.Ctx($"{what}: y"));
    }
}
