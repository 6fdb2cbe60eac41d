// The direct patchify path of CpuConv2d (CpuConv2d.Direct.cs) and the batched path it replaced as the default
// (CpuConv2d.Batched.cs, SLAK_CONV2D_PATCHIFY=batched), each called directly, against the float64 references of
// CpuConv2dTests: slak_nano's stem and downsampling shapes at a smaller batch (blocks of one image, of several images
// with padded lanes, a partial last block), odd maps and channel counts (P not a multiple of 16, leftover rows and
// columns, Kh != Kw, a 1x1 "patchify"), plus one general (kernel != stride) shape through the public entry points.
// Outputs are poisoned (NaN) before every call; two runs at the same thread count must give the same bits.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // sets CpuParallel.Threads
public class CpuConv2dDirectTests
{
    private static IEnumerable<TestCaseData> Shapes()
    {
        Conv2dShape[] shapes =
        [
            new(3, 1, 32, 32, 31, 4, 4, 4, 4, 0, 0),    // slak_nano stem (P = 64: one image per block, y in place)
            new(5, 31, 8, 8, 62, 2, 2, 2, 2, 0, 0),     // slak_nano ds1 (P = 16: 4 images per block, partial block)
            new(9, 62, 4, 4, 124, 2, 2, 2, 2, 0, 0),    // slak_nano ds2 (P = 4)
            new(70, 124, 2, 2, 249, 2, 2, 2, 2, 0, 0),  // slak_nano ds3 (P = 1: 64 images per block, partial block)
            new(2, 1, 64, 64, 31, 4, 4, 4, 4, 0, 0),    // slak_nano64 stem (P = 256)
            new(3, 31, 16, 16, 62, 2, 2, 2, 2, 0, 0),   // slak_nano64 ds1 (P = 64)
            new(3, 5, 15, 9, 7, 3, 3, 3, 3, 0, 0),      // 3x3/3, P = 15
            new(4, 3, 10, 9, 6, 4, 4, 4, 4, 0, 0),      // leftover rows and columns, P = 4
            new(3, 4, 6, 8, 5, 2, 4, 2, 4, 0, 0),       // Kh != Kw, P = 6
            new(2, 3, 16, 16, 17, 1, 1, 1, 1, 0, 0),    // 1x1 stride 1 (patchify with K = 1), P = 256
            new(1, 2, 5, 7, 3, 5, 7, 5, 7, 0, 0),       // one window per image, N = 1
            new(2, 3, 6, 14, 5, 2, 2, 2, 2, 0, 0),      // 2x2/2, OutW = 7: 4-, 2- and 1-wide gather steps
            new(2, 2, 8, 20, 3, 4, 4, 4, 4, 0, 0),      // 4x4/4, OutW = 5: 4-wide step and a scalar tail
        ];
        foreach (var s in shapes)
            yield return new TestCaseData(s).SetArgDisplayNames(s.ToString());
    }

    [TestCaseSource(nameof(Shapes))]
    public void DirectAndBatchedPathsMatchFloat64(object shape)  // Conv2dShape (internal to Slak)
    {
        var s = (Conv2dShape)shape;
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        var x = CpuConv2dTests.RandomArray(rng, s.InputSize);
        var w = CpuConv2dTests.RandomArray(rng, s.WeightSize);
        var b = CpuConv2dTests.RandomArray(rng, s.Cout);
        var dy = CpuConv2dTests.RandomArray(rng, s.OutputSize);
        var (yRef, yScale) = CpuConv2dTests.Reference.Forward(s, x, w, b);
        var (y0Ref, y0Scale) = CpuConv2dTests.Reference.Forward(s, x, w, []);
        var (dxRef, dxScale) = CpuConv2dTests.Reference.BackwardData(s, dy, w);
        var (dwRef, dwScale) = CpuConv2dTests.Reference.BackwardFilter(s, x, dy);
        var (dbRef, dbScale) = CpuConv2dTests.Reference.BackwardBias(s, dy);
        foreach (bool direct in new[] { true, false })
            foreach (int threads in new[] { 1, 2, 3 })
                WithThreads(threads, () =>
                {
                    string ctx = $"{s} direct={direct} threads={threads} seed={seed}";
                    var y = CpuConv2dTests.Poisoned(s.OutputSize);
                    if (direct) CpuConv2d.DirectForward(s, x, w, b, y);
                    else CpuConv2d.PatchifyForward(s, x, w, b, y);
                    CpuConv2dTests.AssertClose(y, yRef, yScale, "y", ctx);
                    y = CpuConv2dTests.Poisoned(s.OutputSize);
                    if (direct) CpuConv2d.DirectForward(s, x, w, [], y);
                    else CpuConv2d.PatchifyForward(s, x, w, [], y);
                    CpuConv2dTests.AssertClose(y, y0Ref, y0Scale, "y (no bias)", ctx);

                    var dx = CpuConv2dTests.Poisoned(s.InputSize);
                    if (direct) CpuConv2d.DirectBackwardData(s, dy, w, dx);
                    else CpuConv2d.PatchifyBackwardData(s, dy, w, dx);
                    CpuConv2dTests.AssertClose(dx, dxRef, dxScale, "dx", ctx);

                    var dw = CpuConv2dTests.Poisoned(s.WeightSize);
                    var db = CpuConv2dTests.Poisoned(s.Cout);
                    if (direct) CpuConv2d.DirectBackwardFilter(s, x, dy, dw, db);
                    else CpuConv2d.PatchifyBackwardFilter(s, x, dy, dw, db);
                    CpuConv2dTests.AssertClose(dw, dwRef, dwScale, "dw", ctx);
                    CpuConv2dTests.AssertClose(db, dbRef, dbScale, "dbias", ctx);
                    dw = CpuConv2dTests.Poisoned(s.WeightSize);
                    if (direct) CpuConv2d.DirectBackwardFilter(s, x, dy, dw, []);
                    else CpuConv2d.PatchifyBackwardFilter(s, x, dy, dw, []);
                    CpuConv2dTests.AssertClose(dw, dwRef, dwScale, "dw (no dbias)", ctx);
                });
    }

