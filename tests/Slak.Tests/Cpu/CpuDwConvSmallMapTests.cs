// The small-map path of the decomposed depthwise convolution (CpuDwConvSmallMap, maps of 1 pixel) against the
// float64 references of CpuDwConvDecomposedTests (forward per branch and summed, input gradient, weight gradient dense
// and masked) on 1x1 maps (slak_nano's last stage), and the plane engine on the same
// cases with the path switched off, so both stay tested; plus partial outputs equal to the full forward's.
using NUnit.Framework;
using Slak.Backends.Cpu;

namespace Slak.Tests.Cpu;

[NonParallelizable] // switches CpuDwConvSmallMap.Enabled for the duration of a test
public sealed class CpuDwConvSmallMapTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        // N, C, H, W, M, short side, with the N x N branch, density (slak_nano's kernels: 13x3+3x13+3x3 and more)
        yield return new TestCaseData(16, 31, 1, 1, 13, 3, true, 0.6).SetName("1x1, C 31, M 13, density 0.6");
        yield return new TestCaseData(9, 249, 1, 1, 5, 3, true, 0.6).SetName("1x1, C 249, M 5, density 0.6");
        yield return new TestCaseData(5, 17, 1, 1, 5, 3, true, 1.0).SetName("1x1, C 17, dense");
        yield return new TestCaseData(3, 4, 1, 1, 31, 3, false, 0.4).SetName("1x1, two branches");
    }

    [TestCaseSource(nameof(Cases))]
    public void SmallMapPathMatchesReference(int n, int c, int h, int w, int m, int s, bool square, double density)
    {
        Assert.That(CpuDwConvSmallMap.Applies(h, w), Is.True, $"{h}x{w} should take the small-map path");
        new CpuDwConvDecomposedTests().BranchesMatchReference(n, c, h, w, m, s, square, density);
    }

    [TestCaseSource(nameof(Cases))]
    public void PlaneEngineOnSmallMapsMatchesReference(int n, int c, int h, int w, int m, int s, bool square, double density)
    {
        bool was = CpuDwConvSmallMap.Enabled;
        try
        {
            CpuDwConvSmallMap.Enabled = false;
            new CpuDwConvDecomposedTests().BranchesMatchReference(n, c, h, w, m, s, square, density);
        }
        finally
        {
            CpuDwConvSmallMap.Enabled = was;
        }
    }

    [Test]
    public void PartialOutputsMatchFullForward()
    {
        int seed = TestContext.CurrentContext.Random.Next();
        var rng = new Random(seed);
        const int n = 8, c = 5, h = 1, w = 1;
        var x = DwRef.Random(rng, n * c * h * w);
        var branches = new List<CpuDwConvBranch>
        {
            new(7, 3, DwRef.Random(rng, c * 21)),
            new(3, 7, DwRef.Random(rng, c * 21)),
            new(3, 3, DwRef.Random(rng, c * 9)),
        };
        var full = branches.Select(_ => new Memory<float>(DwRef.Poisoned(x.Length))).ToList();
        var fullSum = DwRef.Poisoned(x.Length);
        CpuDwConvDecomposed.Forward(n, c, h, w, branches, x, full, fullSum);
        for (int only = 0; only < branches.Count; only++)
        {
            var ys = branches.Select((_, b) => b == only ? new Memory<float>(DwRef.Poisoned(x.Length))
                : Memory<float>.Empty).ToList();
            var sum = DwRef.Poisoned(x.Length);
            CpuDwConvDecomposed.Forward(n, c, h, w, branches, x, ys, sum);
            Assert.That(ys[only].ToArray(), Is.EqualTo(full[only].ToArray()), $"branch {only} alone (seed {seed})");
            Assert.That(sum, Is.EqualTo(fullSum), $"sum with branch {only} output (seed {seed})");
        }
    }
}
