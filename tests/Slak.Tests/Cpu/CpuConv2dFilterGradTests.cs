// The patchify weight gradient's two forms (CpuConv2d.FilterGrad.cs, the default, and the first form behind
// TunedFilterGradient = false) against the float64 reference of CpuConv2dTests: every stage of slak_nano and
// slak_nano64 at batch 128 (the stem's 16-row tiles with dy read in place, the downsampling layers' in-place and
// gathered blocks, padded patch rows) and small odd shapes (rows left for the 4-row tiles, fewer than 4 output
// channels, tails of the 2x2 and 4x4 shuffles, leftover input rows and columns, windows the shuffles do not take),
// at 1 and 2 threads. dW and dbias are poisoned (NaN) before every call; a second call at the same thread count
// must give the same bits.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // sets CpuParallel.Threads and CpuConv2d.TunedFilterGradient
public class CpuConv2dFilterGradTests
{
    private static IEnumerable<TestCaseData> Shapes()
    {
        Conv2dShape[] shapes =
        [
            new(128, 1, 32, 32, 31, 4, 4, 4, 4, 0, 0),     // slak_nano stem: P = 64, dy in place, 16 + 12 + 3 rows
            new(128, 31, 8, 8, 62, 2, 2, 2, 2, 0, 0),      // slak_nano ds1: P = 16, gathered, CKK 124 -> stride 144
            new(128, 62, 4, 4, 124, 2, 2, 2, 2, 0, 0),     // slak_nano ds2: P = 4, gathered, CKK 248 -> stride 272
            new(128, 124, 2, 2, 249, 2, 2, 2, 2, 0, 0),    // slak_nano ds3: P = 1, gathered, CKK 496
            new(128, 1, 64, 64, 31, 4, 4, 4, 4, 0, 0),     // slak_nano64 stem: P = 256, one image per block
            new(128, 31, 16, 16, 62, 2, 2, 2, 2, 0, 0),    // slak_nano64 ds1
            new(128, 62, 8, 8, 124, 2, 2, 2, 2, 0, 0),     // slak_nano64 ds2
            new(128, 124, 4, 4, 249, 2, 2, 2, 2, 0, 0),    // slak_nano64 ds3
            new(3, 1, 32, 32, 31, 4, 4, 4, 4, 0, 0),       // stem, batch 3 (a group of one image at 3 threads)
            new(5, 31, 8, 8, 62, 2, 2, 2, 2, 0, 0),        // ds1, batch 5 (a partial block)
            new(1, 124, 2, 2, 249, 2, 2, 2, 2, 0, 0),      // ds3, one image (one group)
            new(3, 1, 36, 36, 17, 4, 4, 4, 4, 0, 0),       // 4x4 on 9 x 9 outputs: shuffle tail, 17 rows = 16 + 1, P = 81
            new(2, 1, 20, 44, 3, 4, 4, 4, 4, 0, 0),        // 3 output channels: no 16-row tile; OutW = 11
            new(4, 3, 10, 9, 6, 4, 4, 4, 4, 0, 0),         // leftover input rows and columns, P = 4
            new(3, 5, 13, 15, 7, 2, 2, 2, 2, 0, 0),        // 2x2, OutW = 7 (4-wide step, 3-pixel tail), leftovers
            new(2, 9, 18, 18, 10, 2, 2, 2, 2, 0, 0),       // 2x2, P = 81 in place, CKK 36 -> 48 (no stride gap)
            new(3, 5, 15, 9, 7, 3, 3, 3, 3, 0, 0),         // 3x3/3: the generic patch rows, P = 15
            new(3, 4, 6, 8, 5, 2, 4, 2, 4, 0, 0),          // Kh != Kw
            new(2, 3, 16, 16, 17, 1, 1, 1, 1, 0, 0),       // 1x1 (K = 3), P = 256 in place
        ];
        foreach (var s in shapes)
            yield return new TestCaseData(s).SetArgDisplayNames(s.ToString());
    }

    [TestCaseSource(nameof(Shapes))]
    public void BothFormsMatchFloat64AndRepeatTheirBits(object shape)  // Conv2dShape (internal to Slak)
    {
        var s = (Conv2dShape)shape;
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        var x = CpuConv2dTests.RandomArray(rng, s.InputSize);
        var dy = CpuConv2dTests.RandomArray(rng, s.OutputSize);
        var (dwRef, dwScale) = CpuConv2dTests.Reference.BackwardFilter(s, x, dy);
        var (dbRef, dbScale) = CpuConv2dTests.Reference.BackwardBias(s, dy);
        bool keepForm = CpuConv2d.TunedFilterGradient;
        int keepThreads = CpuParallel.Threads;
        try
        {
            foreach (bool tuned in new[] { true, false })
                foreach (int threads in new[] { 1, 2 })
                {
                    CpuConv2d.TunedFilterGradient = tuned;
                    CpuParallel.Threads = threads;
                    string ctx = $"{s} tuned={tuned} threads={threads} seed={seed}";
                    float[]? firstDw = null, firstDb = null;
                    for (int run = 0; run < 2; run++)
                    {
                        var dw = CpuConv2dTests.Poisoned(s.WeightSize);
                        var db = CpuConv2dTests.Poisoned(s.Cout);
                        CpuConv2d.DirectBackwardFilter(s, x, dy, dw, db);
                        CpuConv2dTests.AssertClose(dw, dwRef, dwScale, "dw", ctx);
                        CpuConv2dTests.AssertClose(db, dbRef, dbScale, "dbias", ctx);
                        if (run == 0)
                        {
                            (firstDw, firstDb) = (dw, db);
                            continue;
                        }
                        AssertSameBits(firstDw!, dw, "dw", ctx);
                        AssertSameBits(firstDb!, db, "dbias", ctx);
                    }
                    var dwOnly = CpuConv2dTests.Poisoned(s.WeightSize);
                    CpuConv2d.DirectBackwardFilter(s, x, dy, dwOnly, []);
                    AssertSameBits(firstDw!, dwOnly, "dw (no dbias)", ctx);
                }
        }
        finally
        {
            CpuConv2d.TunedFilterGradient = keepForm;
            CpuParallel.Threads = keepThreads;
        }
    }

    private static void AssertSameBits(float[] first, float[] second, string what, string ctx)
    {
        for (int i = 0; i < first.Length; i++)
            if (BitConverter.SingleToInt32Bits(first[i]) != BitConverter.SingleToInt32Bits(second[i]))
                Assert.Fail($"{what}[{i}]: {first[i]:R} then {second[i]:R}; {ctx}");
    }
}
