// The large kernel's training tail as one operator, y = sum_b BN_b(x_b) (IBackend.BatchNormSum.cs,
// CpuBackend.Norm.BatchSum.cs): on the CPU backend against the unfused composition (BatchNormTrain per branch and Add,
// BatchNormBackward per branch on the shared gradient) bit for bit, and against a float64 reference for y, the saved
// statistics, the running mean and variance, every dx_b, dweight_b and dbias_b; on slak_nano's and slak_nano64's stage
// shapes (batch scaled down), odd shapes, 1x1 maps, 1 to 3 branches; serial and parallel, at 1 and 2 threads, from run
// to run; the three-branch single sweep against per-branch sweeps, one channel per part against the default split,
// per-position rows against channel scalars in the output passes, the 512-bit kernels against the 256-bit ones.
// Outputs are NaN-poisoned before every call. Then the operator F.BatchNorm2dSum against finite differences of the
// float64 reference, and ReparamLargeKernelConv with FusedBatchNormSum on and off (outputs, running statistics, batch
// counts and every gradient, bit for bit).
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Models;
using Slak.NN;
using Slak.Tests.Support;
using static Slak.Tests.Support.CpuTensors;

namespace Slak.Tests.Cpu;

[TestFixture]
// Changes BatchNormSerialBelow, BatchNormSumOneSweep, BatchNormSumPartBytes, BatchNormSumChannelScalars,
// BatchNormSumWide, CpuParallel.Threads and ReparamLargeKernelConv.FusedBatchNormSum.
[NonParallelizable]
public class CpuBatchNormSumTests
{
    private const float Eps = 1e-5f;

    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    private sealed record Branch(float[] X, float[] W, float[] B, float[] RunMean, float[] RunVar, float Momentum);

    private sealed record Outputs(float[] Y, float[][] SaveMean, float[][] SaveInv, float[][] RunMean, float[][] RunVar,
                                  float[][] Dx, float[][] Dw, float[][] Db)
    {
        public IEnumerable<(string Name, float[] Values)> All()
        {
            yield return ("y", Y);
            for (int b = 0; b < Dx.Length; b++)
            {
                yield return ($"saved mean {b}", SaveMean[b]);
                yield return ($"saved 1/std {b}", SaveInv[b]);
                yield return ($"running mean {b}", RunMean[b]);
                yield return ($"running var {b}", RunVar[b]);
                yield return ($"dx {b}", Dx[b]);
                yield return ($"dweight {b}", Dw[b]);
                yield return ($"dbias {b}", Db[b]);
            }
        }
    }

    private Branch[] Make(int branches, int numel, int c) =>
        Enumerable.Range(0, branches).Select(b => new Branch(_rng.NormalArray(numel, 1.3 + b, 0.4 - b),
            _rng.NormalArray(c), _rng.NormalArray(c, 0.2), _rng.NormalArray(c, 0.1), _rng.NormalArray(c, 0.1, 1),
            0.1f * (b + 1))).ToArray();

    /// <summary>Forward and backward, fused (one call each) or unfused (per-branch BatchNormTrain + Add, per-branch
    /// BatchNormBackward on the same dy).</summary>
    private static Outputs Run(Branch[] br, float[] dyData, int[] shape, bool fused)
    {
        var be = CpuBackend.Instance;
        int c = shape[1], k = br.Length;
        var xs = br.Select(b => CpuCopy(b.X, shape)).ToArray();
        var ws = br.Select(b => CpuCopy(b.W, c)).ToArray();
        var bs = br.Select(b => CpuCopy(b.B, c)).ToArray();
        var rms = br.Select(b => CpuCopy(b.RunMean, c)).ToArray();
        var rvs = br.Select(b => CpuCopy(b.RunVar, c)).ToArray();
        var sms = br.Select(_ => Nan(c)).ToArray();
        var sis = br.Select(_ => Nan(c)).ToArray();
        var y = Nan(shape);
        var dy = CpuCopy(dyData, shape);
        var dxs = br.Select(_ => Nan(shape)).ToArray();
        var dws = br.Select(_ => Nan(c)).ToArray();
        var dbs = br.Select(_ => Nan(c)).ToArray();
        if (fused)
        {
            be.BatchNormTrainSum(xs, ws, bs, rms, rvs, br.Select(b => b.Momentum).ToArray(), Enumerable.Repeat(Eps, k).ToArray(),
                y, sms, sis);
            be.BatchNormBackwardSum(xs, ws, sms, sis, dy, dxs, dws, dbs);
        }
        else
        {
            Tensor? sum = null;
            for (int b = 0; b < k; b++)
            {
                var yb = Nan(shape);
                be.BatchNormTrain(xs[b], ws[b], bs[b], rms[b], rvs[b], br[b].Momentum, Eps, yb, sms[b], sis[b]);
                if (sum is null) { sum = yb; continue; }
                var s = Nan(shape);
                be.Add(sum, yb, s);
                sum = s;
            }
            be.Copy(sum!, y);
            for (int b = 0; b < k; b++) be.BatchNormBackward(xs[b], ws[b], sms[b], sis[b], dy, dxs[b], dws[b], dbs[b]);
        }
        float[][] A(Tensor[] ts) => ts.Select(t => t.ToArray()).ToArray();
        return new Outputs(y.ToArray(), A(sms), A(sis), A(rms), A(rvs), A(dxs), A(dws), A(dbs));
    }

