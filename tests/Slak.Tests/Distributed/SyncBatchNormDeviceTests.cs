// SyncBatchNorm's device path (cuda ranks; here cuda-emu): statistics computed with the backend's kernels and only the
// per-channel sums exchanged through the job's ITensorCollective on device buffers. Two ranks are played in one
// process by an all-reduce stand-in that doubles every sum (the other rank holds the same batch), so the result must
// be one process's BatchNorm over the batch [x; x]: output, running statistics, input gradient equal to rounding;
// weight and bias gradients half of it (each rank's own sums, averaged later by the gradient exchange).
using NUnit.Framework;
using Slak.Distributed;
using Slak.Tests.Support;

namespace Slak.Tests.Distributed;

public class SyncBatchNormDeviceTests
{
    private sealed class TwinRank : IDeviceAllReduce
    {
        public List<string> Calls { get; } = [];

        public string Description => "twin";

        public int Size => 2;

        public void SumInPlace(Tensor values, string what)
        {
            Calls.Add(what);
            var host = values.ToArray();
            for (int i = 0; i < host.Length; i++) host[i] *= 2;
            values.Backend.CopyFromHost(host, values);
        }

        public void Dispose() { }
    }

    [Test]
    public void TwoRanksOnDeviceBuffers_MatchOneProcessOverTheWholeBatch()
    {
        var device = TestDevices.Open("cuda-emu");
        const int n = 3, c = 4, h = 5, w = 6;
        var rng = new SlakRandom(31);
        var x = new float[n * c * h * w];
        var g = new float[x.Length];
        for (int i = 0; i < x.Length; i++) { x[i] = 2f + 1.5f * rng.NextNormal(); g[i] = rng.NextNormal(); }
        float[] weight = [1.2f, -0.7f, 0.9f, 1.1f], bias = [0.1f, 0.2f, -0.3f, 0f], mean0 = [0.5f, 0f, 1f, -1f], var0 = [1f, 2f, 0.5f, 1f];

        // One process over [x; x].
        var xx = Tensor.FromArray([.. x, .. x], [2 * n, c, h, w], device);
        xx.RequiresGrad = true;
        var (w1, b1, rm1, rv1) = Parameters(device, weight, bias, mean0, var0);
        var y1 = F.BatchNorm2d(xx, w1, b1, rm1, rv1, training: true, momentum: 0.1f, eps: 1e-5f);
        y1.Backward(Tensor.FromArray([.. g, .. g], [2 * n, c, h, w], device));

        // Rank 0 of two on device buffers.
        var twin = new TwinRank();
        var dp = new DataParallel(new FakeCollectives(0, 2), syncBatchNorm: true) { Tensors = new DeviceTensorCollective(twin) };
        var xr = Tensor.FromArray(x, [n, c, h, w], device);
        xr.RequiresGrad = true;
        var (w2, b2, rm2, rv2) = Parameters(device, weight, bias, mean0, var0);
        var y2 = SyncBatchNorm.Forward(dp, xr, w2, b2, rm2, rv2, 0.1f, 1e-5f);
        y2.Backward(Tensor.FromArray(g, [n, c, h, w], device));

        Assert.That(twin.Calls, Is.EqualTo(new[] { "the SyncBatchNorm statistics (sums)", "the SyncBatchNorm statistics (centred squares)",
            "the SyncBatchNorm gradient sums" }), "only per-channel statistics travel");
        AssertClose(y2.ToArray(), y1.ToArray()[..x.Length], 2e-5, "y");
        AssertClose(rm2.ToArray(), rm1.ToArray(), 1e-6, "running mean");
        AssertClose(rv2.ToArray(), rv1.ToArray(), 1e-5, "running variance (unbiased over the global batch)");
        AssertClose(xr.Grad!.ToArray(), xx.Grad!.ToArray()[..x.Length], 2e-5, "dx");
        AssertClose(w2.Grad!.ToArray().Select(v => 2 * v).ToArray(), w1.Grad!.ToArray(), 2e-5, "dweight x 2 ranks");
        AssertClose(b2.Grad!.ToArray().Select(v => 2 * v).ToArray(), b1.Grad!.ToArray(), 2e-5, "dbias x 2 ranks");
    }

    private static (Tensor W, Tensor B, Tensor Rm, Tensor Rv) Parameters(Device device, float[] w, float[] b, float[] rm, float[] rv)
    {
        var weight = Tensor.FromArray(w, [w.Length], device);
        var bias = Tensor.FromArray(b, [b.Length], device);
        weight.RequiresGrad = true;
        bias.RequiresGrad = true;
        return (weight, bias, Tensor.FromArray(rm, [rm.Length], device), Tensor.FromArray(rv, [rv.Length], device));
    }

    private static void AssertClose(float[] actual, float[] expected, double tolerance, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        double scale = Math.Max(1, expected.Max(v => Math.Abs((double)v)));
        for (int i = 0; i < expected.Length; i++)
            Assert.That(Math.Abs(actual[i] - expected[i]), Is.LessThanOrEqualTo(tolerance * scale), $"{what}[{i}]: {actual[i]} vs {expected[i]}");
    }
}
