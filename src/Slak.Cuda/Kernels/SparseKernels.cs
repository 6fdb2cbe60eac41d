// Typed launchers for cuda/kernels/sparse.cu: one prune/regrow round of dynamic sparse training on the device.
// The whole round is a sequence of launches on the device's stream (keys, 8 radix passes of histogram + scan per
// selection, marks); the only host transfer is the final live count (8 bytes), which the caller needs for its
// density bookkeeping. Workspace comes from the caching allocator and goes back before returning.
using System.Diagnostics;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the sparse prune/regrow kernels.</summary>
internal static class SparseKernels
{
    private const int Passes = 8;

    /// <summary>Bytes of one <c>SparseSelectState</c> (slak_params.h): 8 words, then 8 histograms of 256 counts
    /// (checked against the header's sizeof by PlanStructLayoutTests).</summary>
    public const int StateBytes = 8 * sizeof(ulong) + Passes * 256 * sizeof(uint);

    /// <summary>The plan of the element kernels (grid-stride, at most kSparseMaxBlocks blocks of
    /// kSparseBlock).</summary>
    internal static LaunchPlan ElementPlan(long n, DeviceLimits limits) =>
        LaunchPlans.GridStride(n, limits, (int)LaunchPlans.Constant("kSparseBlock"),
                               (int)LaunchPlans.Constant("kSparseMaxBlocks"));

    /// <summary>One prune/regrow round over <paramref name="n"/> elements. Prunes the min(numRemove, live) live
    /// positions of <paramref name="mask"/> with the smallest (|w| bits, index), writes <paramref name="keep"/>
    /// (1 = live before and not pruned), then regrows among the positions with keep = 0 and rewrites
    /// <paramref name="mask"/>: with <paramref name="bernoulli"/>, each with probability removed / inactive; otherwise
    /// exactly as many as were pruned, by smallest random key (<paramref name="grad"/> null) or by largest
    /// |gradient|. Returns the new live count.</summary>
    public static long PruneRegrow(IGpuDevice dev, DevicePtr weight, DevicePtr mask, DevicePtr grad, DevicePtr keep,
                                   long n, long numRemove, bool bernoulli, ulong roundSeed)
    {
        // Masking (the public edge) checked the parameter sizes; the backend builds the rest.
        Debug.Assert(n >= 0 && n <= uint.MaxValue, $"element count must be in [0, 2^32) (indices are 32-bit keys), got {n}");
        Debug.Assert(numRemove >= 0, $"numRemove must be >= 0, got {numRemove}");
        Debug.Assert(!bernoulli || grad.IsNull, "Bernoulli regrowth is random; it takes no gradient");
        if (n == 0) return 0;

        // Layout: prune state, grow state, count (8 bytes, padded to 16), keys (n uint32).
        long keysOffset = 2L * StateBytes + 16;
        var work = dev.Allocate(keysOffset + n * sizeof(uint));
        try
        {
            DevicePtr prune = work, growState = work.Offset(StateBytes), count = work.Offset(2L * StateBytes);
            DevicePtr keys = work.Offset(keysOffset);
            dev.Memset32(count, 0, 2);
            var limits = DeviceLimits.For(dev);
            var grid = ElementPlan(n, limits);

            var pk = new KernelArgs(); pk.Add(keys); pk.Add(weight); pk.Add(mask); pk.Add(n);
            pk.Launch(dev, "sparse_prune_keys_kernel", grid);
            Select(dev, prune, keys, numRemove, DevicePtr.Null, n, grid);
            var pm = new KernelArgs(); pm.Add(keep); pm.Add(keys); pm.Add(prune); pm.Add(n);
            pm.Launch(dev, "sparse_prune_mark_kernel", grid);

            if (bernoulli)
            {
                var gb = new KernelArgs(); gb.Add(mask); gb.Add(keep); gb.Add(prune); gb.Add(roundSeed); gb.Add(n);
                gb.Launch(dev, "sparse_grow_bernoulli_kernel", grid);
            }
            else
            {
                var gk = new KernelArgs(); gk.Add(keys); gk.Add(keep); gk.Add(grad); gk.Add(roundSeed); gk.Add(n);
                gk.Launch(dev, "sparse_grow_keys_kernel", grid);
                Select(dev, growState, keys, 0, prune, n, grid);
                var gm = new KernelArgs(); gm.Add(mask); gm.Add(keep); gm.Add(keys); gm.Add(growState); gm.Add(n);
                gm.Launch(dev, "sparse_grow_mark_kernel", grid);
            }

            var c = new KernelArgs(); c.Add(count); c.Add(mask); c.Add(n);
            c.Launch(dev, "sparse_count_kernel", grid);
            Span<byte> live = stackalloc byte[sizeof(ulong)];
            dev.CopyToHost(count, live);
            return checked((long)BitConverter.ToUInt64(live));
        }
        finally { dev.Free(work); }
    }

    /// <summary>Radix select of the k smallest (key, index) composites of <paramref name="keys"/> into the state at
    /// <paramref name="state"/> (k from <paramref name="kFrom"/>'s effective k when that is not null). Device only:
    /// each scan writes the next pass's prefix, so nothing waits for the host. <paramref name="grid"/> is the
    /// element plan of the n keys (<see cref="ElementPlan"/>).</summary>
    internal static void Select(IGpuDevice dev, DevicePtr state, DevicePtr keys, long k, DevicePtr kFrom, long n,
                                in LaunchPlan grid)
    {
        var limits = DeviceLimits.For(dev);
        var one = LaunchPlans.Rows(1, grid.BlockX == 0 ? LaunchPlans.Block : (int)grid.BlockX, limits);
        var scan = LaunchPlans.Rows(1, (int)LaunchPlans.Constant("kSparseScanThreads"), limits);
        var init = new KernelArgs(); init.Add(state); init.Add(k); init.Add(kFrom);
        init.Launch(dev, "sparse_select_init_kernel", one);
        for (int pass = 0; pass < Passes; pass++)
        {
            var h = new KernelArgs(); h.Add(state); h.Add(keys); h.Add(pass); h.Add(n);
            h.Launch(dev, "sparse_select_histogram_kernel", grid);
            var s = new KernelArgs(); s.Add(state); s.Add(pass);
            s.Launch(dev, "sparse_select_scan_kernel", scan);
        }
    }

    /// <summary>Radix select over n keys with the element plan of n (test support; see the overload).</summary>
    public static void Select(IGpuDevice dev, DevicePtr state, DevicePtr keys, long k, DevicePtr kFrom, long n) =>
        Select(dev, state, keys, k, kFrom, n, ElementPlan(n, DeviceLimits.For(dev)));

    /// <summary>Reads the exclusive bound of a finished selection (test support: composites (key &lt;&lt; 32 | index)
    /// below it are the k smallest). Waits for the device.</summary>
    public static ulong ReadBound(IGpuDevice dev, DevicePtr state)
    {
        Span<byte> b = stackalloc byte[sizeof(ulong)];
        dev.CopyToHost(state.Offset(3 * sizeof(ulong)), b);
        return BitConverter.ToUInt64(b);
    }
}
