// The arithmetic of a prune/regrow round that the CPU and the CUDA backends must agree on bit for bit.
// Every choice is "the k smallest of a key", with keys made unique by appending the element index:
//   prune  : key = bit pattern of |w| (non-negative floats order like their unsigned bits) over live positions;
//   regrow : key = a counter-based hash of (round seed, index) over inactive positions, or 0x7FFFFFFF - bits of |g|
//            (largest |gradient| first) for gradient growth.
// A round seed is one draw from the masking generator, so runs stay deterministic and resumable, and a device can
// make the same keys in parallel without carrying generator state.
// SmallestK is the plain definition (sort); SelectionBound finds the same set in linear time by radix select, the
// algorithm the CUDA kernels (cuda/kernels/sparse.cu) run, and is what the CPU backend uses.
namespace Slak.Sparse;

/// <summary>Keys and selections shared by the host and device prune/regrow implementations.</summary>
internal static class SparseSelection
{
    /// <summary>Key of an ineligible element: above every |w| bit pattern (NaN included) and every hash key.</summary>
    public const uint Ineligible = uint.MaxValue;

    /// <summary>The ordering key of a weight magnitude: the bits of |w|.</summary>
    public static uint MagnitudeKey(float w) => BitConverter.SingleToUInt32Bits(w) & 0x7FFF_FFFFu;

    /// <summary>A 32-bit pseudo-random key for element <paramref name="index"/> of a round (SplitMix64 finaliser of
    /// the seed and the index; the top bit is cleared so that no key equals <see cref="Ineligible"/>).</summary>
    public static uint RandomKey(ulong roundSeed, long index)
    {
        ulong z = roundSeed + 0x9E37_79B9_7F4A_7C15UL * (ulong)(index + 1);
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBUL;
        z ^= z >> 31;
        return (uint)(z >> 33);
    }

    /// <summary>The ordering key of gradient growth: larger |g| gives a smaller key, so "k smallest (key, index)"
    /// takes the largest magnitudes first and breaks ties by the smaller index. Never
    /// <see cref="Ineligible"/>.</summary>
    public static uint GradientKey(float g) => 0x7FFF_FFFFu - MagnitudeKey(g);

    /// <summary>The unique 64-bit ordering value of element <paramref name="index"/> with key
    /// <paramref name="key"/>.</summary>
    public static ulong Composite(uint key, long index) => ((ulong)key << 32) | (uint)index;

    /// <summary>A uniform number in [0, 1) from a <see cref="RandomKey"/> (31 random bits).</summary>
    public static double Uniform(uint key) => key * (1.0 / (1UL << 31));

    /// <summary>Indices of the <paramref name="k"/> smallest (key, index) pairs among eligible keys
    /// (keys equal to <see cref="Ineligible"/> are never chosen; fewer than k eligible: all of them).</summary>
    public static int[] SmallestK(ReadOnlySpan<uint> keys, int k)
    {
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be >= 0");
        var combined = new List<ulong>(keys.Length);
        for (int i = 0; i < keys.Length; i++)
            if (keys[i] != Ineligible) combined.Add(((ulong)keys[i] << 32) | (uint)i);
        if (k >= combined.Count) return combined.Select(c => (int)(uint)c).ToArray();
        combined.Sort();
        var chosen = new int[k];
        for (int j = 0; j < k; j++) chosen[j] = (int)(uint)combined[j];
        return chosen;
    }

    /// <summary>The exclusive bound <c>b</c> such that the eligible elements with <see cref="Composite"/> below b are
    /// exactly the <paramref name="k"/> smallest (all eligible ones when k is at least their count; b = 0 when k = 0).
    /// Radix select over the composite, 8 bits per pass, as the device does; on the host, the candidates left after
    /// the first pass are gathered once, so the later passes only touch the bin being refined.</summary>
    public static ulong SelectionBound(ReadOnlySpan<uint> keys, long k)
    {
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be >= 0");
        const ulong allEligible = 0xFFFF_FFFF_0000_0000UL;
        Span<long> hist = stackalloc long[256];
        for (int i = 0; i < keys.Length; i++)
            if (keys[i] != Ineligible) hist[(int)(keys[i] >> 24)]++;
        long total = 0;
        foreach (long h in hist) total += h;
        if (k == 0) return 0;
        if (k >= total) return allEligible;
        long remaining = k;
        int bin = PickBin(hist, ref remaining);
        ulong prefix = (ulong)bin << 56;
        if (hist[bin] == remaining) return (prefix | 0x00FF_FFFF_FFFF_FFFFUL) + 1;

        var candidates = new ulong[hist[bin]];
        int count = 0;
        for (int i = 0; i < keys.Length; i++)
            if (keys[i] != Ineligible && keys[i] >> 24 == (uint)bin) candidates[count++] = Composite(keys[i], i);
        for (int pass = 1; pass < 8; pass++)
        {
            int shift = 56 - 8 * pass;
            hist.Clear();
            for (int j = 0; j < count; j++) hist[(int)((candidates[j] >> shift) & 0xFF)]++;
            bin = PickBin(hist, ref remaining);
            prefix |= (ulong)bin << shift;
            if (hist[bin] == remaining) return (prefix | (shift == 0 ? 0 : (1UL << shift) - 1)) + 1;
            int kept = 0;
            for (int j = 0; j < count; j++)
                if ((int)((candidates[j] >> shift) & 0xFF) == bin) candidates[kept++] = candidates[j];
            count = kept;
        }
        throw new InvalidOperationException("radix select did not settle after 8 passes (composites are unique, so this is a bug)");
    }

    /// <summary>The bin holding the remaining-th smallest; subtracts the counts of the bins below it.</summary>
    private static int PickBin(ReadOnlySpan<long> hist, ref long remaining)
    {
        int bin = 0;
        while (bin < 255 && hist[bin] < remaining) remaining -= hist[bin++];
        return bin;
    }
}
