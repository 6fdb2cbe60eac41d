// Every kernel of the CUDA backend against the CPU backend, on the host emulator (always, in CI) and on a real GPU
// when one is present. Inputs are random (seed in every message), every output is poisoned with NaN before the
// launch so an element a kernel forgets to write fails, and each comparison uses atol + rtol*|cpu|.
using NUnit.Framework;
using Slak.Tests.Support;
using Slak.Backends;
using Slak.Backends.Cpu;
using Slak.Backends.Cuda;
using Slak.Cuda.Kernels;

namespace Slak.Tests.Backends;

[TestFixture("cuda-emu")]
[TestFixture("cuda")]
public sealed class BackendParityTests(string deviceSpec)
{
    private IBackend _gpu = null!;
    private readonly IBackend _cpu = CpuBackend.Instance;
    private int _seed;
    private SlakRandom _rng = null!;

    [SetUp]
    public void SetUp()
    {
        var device = Device.Parse(deviceSpec);
        if (!CudaBackend.IsAvailable(device, out string reason)) Assert.Ignore($"{deviceSpec} unavailable: {reason}");
        _gpu = BackendRegistry.For(device);
        _seed = Environment.TickCount & 0x7fffffff;
        _rng = new SlakRandom((ulong)_seed);
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    private (Tensor Cpu, Tensor Gpu) Random(params int[] shape)
    {
        var t = Tensor.RandN(_rng, shape, Device.Cpu);
        return (t, t.To(_gpu.Device));
    }

    private (Tensor Cpu, Tensor Gpu) Constant(float[] data, params int[] shape) =>
        (Tensor.FromArray(data, shape, Device.Cpu), Tensor.FromArray(data, shape, _gpu.Device));

    private (Tensor Cpu, Tensor Gpu) Poisoned(params int[] shape) =>
        (Tensor.Full(shape, float.NaN, Device.Cpu), Tensor.Full(shape, float.NaN, _gpu.Device));

    private void Same((Tensor Cpu, Tensor Gpu) pair, string what, float atol = 1e-5f, float rtol = 1e-4f)
    {
        var expected = pair.Cpu.Data.ToArray();
        var actual = pair.Gpu.ToArray();
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        int bad = 0, worst = -1;
        double worstErr = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            bool ok = !float.IsNaN(actual[i]) && err <= atol + rtol * Math.Abs(expected[i]);
            if (!ok) bad++;
            if (!ok && (worst < 0 || err > worstErr || float.IsNaN(actual[i]))) { worst = i; worstErr = err; }
        }
        Assert.That(bad, Is.Zero,
            $"{deviceSpec} vs cpu, {what}: {bad}/{expected.Length} mismatches; worst at {worst}: " +
            $"{(worst >= 0 ? actual[worst] : 0)} vs {(worst >= 0 ? expected[worst] : 0)} (seed {_seed})");
    }

    private float[] Mask(int n, double density)
    {
        var m = new float[n];
        for (int i = 0; i < n; i++) m[i] = _rng.NextDouble() < density ? 1f : 0f;
        return m;
    }

    // ---- element-wise ----------------------------------------------------------------------------------------

    [Test]
    public void ElementwiseKernelsMatchCpu()
    {
        int[] shape = [3, 5, 7, 11];
        var a = Random(shape); var b = Random(shape);
        var y = Poisoned(shape);
        _cpu.Add(a.Cpu, b.Cpu, y.Cpu); _gpu.Add(a.Gpu, b.Gpu, y.Gpu); Same(y, "Add");
        y = Poisoned(shape);
        _cpu.Mul(a.Cpu, b.Cpu, y.Cpu); _gpu.Mul(a.Gpu, b.Gpu, y.Gpu); Same(y, "Mul");
        y = Poisoned(shape);
        _cpu.Scale(a.Cpu, -1.5f, y.Cpu); _gpu.Scale(a.Gpu, -1.5f, y.Gpu); Same(y, "Scale");
        _cpu.AddScaled(y.Cpu, b.Cpu, 0.25f); _gpu.AddScaled(y.Gpu, b.Gpu, 0.25f); Same(y, "AddScaled");
        y = Poisoned(shape);
        _cpu.Fill(y.Cpu, 3.5f); _gpu.Fill(y.Gpu, 3.5f); Same(y, "Fill");
        var s = Constant([2.5f], []);
        y = Poisoned(shape);
        _cpu.FillFromScalar(y.Cpu, s.Cpu, -0.5f); _gpu.FillFromScalar(y.Gpu, s.Gpu, -0.5f); Same(y, "FillFromScalar");
        y = Poisoned(shape);
        _cpu.Copy(a.Cpu, y.Cpu); _gpu.Copy(a.Gpu, y.Gpu); Same(y, "Copy");
        y = Poisoned(shape);
        _cpu.Gelu(a.Cpu, y.Cpu); _gpu.Gelu(a.Gpu, y.Gpu); Same(y, "Gelu");
        y = Poisoned(shape);
        _cpu.GeluBackward(a.Cpu, b.Cpu, y.Cpu); _gpu.GeluBackward(a.Gpu, b.Gpu, y.Gpu); Same(y, "GeluBackward");
    }

