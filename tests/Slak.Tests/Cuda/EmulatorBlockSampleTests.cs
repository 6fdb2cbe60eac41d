// Sampled execution on the emulated device (issue 19, item 3): EmulatedDevice.SampleBlocks makes a launch run only
// the chosen blocks, BlockSample.Standard picks the corners, k blocks along each edge and r seeded interior blocks,
// and LazyMemory lets a production-size buffer be allocated without committing its pages.
using System.Diagnostics;
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;
using static Slak.Tests.Cuda.EmulatorTestSupport;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed unsafe class EmulatorBlockSampleTests : EmulatedDeviceFixture
{
    [Test]
    public void OnlySampledBlocksAreExecuted()
    {
        var grid = new Dim3(5, 4, 3);
        var seed = NewSeed();
        var sample = BlockSample.Standard(grid, perEdge: 1, interior: 3, seed);
        var blocks = (int)(grid.X * grid.Y * grid.Z);
        var dout = Poisoned(Emu, 3 * blocks, 0xFFFFFFFFu);
        ulong o = dout.Address;
        using (Emu.SampleBlocks(sample))
            Launch(Emu, "probe_block_id_kernel", grid, 32, 0, (nint)(&o));
        Assert.That(EmulatedDevice.LastLaunchBlocks, Is.EqualTo(sample.Count));
        var got = Download<int>(Emu, dout, 3 * blocks);
        var sampled = sample.ToHashSet();
        for (var z = 0; z < 3; z++)
        for (var y = 0; y < 4; y++)
        for (var x = 0; x < 5; x++)
        {
            var b = x + 5 * (y + 4 * z);
            int[] want = sampled.Contains((x, y, z)) ? [x, y, z] : [-1, -1, -1];
            Assert.That(got.AsSpan(3 * b, 3).ToArray(), Is.EqualTo(want), $"block ({x},{y},{z}) seed={seed}");
        }

        // The scope ended: the whole grid runs again.
        Launch(Emu, "probe_block_id_kernel", grid, 32, 0, (nint)(&o));
        Assert.That(Download<int>(Emu, dout, 3 * blocks), Has.None.EqualTo(-1));
        Emu.Free(dout);
    }

    [Test]
    public void StandardSampleHasCornersEdgePointsAndSeededInterior()
    {
        var line = BlockSample.Standard(new Dim3(10), perEdge: 2, interior: 0, seed: 1);
        Assert.That(line, Is.EqualTo(new[] { (0, 0, 0), (3, 0, 0), (6, 0, 0), (9, 0, 0) }));

        var grid = new Dim3(20, 9, 4);
        var a = BlockSample.Standard(grid, perEdge: 2, interior: 5, seed: 42);
        var b = BlockSample.Standard(grid, perEdge: 2, interior: 5, seed: 42);
        Assert.That(a, Is.EqualTo(b), "same seed, same sample");
        foreach (var (x, y, z) in new[] { (0, 0, 0), (19, 0, 0), (0, 8, 0), (19, 8, 0), (0, 0, 3), (19, 8, 3) })
            Assert.That(a, Does.Contain((x, y, z)), "corner");
        Assert.That(a, Does.Contain((1 + 18 * 1 / 3, 0, 0)).And.Contain((0, 1 + 7 * 2 / 3, 3)), "edge points");
        Assert.That(a, Is.Unique);
        Assert.That(a.All(p => p.X < 20 && p.Y < 9 && p.Z < 4), Is.True);
        // 8 corners + 12 edges x 2 points + 5 interior (distinct with this seed, or fewer).
        Assert.That(a.Count, Is.InRange(8 + 24 + 1, 8 + 24 + 5));
        var interior = a.Where(p => p.X is > 0 and < 19 && p.Y is > 0 and < 8 && p.Z is > 0 and < 3).ToList();
        Assert.That(interior, Is.Not.Empty);
        Assert.That(BlockSample.Standard(new Dim3(2, 2), 3, 3, 7), Has.Count.EqualTo(4), "a tiny grid: every block");
    }

    [Test]
    public void LazyMemoryCommitsOnlyTheTouchedPagesOfAProductionSizeBuffer()
    {
        using var dev = EmulatedDevice.Open();
        dev.LazyMemory = true;
        const uint gridX = 100_000_000;              // 1.2 GB of output: 3 ints per block
        var before = CurrentRss();
        var dout = dev.Allocate(12L * gridX);
        ulong o = dout.Address;
        var sample = BlockSample.Standard(new Dim3(gridX), perEdge: 2, interior: 4, seed: 3);
        using (dev.SampleBlocks(sample))
            dev.Launch(dev.GetKernel("probe_block_id_kernel"), new Dim3(gridX), 32, 0, [(nint)(&o)]);
        var grown = CurrentRss() - before;
        TestContext.Out.WriteLine($"resident set grew by {grown >> 20} MiB for a {12L * gridX >> 20} MiB buffer");
        Assert.That(grown, Is.LessThan(256L << 20), "the buffer's untouched pages must stay uncommitted");
        var last = new int[3];
        dev.CopyToHost(new DevicePtr(dout.Address + 12UL * (gridX - 1)),
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(last.AsSpan()));
        Assert.That(last, Is.EqualTo(new[] { (int)gridX - 1, 0, 0 }), "the last corner block ran");
        var middle = new int[3];
        dev.CopyToHost(new DevicePtr(dout.Address + 12UL * (gridX / 2 + 1)),
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(middle.AsSpan()));
        Assert.That(middle, Is.EqualTo(new[] { 0, 0, 0 }), "an unsampled block: lazily reserved memory reads as zero");
        dev.Free(dout);
    }

    private static long CurrentRss()
    {
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        return self.WorkingSet64;
    }
}
