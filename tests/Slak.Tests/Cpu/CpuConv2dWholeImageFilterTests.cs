// The weight gradient of patchify convolutions whose window covers the whole image (CpuConv2d.WholeImageFilter.cs:
// one CpuGemm call, dbias as column sums of dy) against the float64 reference of CpuConv2dTests and against the
// direct path's own loops (WholeImageFilterGemm = false, SLAK_CONV2D_WHOLE_IMAGE_DW=off): slak_nano's last
// downsampling layer (124 -> 249 on 2 x 2, batch 128), the other channel counts of the presets on 2 x 2 maps, a 4 x 4
// and a 3 x 3 window over the whole image, channel counts around a multiple of 16 (the bias sums' vector tail), one
// image, at 1, 2 and 3 threads. dW and dbias are poisoned (NaN) before every call; a second call at the same thread
// count must give the same bits.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // sets CpuParallel.Threads and CpuConv2d.WholeImageFilterGemm
public class CpuConv2dWholeImageFilterTests
{
    private static IEnumerable<TestCaseData> Shapes()
    {
        Conv2dShape[] shapes =
        [
            new(128, 124, 2, 2, 249, 2, 2, 2, 2, 0, 0),    // slak_nano ds3: CKK 496, 249 = 15 x 16 + 9 bias lanes
            new(128, 31, 2, 2, 62, 2, 2, 2, 2, 0, 0),      // 31 -> 62 on 2 x 2
            new(37, 62, 2, 2, 124, 2, 2, 2, 2, 0, 0),      // 62 -> 124, odd batch
            new(5, 1, 4, 4, 31, 4, 4, 4, 4, 0, 0),         // a 4 x 4 window over the whole image (CKK 16)
            new(3, 5, 3, 3, 7, 3, 3, 3, 3, 0, 0),          // 3 x 3 (CKK 45), fewer channels than a vector
            new(33, 9, 2, 2, 16, 2, 2, 2, 2, 0, 0),        // one whole bias vector, no tail
            new(1, 124, 2, 2, 249, 2, 2, 2, 2, 0, 0),      // one image
        ];
        foreach (var s in shapes)
            yield return new TestCaseData(s).SetArgDisplayNames(s.ToString());
    }

    [TestCaseSource(nameof(Shapes))]
    public void GemmMatchesFloat64AndTheDirectLoopsAndRepeatsItsBits(object shape)  // Conv2dShape (internal to Slak)
    {
        var s = (Conv2dShape)shape;
        var random = TestRandom.ForCurrentTest();
        var rng = new Random(random.Seed);
        var x = CpuConv2dTests.RandomArray(rng, s.InputSize);
        var dy = CpuConv2dTests.RandomArray(rng, s.OutputSize);
        var (dwRef, dwScale) = CpuConv2dTests.Reference.BackwardFilter(s, x, dy);
        var (dbRef, dbScale) = CpuConv2dTests.Reference.BackwardBias(s, dy);
        bool keepGemm = CpuConv2d.WholeImageFilterGemm;
        int keepThreads = CpuParallel.Threads;
        try
        {
            foreach (int threads in new[] { 1, 2, 3 })
            {
                CpuParallel.Threads = threads;
                string ctx = random.Ctx($"{s} threads={threads}");
                CpuConv2d.WholeImageFilterGemm = false;
                var dwOld = CpuConv2dTests.Poisoned(s.WeightSize);
                var dbOld = CpuConv2dTests.Poisoned(s.Cout);
                CpuConv2d.BackwardFilter(s, x, dy, dwOld, dbOld);
                CpuConv2d.WholeImageFilterGemm = true;
                float[]? firstDw = null, firstDb = null;
                for (int run = 0; run < 2; run++)
                {
                    var dw = CpuConv2dTests.Poisoned(s.WeightSize);
                    var db = CpuConv2dTests.Poisoned(s.Cout);
                    CpuConv2d.BackwardFilter(s, x, dy, dw, db);
                    CpuConv2dTests.AssertClose(dw, dwRef, dwScale, "dw", ctx);
                    CpuConv2dTests.AssertClose(db, dbRef, dbScale, "dbias", ctx);
                    // Against the old path: both are float32 sums of the same products in different orders, each
                    // within the float64 tolerance of the reference, so within twice that of each other.
                    AssertNear(dw, dwOld, dwScale, "dw against the direct loops", ctx);
                    AssertNear(db, dbOld, dbScale, "dbias against the direct loops", ctx);
                    if (run == 0)
                    {
                        (firstDw, firstDb) = (dw, db);
                        continue;
                    }
                    AssertSameBits(firstDw!, dw, "dw", ctx);
                    AssertSameBits(firstDb!, db, "dbias", ctx);
                }
                var dwOnly = CpuConv2dTests.Poisoned(s.WeightSize);
                CpuConv2d.BackwardFilter(s, x, dy, dwOnly, []);
                AssertSameBits(firstDw!, dwOnly, "dw (no dbias)", ctx);
            }
        }
        finally
        {
            CpuConv2d.WholeImageFilterGemm = keepGemm;
            CpuParallel.Threads = keepThreads;
        }
    }

    // |got - old| <= 2 x the tolerance AssertClose allows against the float64 reference.
    private static void AssertNear(float[] got, float[] old, (double[] Abs, int Terms) scale, string what, string ctx)
    {
        for (int i = 0; i < got.Length; i++)
        {
            double tol = 2 * (1e-6 + 4e-6 * Math.Sqrt(scale.Terms + 1) * scale.Abs[i]);
            if (!(Math.Abs(got[i] - old[i]) <= tol))
                Assert.Fail($"{what}[{i}] = {got[i]}, old path {old[i]} (tol {tol:g3}); {ctx}");
        }
    }

    private static void AssertSameBits(float[] first, float[] second, string what, string ctx)
    {
        for (int i = 0; i < first.Length; i++)
            if (BitConverter.SingleToInt32Bits(first[i]) != BitConverter.SingleToInt32Bits(second[i]))
                Assert.Fail($"{what}[{i}]: {first[i]:R} then {second[i]:R}; {ctx}");
    }
}