    [Test]
    public void ChannelAndRowKernelsMatchCpu()
    {
        int[] shape = [4, 3, 5, 9];
        var x = Random(shape); var dy = Random(shape); var gamma = Random(9); var rows = Random(4);
        var y = Poisoned(shape);
        _cpu.MulLastDim(x.Cpu, gamma.Cpu, y.Cpu); _gpu.MulLastDim(x.Gpu, gamma.Gpu, y.Gpu); Same(y, "MulLastDim");
        var dx = Poisoned(shape); var dg = Poisoned(9);
        _cpu.MulLastDimBackward(x.Cpu, gamma.Cpu, dy.Cpu, dx.Cpu, dg.Cpu);
        _gpu.MulLastDimBackward(x.Gpu, gamma.Gpu, dy.Gpu, dx.Gpu, dg.Gpu);
        Same(dx, "MulLastDimBackward dx"); Same(dg, "MulLastDimBackward dgamma", 1e-4f, 1e-4f);
        y = Poisoned(shape);
        _cpu.MulRows(x.Cpu, rows.Cpu, y.Cpu); _gpu.MulRows(x.Gpu, rows.Gpu, y.Gpu); Same(y, "MulRows");
        _cpu.Copy(x.Cpu, y.Cpu); _gpu.Copy(x.Gpu, y.Gpu);
        _cpu.AddBiasLastDim(y.Cpu, gamma.Cpu); _gpu.AddBiasLastDim(y.Gpu, gamma.Gpu); Same(y, "AddBiasLastDim");
        var db = Poisoned(9);
        _cpu.SumToLastDim(dy.Cpu, db.Cpu); _gpu.SumToLastDim(dy.Gpu, db.Gpu); Same(db, "SumToLastDim", 1e-4f, 1e-4f);
    }

    [Test]
    public void ReductionsPoolingAndPermuteMatchCpu()
    {
        var x = Random(5, 4, 6, 7);
        var s = Poisoned(1);
        _cpu.SumAll(x.Cpu, s.Cpu); _gpu.SumAll(x.Gpu, s.Gpu); Same(s, "SumAll", 1e-4f, 1e-4f);
        s = Poisoned(1);
        _cpu.SumSquares(x.Cpu, s.Cpu); _gpu.SumSquares(x.Gpu, s.Gpu); Same(s, "SumSquares", 1e-3f, 1e-4f);
        var p = Poisoned(5, 4);
        _cpu.GlobalAvgPool(x.Cpu, p.Cpu); _gpu.GlobalAvgPool(x.Gpu, p.Gpu); Same(p, "GlobalAvgPool");
        var dx = Poisoned(5, 4, 6, 7);
        _cpu.GlobalAvgPoolBackward(p.Cpu, dx.Cpu); _gpu.GlobalAvgPoolBackward(p.Gpu, dx.Gpu); Same(dx, "GlobalAvgPoolBackward");
        foreach (int[] perm in new[] { new[] { 0, 2, 3, 1 }, new[] { 0, 3, 1, 2 }, new[] { 3, 2, 1, 0 } })
        {
            var shape = perm.Select(d => x.Cpu.Size(d)).ToArray();
            var y = Poisoned(shape);
            _cpu.Permute(x.Cpu, perm, y.Cpu); _gpu.Permute(x.Gpu, perm, y.Gpu); Same(y, $"Permute {string.Join(",", perm)}");
        }
    }