    /// <summary>Every output in float64: per branch the batch statistics (two passes), the running update with the
    /// unbiased variance, y = sum of the normalized branches, dx_b = w inv / M (M dy - sum(dy) - xhat sum(dy xhat)),
    /// dweight_b = sum(dy xhat), dbias_b = sum(dy).</summary>
    private static void CheckFloat64(Outputs o, Branch[] br, float[] dy, int[] shape, string what, TestRandom rng)
    {
        int n = shape[0], c = shape[1], hw = shape[2] * shape[3];
        double count = (double)n * hw;
        var y = new double[dy.Length];
        for (int b = 0; b < br.Length; b++)
        {
            var a = br[b];
            var dx = new double[dy.Length];
            double[] mean = new double[c], inv = new double[c], rm = new double[c], rv = new double[c];
            double[] dw = new double[c], db = new double[c];
            double gain = 1; // the largest |w| / std: dx's terms are O(|w| / std |dy|), and so is their float rounding
            // The largest |x| / std over the channels: the float x - mean carries a rounding of ~2^-24 |x|, so xhat
            // and dx carry relative errors of about 2^-24 |x| / std, large where a channel's few values lie close
            // together (two values per channel at batch 2 on 1x1 maps).
            double spreadCondition = 1;
            for (int ch = 0; ch < c; ch++)
            {
                var idx = Enumerable.Range(0, n).SelectMany(img => Enumerable.Range((img * c + ch) * hw, hw)).ToArray();
                double m = idx.Sum(i => (double)a.X[i]) / count;
                double v = idx.Sum(i => (a.X[i] - m) * (a.X[i] - m)) / count;
                double iv = 1 / Math.Sqrt(v + Eps);
                spreadCondition = Math.Max(spreadCondition, idx.Max(i => Math.Abs((double)a.X[i])) * iv);
                mean[ch] = m;
                inv[ch] = iv;
                gain = Math.Max(gain, Math.Abs(a.W[ch]) * iv);
                rm[ch] = (1 - (double)a.Momentum) * a.RunMean[ch] + a.Momentum * m;
                rv[ch] = (1 - (double)a.Momentum) * a.RunVar[ch] + a.Momentum * v * count / (count - 1);
                double sdy = idx.Sum(i => (double)dy[i]);
                double sdyx = idx.Sum(i => dy[i] * (a.X[i] - m) * iv);
                db[ch] = sdy;
                dw[ch] = sdyx;
                foreach (int i in idx)
                {
                    double xhat = (a.X[i] - m) * iv;
                    y[i] += xhat * a.W[ch] + a.B[ch];
                    dx[i] = a.W[ch] * iv / count * (count * dy[i] - sdy - xhat * sdyx);
                }
            }
            Expect.AllClose(o.SaveMean[b], mean, 1e-6, 1e-6, rng.Ctx($"{what}: saved mean {b}"));
            Expect.AllClose(o.SaveInv[b], inv, 1e-6, 1e-5, rng.Ctx($"{what}: saved 1/std {b}"));
            Expect.AllClose(o.RunMean[b], rm, 1e-6, 1e-6, rng.Ctx($"{what}: running mean {b}"));
            Expect.AllClose(o.RunVar[b], rv, 1e-6, 1e-5, rng.Ctx($"{what}: running var {b}"));
            // dx cancels three terms of O(|w| inv |dy|) (inv is large where a channel has few, close values: two
            // values per channel at batch 2 on 1x1 maps); the sums run over up to ~8000 values of O(1).
            Expect.AllClose(o.Dx[b], dx, 5e-5 * gain, 1e-4 + 8 * Math.Pow(2, -24) * spreadCondition,
                rng.Ctx($"{what}: dx {b}"));
            Expect.AllClose(o.Dw[b], dw, 2e-4, 1e-5, rng.Ctx($"{what}: dweight {b}"));
            Expect.AllClose(o.Db[b], db, 2e-4, 1e-5, rng.Ctx($"{what}: dbias {b}"));
        }
        // y: float rounding of each branch's x - mean, scale and shift (~1e-6 of O(1)) and of two adds.
        Expect.AllClose(o.Y, y, 5e-5, 1e-5, rng.Ctx($"{what}: y"));
    }

