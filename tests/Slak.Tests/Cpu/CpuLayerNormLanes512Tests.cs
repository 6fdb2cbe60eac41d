// The LayerNorms' 16-pixel chunks in one 512-bit vector (CpuBackend.LayerNormLanes512, the default where the hardware
// has 512-bit vectors; CpuBackend.Norm.Lanes512.cs): forward (fused with the NCHW -> NHWC permute, and channels-first:
// y, mean, 1/std) and backward (dx, dweight, dbias) give the 256-bit kernels' bits, at 1, 2 and 3 threads and on a
// repeated run, on slak_nano's and slak_nano64's 8 x 8 and 16 x 16 stages scaled down in batch, maps whose pixel
// count is not a multiple of the chunk (the last chunk overlaps the one before) and one channel. Against float64 the
// pixel-lane tests (CpuLayerNormLayoutPixelLanesTests, CpuLayerNormBackwardPixelLanesTests) run with the default, this
// path.
// Outputs are NaN-poisoned before each run.
using System.Runtime.Intrinsics;
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuBackend.LayerNormLanes512 and CpuParallel.Threads
public class CpuLayerNormLanes512Tests
{
    private TestRandom _rng = null!;

    [SetUp]
    public void Seed() => _rng = TestRandom.ForCurrentTest();

    private static T With<T>(bool wide512, int threads, Func<T> body)
    {
        bool keep = CpuBackend.LayerNormLanes512;
        int keepThreads = CpuParallel.Threads;
        try
        {
            CpuBackend.LayerNormLanes512 = wide512;
            CpuParallel.Threads = threads;
            return body();
        }
        finally
        {
            CpuBackend.LayerNormLanes512 = keep;
            CpuParallel.Threads = keepThreads;
        }
    }

    [TestCase(9, 31, 8, 8)]    // slak_nano stage 1
    [TestCase(3, 31, 16, 16)]  // slak_nano64 stage 1
    [TestCase(9, 62, 8, 8)]    // slak_nano64 stage 2
    [TestCase(2, 13, 9, 9)]    // 81 pixels: the last chunk overlaps by more than a vector
    [TestCase(4, 5, 4, 5)]     // 20 pixels: a forward chunk overlaps (the backward's chunks are one vector)
    [TestCase(2, 1, 8, 8)]     // one channel
    public void GivesThe256BitKernelsBits(int n, int c, int h, int w)
    {
        Assume.That(Vector512.IsHardwareAccelerated, "no 512-bit vectors on this machine: the path never runs");
        foreach (var layout in new[] { LayerNormOverChannels.NchwToNhwc, LayerNormOverChannels.ChannelsFirst })
        {
            string what = $"LayerNorm {layout} {n}x{c}x{h}x{w}, 512-bit chunks";
            // Draw runs the forward (into NaN-poisoned y, mean and rstd); Backward poisons dx, dweight and dbias.
            var cases = new List<(float[] Dx, float[] Dw, float[] Db)>();
            var draws = new List<CpuLayerNormBackwardCase>();
            int seedState = _rng.Seed;
            foreach (var (wide, threads) in new[] { (false, 2), (true, 1), (true, 2), (true, 3), (true, 3) })
            {
                // The same inputs for every run: a fresh generator from the test's seed.
                var rng = new TestRandom(seedState);
                var ln = With(wide, threads, () => CpuLayerNormBackwardCase.Draw(rng, layout, n, c, h, w, 1.1, 0.2));
                draws.Add(ln);
                cases.Add(With(wide, threads, ln.Backward));
            }
            var reference = draws[0].Forward;
            string[] fwdNames = ["y", "mean", "1/std"];
            string[] bwdNames = ["dx", "dweight", "dbias"];
            string[] runs = ["512-bit, 1 thread", "512-bit, 2 threads", "512-bit, 3 threads", "512-bit, repeated"];
            for (int r = 1; r < draws.Count; r++)
            {
                var f = draws[r].Forward;
                for (int k = 0; k < 3; k++)
                    Expect.Exactly(f[k], reference[k], _rng.Ctx($"{what}: {fwdNames[k]}, {runs[r - 1]} vs 256-bit"));
                float[][] got = [cases[r].Dx, cases[r].Dw, cases[r].Db], want = [cases[0].Dx, cases[0].Dw, cases[0].Db];
                for (int k = 0; k < 3; k++)
                    Expect.Exactly(got[k], want[k], _rng.Ctx($"{what}: {bwdNames[k]}, {runs[r - 1]} vs 256-bit"));
            }
        }
    }
}
