// The plane-by-plane patch moves of the direct patchify path (CpuConv2d.PlaneMoves.cs: 2 x 2 / stride 2 windows on
// 4 x 4 and 8 x 8 maps) against the float64 reference of CpuConv2dTests and against the general moves
// (PlaneMoves = false, SLAK_CONV2D_PLANE_MOVES=off), in all three passes (forward with bias, input gradient, weight and
// bias gradient): slak_nano's ds1 (31 -> 62 on 8 x 8) and ds2 (62 -> 124 on 4 x 4), slak_nano64's ds2 (62 -> 124 on
// 8 x 8) and ds3 (124 -> 249 on 4 x 4) at batch 128, the other channel counts of the presets, batches that leave 1-3
// images after the groups of 4 and a partial block of images, one image, at 1, 2 and 3 threads. Outputs are poisoned
// (NaN) before every call; a second call at the same thread count must give the same bits. The moves only copy, so
// the new and the old path must agree to the bit as well.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // sets CpuParallel.Threads and CpuConv2d.PlaneMoves
public class CpuConv2dPlaneMovesTests
{
    private static IEnumerable<TestCaseData> Shapes()
    {
        Conv2dShape[] shapes =
        [
            new(128, 62, 4, 4, 124, 2, 2, 2, 2, 0, 0),     // slak_nano ds2: blocks of 16 images, 4 groups of 4
            new(128, 124, 4, 4, 249, 2, 2, 2, 2, 0, 0),    // slak_nano64 ds3
            new(7, 31, 4, 4, 62, 2, 2, 2, 2, 0, 0),        // 7 images: one group of 4 and 3 left, a partial block
            new(21, 249, 4, 4, 31, 2, 2, 2, 2, 0, 0),      // 16 + 4 + 1 images, 249 input channels
            new(1, 3, 4, 4, 5, 2, 2, 2, 2, 0, 0),          // one image, tiny channel counts
            new(128, 31, 8, 8, 62, 2, 2, 2, 2, 0, 0),      // slak_nano ds1: blocks of 4 images (P = 16)
            new(128, 62, 8, 8, 124, 2, 2, 2, 2, 0, 0),     // slak_nano64 ds2
            new(5, 9, 8, 8, 7, 2, 2, 2, 2, 0, 0),          // 8 x 8, a partial block, odd channel counts
            new(1, 249, 8, 8, 3, 2, 2, 2, 2, 0, 0),        // 8 x 8, one image, 249 input channels
        ];
        foreach (var s in shapes)
            yield return new TestCaseData(s).SetArgDisplayNames(s.ToString());
    }

    [TestCaseSource(nameof(Shapes))]
    public void PlaneMovesMatchFloat64AndTheGeneralMovesBitForBit(object shape)  // Conv2dShape (internal to Slak)
    {
        var s = (Conv2dShape)shape;
        var random = TestRandom.ForCurrentTest();
        var rng = new Random(random.Seed);
        var x = CpuConv2dTests.RandomArray(rng, s.InputSize);
        var w = CpuConv2dTests.RandomArray(rng, s.WeightSize);
        var b = CpuConv2dTests.RandomArray(rng, s.Cout);
        var dy = CpuConv2dTests.RandomArray(rng, s.OutputSize);
        var (yRef, yScale) = CpuConv2dTests.Reference.Forward(s, x, w, b);
        var (dxRef, dxScale) = CpuConv2dTests.Reference.BackwardData(s, dy, w);
        var (dwRef, dwScale) = CpuConv2dTests.Reference.BackwardFilter(s, x, dy);
        var (dbRef, dbScale) = CpuConv2dTests.Reference.BackwardBias(s, dy);
        bool keepMoves = CpuConv2d.PlaneMoves;
        int keepThreads = CpuParallel.Threads;
        try
        {
            foreach (int threads in new[] { 1, 2, 3 })
            {
                CpuParallel.Threads = threads;
                float[][]? first = null;
                foreach (var (planes, run) in new[] { (false, 0), (true, 0), (true, 1) })
                {
                    CpuConv2d.PlaneMoves = planes;
                    string ctx = random.Ctx($"{s} threads={threads} planes={planes} run={run}");
                    var y = CpuConv2dTests.Poisoned(s.OutputSize);
                    var dx = CpuConv2dTests.Poisoned(s.InputSize);
                    var dw = CpuConv2dTests.Poisoned(s.WeightSize);
                    var db = CpuConv2dTests.Poisoned(s.Cout);
                    CpuConv2d.Forward(s, x, w, b, y);
                    CpuConv2d.BackwardData(s, dy, w, dx);
                    CpuConv2d.BackwardFilter(s, x, dy, dw, db);
                    CpuConv2dTests.AssertClose(y, yRef, yScale, "y", ctx);
                    CpuConv2dTests.AssertClose(dx, dxRef, dxScale, "dx", ctx);
                    CpuConv2dTests.AssertClose(dw, dwRef, dwScale, "dw", ctx);
                    CpuConv2dTests.AssertClose(db, dbRef, dbScale, "dbias", ctx);
                    float[][] got = [y, dx, dw, db];
                    if (first is null)
                    {
                        first = got;  // the general moves: the plane moves must give these bits, run after run
                        continue;
                    }
                    string[] names = ["y", "dx", "dw", "dbias"];
                    for (int t = 0; t < got.Length; t++) AssertSameBits(first[t], got[t], names[t], ctx);
                }
            }
        }
        finally
        {
            CpuConv2d.PlaneMoves = keepMoves;
            CpuParallel.Threads = keepThreads;
        }
    }

    private static void AssertSameBits(float[] expected, float[] got, string what, string ctx)
    {
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(got[i]))
                Assert.Fail($"{what}[{i}]: {got[i]:R}, general moves {expected[i]:R}; {ctx}");
    }
}
