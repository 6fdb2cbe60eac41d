// The standard block sample of sampled execution (run only chosen blocks of a production-size launch on the
// emulator, then compare those blocks' outputs with the CPU backend): the corners of the grid, k blocks along each
// edge, and r seeded random blocks of the interior. Used with EmulatedDevice.SampleBlocks.
namespace Slak.Cuda.Emulation;

/// <summary>Chooses the blocks of a grid that a sampled launch executes.</summary>
internal static class BlockSample
{
    /// <summary>The standard sample of <paramref name="grid"/>, sorted (z, y, x) and without duplicates: the 2^d
    /// corner blocks of the d dimensions that have more than one block, <paramref name="perEdge"/> evenly spaced
    /// blocks strictly inside each edge of the grid's box, and <paramref name="interior"/> blocks drawn uniformly
    /// from the interior (every coordinate neither first nor last where the dimension has more than two blocks) by
    /// a generator seeded with <paramref name="seed"/>. A grid smaller than the sample yields every block.</summary>
    public static IReadOnlyList<(int X, int Y, int Z)> Standard(Runtime.Dim3 grid, int perEdge, int interior, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(perEdge);
        ArgumentOutOfRangeException.ThrowIfNegative(interior);
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0)
            throw new ArgumentException($"grid ({grid.X},{grid.Y},{grid.Z}) has an empty dimension", nameof(grid));
        long[] size = [grid.X, grid.Y, grid.Z];
        var set = new HashSet<(int X, int Y, int Z)>();
        (int, int, int) Block(long[] c) => ((int)c[0], (int)c[1], (int)c[2]);

        // Corners: every combination of first/last along each dimension (1-block dimensions give one value).
        for (var mask = 0; mask < 8; mask++)
        {
            var c = new long[3];
            for (var d = 0; d < 3; d++) c[d] = (mask >> d & 1) == 0 ? 0 : size[d] - 1;
            set.Add(Block(c));
        }

        // Edges: along dimension d, the other two coordinates at a corner; perEdge points strictly inside.
        for (var d = 0; d < 3; d++)
        {
            if (size[d] <= 2) continue;
            for (var mask = 0; mask < 8; mask++)
            {
                if ((mask >> d & 1) != 0) continue;
                var c = new long[3];
                for (var o = 0; o < 3; o++) c[o] = o == d || (mask >> o & 1) == 0 ? 0 : size[o] - 1;
                for (var i = 1; i <= perEdge; i++)
                {
                    c[d] = 1 + (size[d] - 2) * i / (perEdge + 1);
                    if (c[d] > size[d] - 2) c[d] = size[d] - 2;
                    set.Add(Block(c));
                }
            }
        }

        // Interior: uniform over [1, n-2] where n > 2, else over [0, n-1].
        var rng = new Random(seed);
        for (var i = 0; i < interior; i++)
        {
            var c = new long[3];
            for (var d = 0; d < 3; d++)
                c[d] = size[d] > 2 ? 1 + rng.NextInt64(size[d] - 2) : rng.NextInt64(size[d]);
            set.Add(Block(c));
        }
        return set.OrderBy(b => b.Z).ThenBy(b => b.Y).ThenBy(b => b.X).ToList();
    }
}
