// The CPU LayerNorm forwards with pixels in the SIMD lanes (CpuBackend.LayerNormLayoutPixelLanes, the default on maps
// of at least one vector of pixels): fused with the NCHW -> NHWC permute, against float64 (y, mean, 1/std) and against
// the row path; channels-first, against the plane path bit for bit (the same operations in the same order) and
// float64. Shapes: slak_nano's and slak_nano64's scaled down in batch, maps whose pixel count is not a multiple of the
// vector width (the last chunk overlaps the one before), one channel, and a map below one vector (the old path runs
// either way); a repeated run gives the same bits. Outputs are NaN-poisoned before each run.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.LayerNormLayoutPixelLanes
public class CpuLayerNormLayoutPixelLanesTests
{
    private const float Eps = CpuLayerNormBackwardCase.Eps;

    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    [TestCase(9, 31, 8, 8)]    // slak_nano stage 1
    [TestCase(5, 62, 4, 4)]    // slak_nano stage 2
    [TestCase(2, 31, 16, 16)]  // slak_nano64 stage 1
    [TestCase(3, 124, 4, 4)]   // slak_nano64 stage 3
    [TestCase(3, 13, 7, 9)]    // 63 pixels: the last chunk overlaps
    [TestCase(4, 5, 3, 3)]     // 9 pixels: one lane past a vector
    [TestCase(2, 1, 4, 4)]     // one channel
    [TestCase(3, 7, 2, 2)]     // below one vector: the image groups (CpuLayerNormImageGroupsTests) either way
    public void PixelLanesMatchFloat64AndTheRowPath(int n, int c, int h, int w)
    {
        int hw = h * w;
        var x = _rng.NormalArray(n * c * hw, 1.1, 0.2);
        var wt = _rng.NormalArray(c);
        var bs = _rng.NormalArray(c);
        string what = $"LayerNorm NCHW -> NHWC forward {n}x{c}x{h}x{w}";
        var runs = new List<float[][]>();
        try
        {
            foreach (bool lanes in new[] { false, true, true })
            {
                CpuBackend.LayerNormLayoutPixelLanes = lanes;
                var y = Tensor.Full([n, h, w, c], float.NaN, Device.Cpu);
                var mean = Tensor.Full([n * hw], float.NaN, Device.Cpu);
                var rstd = Tensor.Full([n * hw], float.NaN, Device.Cpu);
                CpuBackend.Instance.LayerNormNchwToNhwc(Tensor.FromArray((float[])x.Clone(), [n, c, h, w], Device.Cpu),
                    Tensor.FromArray(wt, [c], Device.Cpu), Tensor.FromArray(bs, [c], Device.Cpu), Eps, y, mean, rstd);
                runs.Add([y.ToArray(), mean.ToArray(), rstd.ToArray()]);
            }
        }
        finally
        {
            CpuBackend.LayerNormLayoutPixelLanes = true;
        }
        var (ey, em, er) = CpuLayerNormLayoutTailTests.Forward64(x, wt, bs, n, c, hw);
        var got = runs[1];
        Expect.AllClose(got[0], ey, 2e-5, 1e-5, _rng.Ctx(what + ": y vs float64"));
        Expect.AllClose(got[1], em, 1e-6, 1e-6, _rng.Ctx(what + ": mean vs float64"));
        Expect.AllClose(got[2], er, 1e-6, 1e-6, _rng.Ctx(what + ": 1/std vs float64"));
        string[] names = ["y", "mean", "1/std"];
        for (int k = 0; k < names.Length; k++)
        {
            // Both paths sum in float64 in different orders: they may differ in the last bit of a float.
            Expect.AllClose(got[k], runs[0][k].Select(v => (double)v).ToArray(), 1e-6, 1e-6,
                _rng.Ctx($"{what}: {names[k]}, pixel lanes vs row path"));
            Expect.Exactly(runs[2][k], got[k], _rng.Ctx($"{what}: {names[k]}, repeated"));
        }
    }

    [TestCase(9, 31, 8, 8)]    // slak_nano's stem output
    [TestCase(5, 62, 4, 4)]    // its first downsampling
    [TestCase(2, 31, 16, 16)]  // slak_nano64's stem output
    [TestCase(3, 13, 7, 9)]    // the last chunk overlaps
    [TestCase(2, 1, 3, 3)]     // one channel, one lane past a vector
    [TestCase(3, 7, 2, 2)]     // below one vector: the image groups (CpuLayerNormImageGroupsTests) either way
    public void ChannelsFirstPixelLanesGiveThePlanePathsBits(int n, int c, int h, int w)
    {
        int hw = h * w;
        var x = _rng.NormalArray(n * c * hw, 1.1, 0.2);
        var wt = _rng.NormalArray(c);
        var bs = _rng.NormalArray(c);
        string what = $"LayerNorm channels-first forward {n}x{c}x{h}x{w}";
        var runs = new List<float[][]>();
        try
        {
            foreach (bool lanes in new[] { false, true, true })
            {
                CpuBackend.LayerNormLayoutPixelLanes = lanes;
                var y = Tensor.Full([n, c, h, w], float.NaN, Device.Cpu);
                var mean = Tensor.Full([n, 1, h, w], float.NaN, Device.Cpu);
                var rstd = Tensor.Full([n, 1, h, w], float.NaN, Device.Cpu);
                CpuBackend.Instance.LayerNormChannelsFirst(Tensor.FromArray((float[])x.Clone(), [n, c, h, w], Device.Cpu),
                    Tensor.FromArray(wt, [c], Device.Cpu), Tensor.FromArray(bs, [c], Device.Cpu), Eps, y, mean, rstd);
                runs.Add([y.ToArray(), mean.ToArray(), rstd.ToArray()]);
            }
        }
        finally
        {
            CpuBackend.LayerNormLayoutPixelLanes = true;
        }
        var (eyNhwc, em, er) = CpuLayerNormLayoutTailTests.Forward64(x, wt, bs, n, c, hw);
        var ey = new double[eyNhwc.Length];
        for (int img = 0; img < n; img++)
            for (int p = 0; p < hw; p++)
                for (int ch = 0; ch < c; ch++) ey[(img * c + ch) * hw + p] = eyNhwc[(img * hw + p) * c + ch];
        Expect.AllClose(runs[1][0], ey, 2e-5, 1e-5, _rng.Ctx(what + ": y vs float64"));
        Expect.AllClose(runs[1][1], em, 1e-6, 1e-6, _rng.Ctx(what + ": mean vs float64"));
        Expect.AllClose(runs[1][2], er, 1e-6, 1e-6, _rng.Ctx(what + ": 1/std vs float64"));
        string[] names = ["y", "mean", "1/std"];
        for (int k = 0; k < names.Length; k++)
        {
            Expect.Exactly(runs[1][k], runs[0][k], _rng.Ctx($"{what}: {names[k]}, pixel lanes vs plane path"));
            Expect.Exactly(runs[2][k], runs[1][k], _rng.Ctx($"{what}: {names[k]}, repeated"));
        }
    }
}
