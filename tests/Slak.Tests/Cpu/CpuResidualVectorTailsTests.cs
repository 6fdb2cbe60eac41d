// The CPU block epilogue (IBackend.ChannelsLastResidual and its backward) with channel counts that are not a multiple
// of 8 finished by an overlapping 8-channel tile (CpuBackend.ResidualVectorTails, the default), runs of 4 to 7 pixels
// (2 x 2 maps) in 4 x 4 tiles (CpuBackend.ResidualTiles4, the default) and the forward on 1 x 1 maps in one SIMD pass
// per row (CpuBackend.ResidualRowsOnePass, the default) against the code they replace (the same bits: output, dy and
// dgamma) and against float64, with and without layer scale and DropPath, on every stage shape of slak_nano and
// slak_nano64 scaled down in batch, odd maps and channel counts, at 1, 2 and 3 threads (each against the old path at
// the same thread count); the forward also in place (output = input), where the overlapped channels must not be added
// twice. Outputs are NaN-poisoned before each run.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;
using static Slak.Tests.Support.CpuTensors;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.ResidualVectorTails, ResidualTiles4, ResidualRowsOnePass, CpuParallel.Threads
public class CpuResidualVectorTailsTests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    [TestCase(9, 31, 8, 8, true, true)]     // slak_nano stage 1
    [TestCase(9, 62, 4, 4, true, false)]    // slak_nano stage 2
    [TestCase(9, 124, 2, 2, true, true)]    // slak_nano stage 3 (runs of 4 pixels: 4 x 4 tiles)
    [TestCase(9, 249, 1, 1, true, true)]    // slak_nano stage 4 (row-wise)
    [TestCase(3, 31, 16, 16, false, true)]  // slak_nano64 stage 1
    [TestCase(9, 62, 8, 8, true, true)]     // slak_nano64 stage 2
    [TestCase(9, 124, 4, 4, false, false)]  // slak_nano64 stage 3
    [TestCase(9, 249, 2, 2, true, true)]    // slak_nano64 stage 4
    [TestCase(3, 13, 7, 9, true, true)]     // 5 tail channels, runs of 7 and 9 pixels
    [TestCase(2, 9, 5, 5, true, false)]     // one tail channel, runs crossing images
    [TestCase(2, 5, 4, 4, true, true)]      // fewer than 8 channels
    [TestCase(1, 31, 2, 2, true, true)]     // batch 1, a 2 x 2 map, 3 tail channels of the 4 x 4 tiles
    [TestCase(2, 7, 2, 3, true, true)]      // runs of 6: one 4 x 4 tile and 2 pixels element by element
    [TestCase(3, 4, 2, 2, true, false)]     // exactly one 4-channel tile
    [TestCase(2, 3, 2, 2, true, true)]      // fewer than 4 channels: element by element
    [TestCase(5, 37, 1, 1, false, true)]    // 1 x 1, no layer scale, 5 channels past the last vector
    [TestCase(3, 5, 1, 1, true, false)]     // 1 x 1, fewer channels than a vector
    public void VectorTailsGiveTheOldBitsAndMatchFloat64(int n, int c, int h, int w, bool withGamma, bool withScale)
    {
        int hw = h * w, numel = n * c * hw;
        var input = _rng.NormalArray(numel);
        var y = _rng.NormalArray(numel);
        var gamma = _rng.NormalArray(c);
        var scale = Enumerable.Range(0, n).Select(i => i % 3 == 1 ? 0f : 1f / 0.6f).ToArray();
        var dOut = _rng.NormalArray(numel);
        string what = $"ChannelsLastResidual {n}x{c}x{h}x{w} gamma {withGamma} scale {withScale}";
        var runs = new List<float[][]>();
        bool keepTails = CpuBackend.ResidualVectorTails, keepTiles4 = CpuBackend.ResidualTiles4;
        bool keepRows = CpuBackend.ResidualRowsOnePass;
        int keepThreads = CpuParallel.Threads;
        try
        {
            var runsOf = new[] { (false, 1), (true, 1), (false, 2), (true, 2), (false, 3), (true, 3) };
            foreach (var (tails, threads) in runsOf)
            {
                CpuBackend.ResidualVectorTails = tails;
                CpuBackend.ResidualTiles4 = tails;
                CpuBackend.ResidualRowsOnePass = tails;
                CpuParallel.Threads = threads;
                var be = CpuBackend.Instance;
                var tg = withGamma ? CpuCopy(gamma, c) : null;
                var ts = withScale ? CpuCopy(scale, n) : null;
                var ty = CpuCopy(y, n, h, w, c);
                var output = Nan(n, c, h, w);
                be.ChannelsLastResidual(CpuCopy(input, n, c, h, w), ty, tg, ts, output);
                // In place (output = input) on every map, the 1 x 1 row path included.
                var inPlace = CpuCopy(input, n, c, h, w);
                be.ChannelsLastResidual(inPlace, ty, tg, ts, inPlace);
                var dy = Nan(n, h, w, c);
                var dg = withGamma ? Nan(c) : null;
                be.ChannelsLastResidualBackward(ty, tg, ts, CpuCopy(dOut, n, c, h, w), dy, dg);
                runs.Add([output.ToArray(), inPlace.ToArray(), dy.ToArray(), dg?.ToArray() ?? []]);
            }
        }
        finally
        {
            CpuBackend.ResidualVectorTails = keepTails;
            CpuBackend.ResidualTiles4 = keepTiles4;
            CpuBackend.ResidualRowsOnePass = keepRows;
            CpuParallel.Threads = keepThreads;
        }
        // float64: out = input + permute(y * gamma) * scale; dy = permute(dOut) * scale * gamma; dgamma = sum of
        // permute(dOut) * scale * y.
        var eOut = new double[numel];
        var eDy = new double[numel];
        var eDg = new double[c];
        for (int img = 0; img < n; img++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < hw; p++)
                {
                    int nchw = (img * c + ch) * hw + p, nhwc = (img * hw + p) * c + ch;
                    double f = withScale ? scale[img] : 1, gm = withGamma ? gamma[ch] : 1;
                    eOut[nchw] = input[nchw] + (double)y[nhwc] * gm * f;
                    double g = dOut[nchw] * f;
                    eDy[nhwc] = g * gm;
                    eDg[ch] += g * y[nhwc];
                }
        var got = runs[3];
        Expect.AllClose(got[0], eOut, 1e-6, 1e-5, _rng.Ctx($"{what}: output vs float64"));
        Expect.AllClose(got[1], eOut, 1e-6, 1e-5, _rng.Ctx($"{what}: in-place output vs float64"));
        Expect.AllClose(got[2], eDy, 1e-6, 1e-5, _rng.Ctx($"{what}: dy vs float64"));
        if (withGamma) Expect.AllClose(got[3], eDg, 1e-5, 1e-5, _rng.Ctx($"{what}: dgamma vs float64"));
        string[] names = ["output", "in-place output", "dy", "dgamma"];
        for (int k = 0; k < names.Length; k++)
        {
            // dgamma's row blocks depend on the thread count (RowBlocks): compared at the same count.
            Expect.Exactly(runs[1][k], runs[0][k], _rng.Ctx($"{what}: {names[k]}, vector tails vs element by element, 1 thread"));
            Expect.Exactly(runs[3][k], runs[2][k], _rng.Ctx($"{what}: {names[k]}, vector tails vs element by element, 2 threads"));
            Expect.Exactly(runs[5][k], runs[4][k],
                _rng.Ctx($"{what}: {names[k]}, vector tails vs element by element, 3 threads"));
        }
    }
}
