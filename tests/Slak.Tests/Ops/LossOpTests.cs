// Classification losses: SoftTargetCrossEntropy (soft targets from mixup/cutmix), CrossEntropy with label smoothing
// and SmoothedTargets, against float64 references, plus the loss kernels on poisoned outputs and gradient checks.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class LossOpTests(string device) : DeviceTest(device)
{
    private RefTensor SoftTargets(int n, int k)
    {
        var t = new RefTensor(n, k);
        for (int r = 0; r < n; r++)
        {
            double s = 0;
            for (int j = 0; j < k; j++) { t[r, j] = Rng.Uniform(); s += t[r, j]; }
            for (int j = 0; j < k; j++) t[r, j] = (float)(t[r, j] / s);
        }
        return t;
    }

    private static float[] F32(RefTensor r) => r.Data.Select(v => (float)v).ToArray();

    [TestCase(1, 1)]
    [TestCase(1, 5)]
    [TestCase(7, 3)]
    [TestCase(64, 1000)]
    public void SoftTargetCrossEntropyForwardAndKernels(int n, int k)
    {
        var (z, rz) = RandN([n, k], 3);
        var rt = SoftTargets(n, k);
        var t = T(F32(rt), n, k);
        var expected = Reference.SoftTargetCrossEntropy(rz, rt);
        Expect.AllClose(F.SoftTargetCrossEntropy(z, t), expected, 1e-5, 1e-5, Ctx($"SoftTargetCrossEntropy {n}x{k}"));
        var probs = Poisoned(n, k);
        var loss = Poisoned(1);
        z.Backend.SoftmaxCrossEntropy(z, t, probs, loss);
        Expect.AllClose(probs, Reference.Softmax(rz), 1e-7, 1e-5, Ctx("IBackend.SoftmaxCrossEntropy probs"));
        Expect.AllClose(loss.ToArray(), expected.Data, 1e-5, 1e-5, Ctx("IBackend.SoftmaxCrossEntropy loss"));
        var dz = Poisoned(n, k);
        z.Backend.SoftmaxCrossEntropyBackward(probs, t, Tensor.Scalar(0.5f, Dev), dz);
        var p = Reference.Softmax(rz);
        var dzExpected = new RefTensor(n, k);
        for (int i = 0; i < dzExpected.Length; i++) dzExpected[i] = 0.5 * (p[i] - rt[i]) / n;
        Expect.AllClose(dz, dzExpected, 1e-7, 1e-5, Ctx("IBackend.SoftmaxCrossEntropyBackward"));
    }

    [Test]
    public void SoftTargetCrossEntropyIsStableForLargeLogits()
    {
        var logits = new float[] { 1000f, -1000f, 0f, 88f, 89f, -50f };
        var targets = new float[] { 0.5f, 0.5f, 0f, 0.25f, 0.25f, 0.5f };
        var loss = F.SoftTargetCrossEntropy(T(logits, 2, 3), T(targets, 2, 3));
        Expect.AllClose(loss, Reference.SoftTargetCrossEntropy(RefTensor.From(logits, 2, 3), RefTensor.From(targets, 2, 3)), 1e-3, 1e-5, Ctx("large logits"));
    }

    [Test]
    public void SoftTargetCrossEntropyGradient()
    {
        int n = Rng.Int(1, 5), k = Rng.Int(2, 7);
        var rt = SoftTargets(n, k);
        GradCheck.Check(Dev, Rng, "SoftTargetCrossEntropy", [new("logits", Rng.NormalArray(n * k, 2), [n, k])],
            t => F.SoftTargetCrossEntropy(t[0], T(F32(rt), n, k)), r => Reference.SoftTargetCrossEntropy(r[0], rt));
    }

    [TestCase(0f)]
    [TestCase(0.1f)]
    [TestCase(0.5f)]
    [KernelParity("softmax_xent_bwd_kernel", "softmax_xent_fwd_kernel")]
    public void CrossEntropyWithLabelSmoothingAndSmoothedTargets(float smoothing)
    {
        int n = Rng.Int(1, 6), k = Rng.Int(1, 9);
        var labels = Enumerable.Range(0, n).Select(_ => Rng.Int(0, k - 1)).ToArray();
        var expectedTargets = Reference.SmoothedTargets(labels, k, smoothing);
        Expect.AllClose(F.SmoothedTargets(labels, k, smoothing, Dev), expectedTargets, 1e-7, 1e-6, Ctx($"SmoothedTargets s={smoothing}"));
        GradCheck.Check(Dev, Rng, $"CrossEntropy smoothing {smoothing}", [new("logits", Rng.NormalArray(n * k, 2), [n, k])],
            t => F.CrossEntropy(t[0], labels, smoothing), r => Reference.SoftTargetCrossEntropy(r[0], expectedTargets));
    }
}