    private static void Same(Outputs o, Outputs e, string what, TestRandom rng)
    {
        foreach (var ((name, a), (_, b)) in o.All().Zip(e.All())) Expect.Exactly(a, b, rng.Ctx($"{what}: {name}"));
    }

    // slak_nano stages (8x8 .. 1x1, widths 31 .. 249), slak_nano64 stages (16x16 .. 2x2), batch scaled down; odd
    // channels and maps; 1x1 maps with fewer channels than a vector (the per-branch sweeps), batch 1; 2 and 1 branches.
    [TestCase(3, 12, 31, 8, 8)]
    [TestCase(3, 12, 62, 4, 4)]
    [TestCase(3, 12, 124, 2, 2)]
    [TestCase(3, 12, 249, 1, 1)]
    [TestCase(3, 6, 31, 16, 16)]
    [TestCase(3, 8, 249, 2, 2)]
    [TestCase(3, 7, 13, 3, 5)]
    [TestCase(3, 5, 13, 4, 5)]
    [TestCase(3, 3, 7, 6, 9)]
    [TestCase(3, 33, 5, 1, 1)]
    [TestCase(3, 1, 3, 5, 5)]
    [TestCase(3, 2, 37, 1, 1)]
    [TestCase(2, 5, 19, 3, 3)]
    [TestCase(1, 5, 19, 3, 3)]
    public void MatchesUnfusedBitForBitAndFloat64(int branches, int n, int c, int h, int w)
    {
        int[] shape = [n, c, h, w];
        int numel = n * c * h * w;
        var br = Make(branches, numel, c);
        var dy = _rng.NormalArray(numel);
        int keepThreads = CpuParallel.Threads, keepSerial = CpuBackend.BatchNormSerialBelow;
        int keepPartBytes = CpuBackend.BatchNormSumPartBytes;
        try
        {
            foreach (bool serial in new[] { true, false })
            {
                CpuBackend.BatchNormSerialBelow = serial ? int.MaxValue : 1;
                foreach (int threads in new[] { 1, 2 })
                {
                    CpuParallel.Threads = threads;
                    string what = $"{branches} branches {n}x{c}x{h}x{w} ({(serial ? "serial" : "parallel")}, {threads} threads)";
                    var fused = Run(br, dy, shape, fused: true);
                    CheckFloat64(fused, br, dy, shape, what, _rng);
                    Same(fused, Run(br, dy, shape, fused: false), what + ", fused vs unfused", _rng);
                    Same(Run(br, dy, shape, fused: true), fused, what + ", repeated", _rng);
                    CpuBackend.BatchNormSumOneSweep = false;
                    Same(Run(br, dy, shape, fused: true), fused, what + ", per-branch sweeps vs one sweep", _rng);
                    CpuBackend.BatchNormSumOneSweep = true;
                    CpuBackend.BatchNormSumPartBytes = 64; // one channel per part
                    Same(Run(br, dy, shape, fused: true), fused, what + ", one channel per part", _rng);
                    CpuBackend.BatchNormSumPartBytes = keepPartBytes;
                    CpuBackend.BatchNormSumChannelScalars = false;
                    Same(Run(br, dy, shape, fused: true), fused, what + ", per-position rows vs channel scalars", _rng);
                    CpuBackend.BatchNormSumChannelScalars = true;
                    CpuBackend.BatchNormSumWide = false;
                    Same(Run(br, dy, shape, fused: true), fused, what + ", 256-bit kernels vs 512-bit kernels", _rng);
                    CpuBackend.BatchNormSumWide = true;
                }
            }
        }
        finally
        {
            CpuParallel.Threads = keepThreads;
            CpuBackend.BatchNormSerialBelow = keepSerial;
            CpuBackend.BatchNormSumOneSweep = true;
            CpuBackend.BatchNormSumPartBytes = keepPartBytes;
            CpuBackend.BatchNormSumChannelScalars = true;
            CpuBackend.BatchNormSumWide = true;
        }
    }

