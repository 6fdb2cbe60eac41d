// The standard block sample of a launch grid: 2^d corners, k blocks along each edge, r seeded interior blocks.
using NUnit.Framework;
using Slak.Cuda.Runtime;
using Slak.GpuCheck;

namespace Slak.Tests.GpuCheck;

[TestFixture]
public class GpuCheckBlockSampleTests
{
    private static HashSet<(uint, uint, uint)> Set(IEnumerable<Dim3> blocks) => blocks.Select(b => (b.X, b.Y, b.Z)).ToHashSet();

    [TestCase(1u, 1u, 1u, 1)]
    [TestCase(7u, 1u, 1u, 2)]
    [TestCase(7u, 5u, 1u, 4)]
    [TestCase(7u, 5u, 3u, 8)]
    [TestCase(1u, 1u, 127744u, 2)]
    public void WithoutEdgesOrInteriorTheSampleIsTheCorners(uint x, uint y, uint z, int corners)
    {
        var sample = BlockSample.Standard(new Dim3(x, y, z), 0, 0, 1);
        Assert.That(sample, Has.Count.EqualTo(corners));
        foreach (var b in sample)
        {
            Assert.That(b.X is 0 || b.X == x - 1, Is.True);
            Assert.That(b.Y is 0 || b.Y == y - 1, Is.True);
            Assert.That(b.Z is 0 || b.Z == z - 1, Is.True);
        }
    }

    [Test]
    public void EdgeBlocksAreEvenlySpacedInnerPositionsOfEachEdge()
    {
        Assert.That(BlockSample.Spaced(9, 3), Is.EqualTo(new uint[] { 2, 4, 6 }));
        Assert.That(BlockSample.Spaced(2, 3), Is.Empty);
        Assert.That(BlockSample.Spaced(4, 5), Is.EqualTo(new uint[] { 1, 2 }), "at most size - 2 distinct inner positions");
        // 2-D grid 9 x 5, 2 per edge: 4 corners + 2 edges along x (y = 0, 4) x 2 + 2 edges along y x 2 = 12 blocks.
        var sample = Set(BlockSample.Standard(new Dim3(9, 5), 2, 0, 1));
        Assert.That(sample, Has.Count.EqualTo(12));
        Assert.That(sample, Does.Contain((3u, 0u, 0u)).And.Contain((5u, 4u, 0u)).And.Contain((0u, 1u, 0u)).And.Contain((8u, 3u, 0u)));
    }

    [Test]
    public void InteriorBlocksAreSeededStrictlyInsideAndReplayable()
    {
        ulong seed = (ulong)Environment.TickCount64;
        TestContext.Out.WriteLine($"seed {seed}");
        var grid = new Dim3(100, 50, 7);
        var a = BlockSample.Standard(grid, 0, 16, seed);
        var b = BlockSample.Standard(grid, 0, 16, seed);
        Assert.That(a, Is.EqualTo(b), "the same seed gives the same sample");
        var interior = a.Where(x => x.X is > 0 and < 99 && x.Y is > 0 and < 49 && x.Z is > 0 and < 6).ToList();
        Assert.That(a.Count - interior.Count, Is.EqualTo(8), "everything but the 8 corners is strictly inside");
        Assert.That(interior, Has.Count.InRange(14, 16), "16 draws, nearly all distinct");
        var other = BlockSample.Standard(grid, 0, 16, seed + 1);
        Assert.That(Set(other).SetEquals(Set(a)), Is.False, "another seed gives another sample");
    }

    [Test]
    public void SampleIsDistinctOrderedAndInsideTheGrid()
    {
        var grid = new Dim3(2048, 3, 65535);
        var sample = BlockSample.Standard(grid, 3, 5, 42);
        Assert.That(Set(sample), Has.Count.EqualTo(sample.Count));
        Assert.That(sample.All(b => b.X < grid.X && b.Y < grid.Y && b.Z < grid.Z), Is.True);
        var keys = sample.Select(b => ((ulong)b.Z << 40) | ((ulong)b.Y << 20) | b.X).ToList();
        Assert.That(keys, Is.Ordered);
    }

    [Test]
    public void ColumnSampleKeepsEveryRowOfASampledColumn()
    {
        var grid = new Dim3(124, 16);
        var sample = BlockSample.Columns(grid, 2, 3, 9);
        var xs = sample.Select(b => b.X).Distinct().ToList();
        Assert.That(xs, Does.Contain(0u).And.Contain(123u));
        Assert.That(sample, Has.Count.EqualTo(xs.Count * 16));
        foreach (uint x in xs)
        {
            Assert.That(sample.Where(b => b.X == x).Select(b => b.Y), Is.EquivalentTo(Enumerable.Range(0, 16).Select(i => (uint)i)));
        }
    }

    [Test]
    public void AnEmptyGridDimensionIsRejected() =>
        Assert.That(() => BlockSample.Standard(new Dim3(0, 1, 1), 1, 1, 1), Throws.ArgumentException.With.Message.Contains("(0,1,1)"));
}