    // ---- matrix multiply and convolutions --------------------------------------------------------------

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void GemmMatchesCpu(bool ta, bool tb)
    {
        int m = 13, n = 17, k = 9;
        var a = ta ? Random(k, m) : Random(m, k);
        var b = tb ? Random(n, k) : Random(k, n);
        var c = Random(m, n);
        _cpu.Gemm(ta, tb, m, n, k, 0.5f, a.Cpu, b.Cpu, 2f, c.Cpu);
        _gpu.Gemm(ta, tb, m, n, k, 0.5f, a.Gpu, b.Gpu, 2f, c.Gpu);
        Same(c, $"Gemm ta={ta} tb={tb}", 1e-4f, 1e-4f);
    }

    [TestCase(4, 4, 0)]
    [TestCase(2, 2, 0)]
    [TestCase(3, 1, 1)]
    [TestCase(3, 2, 1)]
    public void DenseConvMatchesCpu(int k, int stride, int pad)
    {
        var x = Random(2, 3, 9, 8); var w = Random(5, 3, k, k); var bias = Random(5);
        int oh = (9 + 2 * pad - k) / stride + 1, ow = (8 + 2 * pad - k) / stride + 1;
        var y = Poisoned(2, 5, oh, ow);
        _cpu.Conv2dForward(x.Cpu, w.Cpu, bias.Cpu, y.Cpu, stride, stride, pad, pad);
        _gpu.Conv2dForward(x.Gpu, w.Gpu, bias.Gpu, y.Gpu, stride, stride, pad, pad);
        Same(y, "Conv2dForward", 1e-4f, 1e-4f);
        var dy = Random(2, 5, oh, ow);
        var dx = Poisoned(2, 3, 9, 8);
        _cpu.Conv2dBackwardData(dy.Cpu, w.Cpu, dx.Cpu, stride, stride, pad, pad);
        _gpu.Conv2dBackwardData(dy.Gpu, w.Gpu, dx.Gpu, stride, stride, pad, pad);
        Same(dx, "Conv2dBackwardData", 1e-4f, 1e-4f);
        var dw = Poisoned(5, 3, k, k); var db = Poisoned(5);
        _cpu.Conv2dBackwardFilter(x.Cpu, dy.Cpu, dw.Cpu, db.Cpu, stride, stride, pad, pad);
        _gpu.Conv2dBackwardFilter(x.Gpu, dy.Gpu, dw.Gpu, db.Gpu, stride, stride, pad, pad);
        Same(dw, "Conv2dBackwardFilter dw", 1e-4f, 1e-4f); Same(db, "Conv2dBackwardFilter db", 1e-4f, 1e-4f);
    }

    // The depthwise family with one branch (the single convolution), planned (fused kernel, or dwconv.cu's kernels
    // where the plan falls back) and with the per-branch kernels forced: SLaK's branch shapes in small (tall, wide,
    // small square, kernel larger than the map, dense square) and a filter too large for the shared-memory tile
    // (direct kernels).
    [TestCase(2, 3, 9, 11, 7, 3, 1.0)]
    [TestCase(2, 3, 9, 11, 3, 7, 0.6)]
    [TestCase(1, 2, 6, 5, 5, 5, 0.6)]
    [TestCase(2, 2, 5, 4, 13, 5, 0.4)]
    [TestCase(1, 1, 1, 1, 3, 3, 1.0)]
    [TestCase(1, 2, 40, 36, 9, 9, 0.6)]
    [TestCase(1, 1, 12, 10, 101, 101, 0.5)]
    [KernelParity("dwconv_fwd_direct_kernel", "dwconv_wgrad_direct_kernel")]
    [NonParallelizable] // switches DwConvFusedKernels.PerBranchOnly for the GPU calls
    public void DepthwiseConvMatchesCpu(int n, int c, int h, int w, int kh, int kw, double density)
    {
        var x = Random(n, c, h, w); var wt = Random(c, 1, kh, kw); var dy = Random(n, c, h, w);
        var mask = Constant(Mask(c * kh * kw, density), c, 1, kh, kw);
        foreach (bool perBranch in new[] { false, true })
            foreach (bool masked in new[] { false, true })
            {
                var m = masked ? mask : default;
                string what = $"{kh}x{kw} masked={masked}{(perBranch ? ", per-branch kernels" : "")}";
                var y = Poisoned(n, c, h, w);
                var dx = Poisoned(n, c, h, w);
                var dw = Poisoned(c, 1, kh, kw);
                _cpu.DecomposedDwConvForward(x.Cpu, [wt.Cpu], [m.Cpu], [y.Cpu]);
                _cpu.DecomposedDwConvBackwardData([dy.Cpu], [wt.Cpu], [m.Cpu], dx.Cpu);
                _cpu.DecomposedDwConvBackwardFilter(x.Cpu, [dy.Cpu], [m.Cpu], [dw.Cpu]);
                DwConvFusedKernels.PerBranchOnly = perBranch;
                try
                {
                    _gpu.DecomposedDwConvForward(x.Gpu, [wt.Gpu], [m.Gpu], [y.Gpu]);
                    _gpu.DecomposedDwConvBackwardData([dy.Gpu], [wt.Gpu], [m.Gpu], dx.Gpu);
                    _gpu.DecomposedDwConvBackwardFilter(x.Gpu, [dy.Gpu], [m.Gpu], [dw.Gpu]);
                }
                finally
                {
                    DwConvFusedKernels.PerBranchOnly = false;
                }
                Same(y, $"DecomposedDwConvForward, one branch, {what}", 1e-4f, 1e-4f);
                Same(dx, $"DecomposedDwConvBackwardData, one branch, {what}", 1e-4f, 1e-4f);
                Same(dw, $"DecomposedDwConvBackwardFilter, one branch, skip mask={masked}, {what}", 1e-4f, 1e-4f);
            }
    }