    [Test]
    public void GradientsMatchFiniteDifferences()
    {
        int[] shape = [3, 4, 3, 2];
        int numel = 3 * 4 * 3 * 2;
        var inputs = new List<GradInput>();
        for (int b = 0; b < 3; b++)
        {
            inputs.Add(new GradInput($"x{b}", _rng.NormalArray(numel, 1 + b, 0.3), shape));
            inputs.Add(new GradInput($"w{b}", _rng.NormalArray(4, 0.5, 1), [4]));
            inputs.Add(new GradInput($"b{b}", _rng.NormalArray(4, 0.2), [4]));
        }
        GradCheck.Check(Device.Cpu, _rng, "BatchNorm2dSum", inputs.ToArray(),
            t => F.BatchNorm2dSum([t[0], t[3], t[6]], [t[1], t[4], t[7]], [t[2], t[5], t[8]],
                [.. Enumerable.Range(0, 3).Select(_ => Tensor.Zeros([4], Device.Cpu))],
                [.. Enumerable.Range(0, 3).Select(_ => Tensor.Ones([4], Device.Cpu))], [0.1f, 0.1f, 0.1f], [Eps, Eps, Eps]),
            r =>
            {
                var y = Reference.BatchNormTrain(r[0], r[1], r[2], Eps);
                for (int b = 1; b < 3; b++)
                {
                    var yb = Reference.BatchNormTrain(r[3 * b], r[3 * b + 1], r[3 * b + 2], Eps);
                    for (int i = 0; i < numel; i++) y[i] += yb[i];
                }
                return y;
            });
    }

    [TestCase(13, 5, true)]
    [TestCase(7, 7, true)]
    [TestCase(13, 5, false)]
    public void ReparamLargeKernelConvFusedAndUnfusedTailsAgreeBitForBit(int k, int small, bool decom)
    {
        int seed = _rng.Int(1, int.MaxValue - 1);
        int n = 4, c = 9, side = 6;
        var x = _rng.NormalArray(n * c * side * side);
        var r = _rng.NormalArray(n * c * side * side);
        var keep = ReparamLargeKernelConv.FusedBatchNormSum;
        try
        {
            Dictionary<string, float[]> Step(bool fusedTail)
            {
                ReparamLargeKernelConv.FusedBatchNormSum = fusedTail;
                var lk = new ReparamLargeKernelConv(c, k, small, decom, bn: true, ModuleInit.FromRandom(new SlakRandom((ulong)seed), Device.Cpu));
                lk.Train();
                var input = Tensor.FromArray((float[])x.Clone(), [n, c, side, side], Device.Cpu);
                input.RequiresGrad = true;
                var result = new Dictionary<string, float[]>();
                // Two steps, so that the running statistics and batch counts compound.
                for (int step = 0; step < 2; step++)
                {
                    foreach (var p in lk.Parameters()) p.ZeroGrad();
                    input.ZeroGrad();
                    var y = lk.Forward(input);
                    F.Sum(F.Mul(y, Tensor.FromArray(r, y.ShapeArray, Device.Cpu))).Backward();
                    result[$"y{step}"] = y.ToArray();
                }
                result["dinput"] = input.Grad!.ToArray();
                foreach (var (name, t) in lk.NamedParameters()) result["grad " + name] = t.Grad!.ToArray();
                foreach (var (name, t) in lk.NamedBuffers()) result[name] = t.ToArray();
                return result;
            }
            var fused = Step(true);
            var plain = Step(false);
            Assert.That(fused.Keys, Is.EquivalentTo(plain.Keys), _rng.Ctx("the same parameters and buffers"));
            Assert.That(fused.Keys.Count(key => key.EndsWith("num_batches_tracked", StringComparison.Ordinal)),
                Is.EqualTo((decom ? 2 : 1) + (small < k ? 1 : 0)), _rng.Ctx("every branch counts its batches"));
            foreach (var (name, v) in plain) Expect.Exactly(fused[name], v, _rng.Ctx($"K={k} N={small} decom={decom}: {name}"));
        }
        finally
        {
            ReparamLargeKernelConv.FusedBatchNormSum = keep;
        }
    }
}
