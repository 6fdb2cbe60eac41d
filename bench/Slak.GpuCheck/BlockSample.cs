// The standard block sample of a launch grid (issue 19, item 3): the 2^d corner blocks of the d-dimensional grid
// (d = dimensions of size > 1), k blocks evenly spaced along each edge of the grid's box, and r interior blocks drawn
// from a seeded generator. The draw depends only on (seed, grid), so a failing sample is replayed by passing the
// printed seed again (--seed). Pure arithmetic: the emulator only receives the list (see IBlockSampler).
using Slak.Cuda.Runtime;

namespace Slak.GpuCheck;

/// <summary>Computes block samples of launch grids.</summary>
internal static class BlockSample
{
    /// <summary>The standard sample of <paramref name="grid"/>: corners, <paramref name="edgeBlocks"/> per edge,
    /// <paramref name="interiorBlocks"/> seeded interior blocks; distinct, ordered by (z, y, x).</summary>
    public static IReadOnlyList<Dim3> Standard(Dim3 grid, int edgeBlocks, int interiorBlocks, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(edgeBlocks);
        ArgumentOutOfRangeException.ThrowIfNegative(interiorBlocks);
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0)
        {
            throw new ArgumentException($"grid ({grid.X},{grid.Y},{grid.Z}) has an empty dimension", nameof(grid));
        }

        uint[] size = [grid.X, grid.Y, grid.Z];
        var set = new HashSet<(uint X, uint Y, uint Z)>();
        // Corners: each dimension at 0 or its last index (dimensions of size 1 collapse, giving 2^d distinct).
        for (int m = 0; m < 8; m++)
        {
            set.Add(At(d => (m >> d & 1) == 0 ? 0 : size[d] - 1));
        }

        // Edges: one dimension free, the others at an extreme; k evenly spaced inner positions of the free one.
        for (int free = 0; free < 3; free++)
        {
            IReadOnlyList<uint> inner = Spaced(size[free], edgeBlocks);
            for (int m = 0; m < 8; m++)
            {
                foreach (uint p in inner)
                {
                    set.Add(At(d => d == free ? p : (m >> d & 1) == 0 ? 0 : size[d] - 1));
                }
            }
        }

        // Interior: strictly inside every dimension that has an inside (size >= 3), anywhere in the others.
        ulong state = seed ^ Mix((ulong)grid.X * 0x9E3779B97F4A7C15UL ^ ((ulong)grid.Y << 21) ^ ((ulong)grid.Z << 42));
        for (int i = 0; i < interiorBlocks; i++)
        {
            set.Add(At(d => size[d] >= 3 ? 1 + (uint)(Next(ref state) % (size[d] - 2)) : (uint)(Next(ref state) % size[d])));
        }

        return set.OrderBy(b => b.Z).ThenBy(b => b.Y).ThenBy(b => b.X).Select(b => new Dim3(b.X, b.Y, b.Z)).ToList();
    }

    /// <summary>Column sample: the standard sample of grid.x alone (a 1-D grid), each sampled x with every y and z
    /// (for kernels whose grid.y blocks write per-chunk partials of the same outputs).</summary>
    public static IReadOnlyList<Dim3> Columns(Dim3 grid, int edgeBlocks, int interiorBlocks, ulong seed)
    {
        IReadOnlyList<Dim3> xs = Standard(new Dim3(grid.X), edgeBlocks, interiorBlocks, seed);
        var result = new List<Dim3>(xs.Count * (int)Math.Min(grid.Y * (long)grid.Z, 1 << 20));
        for (uint z = 0; z < grid.Z; z++)
        {
            for (uint y = 0; y < grid.Y; y++)
            {
                result.AddRange(xs.Select(b => new Dim3(b.X, y, z)));
            }
        }

        return result;
    }

    /// <summary>Up to <paramref name="count"/> distinct positions strictly between 0 and size-1, evenly
    /// spaced.</summary>
    internal static IReadOnlyList<uint> Spaced(uint size, int count)
    {
        if (size <= 2 || count == 0)
        {
            return [];
        }

        var result = new SortedSet<uint>();
        for (int i = 1; i <= count; i++)
        {
            uint p = (uint)Math.Round((double)i * (size - 1) / (count + 1));
            if (p > 0 && p < size - 1)
            {
                result.Add(p);
            }
        }

        return result.ToList();
    }

    private static (uint X, uint Y, uint Z) At(Func<int, uint> coordinate) => (coordinate(0), coordinate(1), coordinate(2));

    // SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed generator; enough for choosing blocks.
    private static ulong Next(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        return Mix(state);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