    [TestCase(2)]
    [TestCase(3)]
    public void DirectPathGivesTheSameBitsTwice(int threads)
    {
        // slak_nano's four layers at batch 37: every blocking kind, partial blocks and groups of unequal size.
        Conv2dShape[] shapes =
        [
            new(37, 1, 32, 32, 31, 4, 4, 4, 4, 0, 0),
            new(37, 31, 8, 8, 62, 2, 2, 2, 2, 0, 0),
            new(37, 62, 4, 4, 124, 2, 2, 2, 2, 0, 0),
            new(37, 124, 2, 2, 249, 2, 2, 2, 2, 0, 0),
        ];
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        WithThreads(threads, () =>
        {
            foreach (var s in shapes)
            {
                var x = CpuConv2dTests.RandomArray(rng, s.InputSize);
                var w = CpuConv2dTests.RandomArray(rng, s.WeightSize);
                var b = CpuConv2dTests.RandomArray(rng, s.Cout);
                var dy = CpuConv2dTests.RandomArray(rng, s.OutputSize);
                float[][] Run()
                {
                    var y = CpuConv2dTests.Poisoned(s.OutputSize);
                    var dx = CpuConv2dTests.Poisoned(s.InputSize);
                    var dw = CpuConv2dTests.Poisoned(s.WeightSize);
                    var db = CpuConv2dTests.Poisoned(s.Cout);
                    CpuConv2d.DirectForward(s, x, w, b, y);
                    CpuConv2d.DirectBackwardData(s, dy, w, dx);
                    CpuConv2d.DirectBackwardFilter(s, x, dy, dw, db);
                    return [y, dx, dw, db];
                }
                var first = Run();
                var second = Run();
                string[] names = ["y", "dx", "dw", "dbias"];
                for (int i = 0; i < first.Length; i++)
                    for (int j = 0; j < first[i].Length; j++)
                        if (BitConverter.SingleToInt32Bits(first[i][j]) != BitConverter.SingleToInt32Bits(second[i][j]))
                            Assert.Fail($"{names[i]}[{j}]: {first[i][j]:R} then {second[i][j]:R}; {s} threads={threads} seed={seed}");
            }
        });
    }

    [Test]
    public void PublicEntryPointsTakeTheSelectedPath()
    {
        // Patchify through the switch (both settings) and a general shape (kernel != stride), against float64.
        Conv2dShape[] shapes = [new(6, 31, 8, 8, 62, 2, 2, 2, 2, 0, 0), new(3, 4, 9, 8, 6, 3, 3, 2, 2, 1, 1)];
        int seed = TestRandom.NewSeed();
        var rng = new Random(seed);
        bool keep = CpuConv2d.DirectPatchify;
        try
        {
            foreach (var s in shapes)
                foreach (bool direct in new[] { true, false })
                {
                    CpuConv2d.DirectPatchify = direct;
                    string ctx = $"{s} direct={direct} seed={seed}";
                    var x = CpuConv2dTests.RandomArray(rng, s.InputSize);
                    var w = CpuConv2dTests.RandomArray(rng, s.WeightSize);
                    var b = CpuConv2dTests.RandomArray(rng, s.Cout);
                    var dy = CpuConv2dTests.RandomArray(rng, s.OutputSize);
                    var y = CpuConv2dTests.Poisoned(s.OutputSize);
                    var dx = CpuConv2dTests.Poisoned(s.InputSize);
                    var dw = CpuConv2dTests.Poisoned(s.WeightSize);
                    var db = CpuConv2dTests.Poisoned(s.Cout);
                    CpuConv2d.Forward(s, x, w, b, y);
                    CpuConv2d.BackwardData(s, dy, w, dx);
                    CpuConv2d.BackwardFilter(s, x, dy, dw, db);
                    var (yRef, yScale) = CpuConv2dTests.Reference.Forward(s, x, w, b);
                    var (dxRef, dxScale) = CpuConv2dTests.Reference.BackwardData(s, dy, w);
                    var (dwRef, dwScale) = CpuConv2dTests.Reference.BackwardFilter(s, x, dy);
                    var (dbRef, dbScale) = CpuConv2dTests.Reference.BackwardBias(s, dy);
                    CpuConv2dTests.AssertClose(y, yRef, yScale, "y", ctx);
                    CpuConv2dTests.AssertClose(dx, dxRef, dxScale, "dx", ctx);
                    CpuConv2dTests.AssertClose(dw, dwRef, dwScale, "dw", ctx);
                    CpuConv2dTests.AssertClose(db, dbRef, dbScale, "dbias", ctx);
                }
        }
        finally
        {
            CpuConv2d.DirectPatchify = keep;
        }
    }

    private static void WithThreads(int threads, Action body)
    {
        int keep = CpuParallel.Threads;
        try
        {
            CpuParallel.Threads = threads;
            body();
        }
        finally
        {
            CpuParallel.Threads = keep;
        }
    }
}
