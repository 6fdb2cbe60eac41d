// The CPU LayerNorm forwards on maps below one vector of pixels with a group of images per vector
// (CpuBackend.LayerNormImageGroups, the default on 2 x 2 maps; CpuBackend.Norm.LayoutGroups.cs), fused with the
// NCHW -> NHWC permute and channels-first: y, mean and 1/std against float64 and against the paths they replace (the
// row path within float rounding, the channels-first plane path bit for bit), on slak_nano's and slak_nano64's 2 x 2
// stages scaled down in batch, batches that are not a multiple of the group (the last image repeated), one image, one
// channel, and the 1 x 1 and 1 x 2 maps (LayerNormImageGroupsAnyMap); the same bits at 1, 2 and 3 threads and on a
// repeated run. Outputs are NaN-poisoned before each run.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.LayerNormImageGroups, LayerNormImageGroupsAnyMap and CpuParallel.Threads
public class CpuLayerNormImageGroupsTests
{
    private const float Eps = CpuLayerNormBackwardCase.Eps;

    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    private static readonly object[] Shapes =
    [
        new object[] { 9, 124, 2, 2 },  // slak_nano stage 3, an odd batch: the last group repeats its image
        new object[] { 10, 249, 2, 2 }, // slak_nano64 stage 4
        new object[] { 17, 31, 2, 2 },  // the last group of one image
        new object[] { 1, 62, 2, 2 },   // one image
        new object[] { 4, 1, 2, 2 },    // one channel
        new object[] { 11, 37, 1, 1 },  // 1 x 1: eight images per group
        new object[] { 7, 13, 1, 2 },   // 1 x 2: four images per group
    ];

    private static void Run(Action body, bool groups, bool anyMap, int threads)
    {
        bool keepGroups = CpuBackend.LayerNormImageGroups, keepAny = CpuBackend.LayerNormImageGroupsAnyMap;
        int keepThreads = CpuParallel.Threads;
        try
        {
            CpuBackend.LayerNormImageGroups = groups;
            CpuBackend.LayerNormImageGroupsAnyMap = anyMap;
            CpuParallel.Threads = threads;
            body();
        }
        finally
        {
            CpuBackend.LayerNormImageGroups = keepGroups;
            CpuBackend.LayerNormImageGroupsAnyMap = keepAny;
            CpuParallel.Threads = keepThreads;
        }
    }

    [TestCaseSource(nameof(Shapes))]
    public void ForwardsMatchFloat64TheOldPathsAndThemselves(int n, int c, int h, int w)
    {
        int hw = h * w;
        var x = _rng.NormalArray(n * c * hw, 1.1, 0.2);
        var wt = _rng.NormalArray(c);
        var bs = _rng.NormalArray(c);
        var (eyNhwc, em, er) = CpuLayerNormLayoutTailTests.Forward64(x, wt, bs, n, c, hw);
        var eyNchw = new double[eyNhwc.Length];
        for (int img = 0; img < n; img++)
            for (int p = 0; p < hw; p++)
                for (int ch = 0; ch < c; ch++) eyNchw[(img * c + ch) * hw + p] = eyNhwc[(img * hw + p) * c + ch];
        foreach (bool nhwc in new[] { true, false })
        {
            string layout = nhwc ? "NCHW -> NHWC" : "channels-first";
            string what = $"LayerNorm {layout} forward {n}x{c}x{h}x{w}, image groups";
            float[][] Forward(bool groups, int threads)
            {
                float[][] result = [];
                Run(() =>
                {
                    var y = Tensor.Full(nhwc ? [n, h, w, c] : [n, c, h, w], float.NaN, Device.Cpu);
                    var mean = Tensor.Full(nhwc ? [n * hw] : [n, 1, h, w], float.NaN, Device.Cpu);
                    var rstd = Tensor.Full(nhwc ? [n * hw] : [n, 1, h, w], float.NaN, Device.Cpu);
                    var xt = Tensor.FromArray((float[])x.Clone(), [n, c, h, w], Device.Cpu);
                    var wtt = Tensor.FromArray(wt, [c], Device.Cpu);
                    var bst = Tensor.FromArray(bs, [c], Device.Cpu);
                    if (nhwc) CpuBackend.Instance.LayerNormNchwToNhwc(xt, wtt, bst, Eps, y, mean, rstd);
                    else CpuBackend.Instance.LayerNormChannelsFirst(xt, wtt, bst, Eps, y, mean, rstd);
                    result = [y.ToArray(), mean.ToArray(), rstd.ToArray()];
                }, groups, anyMap: true, threads);
                return result;
            }
            var old = Forward(false, 2);
            var one = Forward(true, 1);
            var two = Forward(true, 2);
            var three = Forward(true, 3);
            var again = Forward(true, 2);
            Expect.AllClose(one[0], nhwc ? eyNhwc : eyNchw, 2e-5, 1e-5, _rng.Ctx(what + ": y vs float64"));
            Expect.AllClose(one[1], em, 1e-6, 1e-6, _rng.Ctx(what + ": mean vs float64"));
            Expect.AllClose(one[2], er, 1e-6, 1e-6, _rng.Ctx(what + ": 1/std vs float64"));
            string[] names = ["y", "mean", "1/std"];
            for (int k = 0; k < names.Length; k++)
            {
                // The row path sums in float64 in another order (a float may differ in its last bit); the plane path
                // runs the same operations per pixel in the same order (the same bits).
                if (nhwc)
                    Expect.AllClose(one[k], old[k].Select(v => (double)v).ToArray(), 1e-6, 1e-6,
                        _rng.Ctx($"{what}: {names[k]} vs the row path"));
                else
                    Expect.Exactly(one[k], old[k], _rng.Ctx($"{what}: {names[k]} vs the plane path"));
                Expect.Exactly(two[k], one[k], _rng.Ctx($"{what}: {names[k]}, 2 threads vs 1"));
                Expect.Exactly(three[k], one[k], _rng.Ctx($"{what}: {names[k]}, 3 threads vs 1"));
                Expect.Exactly(again[k], two[k], _rng.Ctx($"{what}: {names[k]}, repeated"));
            }
        }
    }
}