    // ---- normalization, loss, optimizer -------------------------------------------------------------------

    [Test]
    public void LayerNormsMatchCpu()
    {
        var x = Random(6, 5, 37); var w = Random(37); var b = Random(37); var dy = Random(6, 5, 37);
        var y = Poisoned(6, 5, 37); var mean = Poisoned(30); var rstd = Poisoned(30);
        _cpu.LayerNormLastDim(x.Cpu, w.Cpu, b.Cpu, 1e-6f, y.Cpu, mean.Cpu, rstd.Cpu);
        _gpu.LayerNormLastDim(x.Gpu, w.Gpu, b.Gpu, 1e-6f, y.Gpu, mean.Gpu, rstd.Gpu);
        Same(y, "LayerNorm y"); Same(mean, "LayerNorm mean"); Same(rstd, "LayerNorm rstd");
        var dx = Poisoned(6, 5, 37); var dw = Poisoned(37); var db = Poisoned(37);
        _cpu.LayerNormLastDimBackward(x.Cpu, w.Cpu, mean.Cpu, rstd.Cpu, dy.Cpu, dx.Cpu, dw.Cpu, db.Cpu);
        _gpu.LayerNormLastDimBackward(x.Gpu, w.Gpu, mean.Gpu, rstd.Gpu, dy.Gpu, dx.Gpu, dw.Gpu, db.Gpu);
        Same(dx, "LayerNorm dx", 1e-4f, 1e-4f); Same(dw, "LayerNorm dw", 1e-4f, 1e-4f); Same(db, "LayerNorm db", 1e-4f, 1e-4f);

        var xc = Random(3, 6, 4, 5); var wc = Random(6); var bc = Random(6); var dyc = Random(3, 6, 4, 5);
        var yc = Poisoned(3, 6, 4, 5); var mc = Poisoned(3, 4, 5); var rc = Poisoned(3, 4, 5);
        _cpu.LayerNormChannelsFirst(xc.Cpu, wc.Cpu, bc.Cpu, 1e-6f, yc.Cpu, mc.Cpu, rc.Cpu);
        _gpu.LayerNormChannelsFirst(xc.Gpu, wc.Gpu, bc.Gpu, 1e-6f, yc.Gpu, mc.Gpu, rc.Gpu);
        Same(yc, "LayerNormChannelsFirst y"); Same(mc, "LayerNormChannelsFirst mean"); Same(rc, "LayerNormChannelsFirst rstd");
        var dxc = Poisoned(3, 6, 4, 5); var dwc = Poisoned(6); var dbc = Poisoned(6);
        _cpu.LayerNormChannelsFirstBackward(xc.Cpu, wc.Cpu, mc.Cpu, rc.Cpu, dyc.Cpu, dxc.Cpu, dwc.Cpu, dbc.Cpu);
        _gpu.LayerNormChannelsFirstBackward(xc.Gpu, wc.Gpu, mc.Gpu, rc.Gpu, dyc.Gpu, dxc.Gpu, dwc.Gpu, dbc.Gpu);
        Same(dxc, "LayerNormChannelsFirst dx", 1e-4f, 1e-4f);
        Same(dwc, "LayerNormChannelsFirst dw", 1e-4f, 1e-4f); Same(dbc, "LayerNormChannelsFirst db", 1e-4f, 1e-4f);
    }

    [Test]
    public void BatchNormMatchesCpu()
    {
        var x = Random(4, 3, 5, 6); var w = Random(3); var b = Random(3); var dy = Random(4, 3, 5, 6);
        var rm = Random(3); var rv = Constant([0.5f, 1f, 2f], 3);
        var y = Poisoned(4, 3, 5, 6); var sm = Poisoned(3); var si = Poisoned(3);
        _cpu.BatchNormTrain(x.Cpu, w.Cpu, b.Cpu, rm.Cpu, rv.Cpu, 0.1f, 1e-5f, y.Cpu, sm.Cpu, si.Cpu);
        _gpu.BatchNormTrain(x.Gpu, w.Gpu, b.Gpu, rm.Gpu, rv.Gpu, 0.1f, 1e-5f, y.Gpu, sm.Gpu, si.Gpu);
        Same(y, "BatchNormTrain y"); Same(sm, "save mean"); Same(si, "save invstd");
        Same(rm, "running mean"); Same(rv, "running var");
        var dx = Poisoned(4, 3, 5, 6); var dw = Poisoned(3); var db = Poisoned(3);
        _cpu.BatchNormBackward(x.Cpu, w.Cpu, sm.Cpu, si.Cpu, dy.Cpu, dx.Cpu, dw.Cpu, db.Cpu);
        _gpu.BatchNormBackward(x.Gpu, w.Gpu, sm.Gpu, si.Gpu, dy.Gpu, dx.Gpu, dw.Gpu, db.Gpu);
        Same(dx, "BatchNormBackward dx", 1e-4f, 1e-4f); Same(dw, "dweight", 1e-4f, 1e-4f); Same(db, "dbias", 1e-4f, 1e-4f);
        y = Poisoned(4, 3, 5, 6);
        _cpu.BatchNormEval(x.Cpu, w.Cpu, b.Cpu, rm.Cpu, rv.Cpu, 1e-5f, y.Cpu);
        _gpu.BatchNormEval(x.Gpu, w.Gpu, b.Gpu, rm.Gpu, rv.Gpu, 1e-5f, y.Gpu);
        Same(y, "BatchNormEval");
    }

    [Test]
    public void SoftmaxCrossEntropyMatchesCpu()
    {
        var logits = Random(7, 10);
        var targets = Poisoned(7, 10);
        var tc = F.SmoothedTargets([0, 3, 9, 2, 2, 5, 7], 10, 0.1f, Device.Cpu);
        targets = (tc, tc.To(_gpu.Device));
        var probs = Poisoned(7, 10); var loss = Poisoned(1);
        _cpu.SoftmaxCrossEntropy(logits.Cpu, targets.Cpu, probs.Cpu, loss.Cpu);
        _gpu.SoftmaxCrossEntropy(logits.Gpu, targets.Gpu, probs.Gpu, loss.Gpu);
        Same(probs, "softmax"); Same(loss, "loss");
        var g = Constant([0.75f], 1);
        var dl = Poisoned(7, 10);
        _cpu.SoftmaxCrossEntropyBackward(probs.Cpu, targets.Cpu, g.Cpu, dl.Cpu);
        _gpu.SoftmaxCrossEntropyBackward(probs.Gpu, targets.Gpu, g.Gpu, dl.Gpu);
        Same(dl, "dlogits");
    }

    [TestCase(false, false)]
    [TestCase(true, true)]
    [TestCase(true, false)]
    [KernelParity("adamw_kernel")]
    public void AdamWMatchesCpu(bool masked, bool maskMoments)
    {
        var p = Random(257); var g = Random(257); var m = Random(257); var v = Constant(Enumerable.Range(0, 257).Select(i => 0.01f * (i % 7)).ToArray(), 257);
        var mask = masked ? Constant(Mask(257, 0.6), 257) : default;
        var hyper = new AdamWHyper(1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, 3);
        _cpu.AdamWStep(p.Cpu, g.Cpu, m.Cpu, v.Cpu, mask.Cpu, hyper, maskMoments);
        _gpu.AdamWStep(p.Gpu, g.Gpu, m.Gpu, v.Gpu, mask.Gpu, hyper, maskMoments);
        Same(p, "param"); Same(m, "exp_avg"); Same(v, "exp_avg_sq");
    }
}
