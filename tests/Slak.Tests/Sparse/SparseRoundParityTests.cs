// IBackend.SparsePruneRegrow on every test device against a plain host reference written here from the definitions
// (sort everything, take the k smallest; gradient growth by a comparison sort on |g| then index, as the host code
// did before the round moved to the backends): masks, keep masks and live counts must be bit-identical. Covers
// random weights, heavy ties (few quantised values, zeros of both signs), k = 0, k = all live, k > live, fully
// dense and fully empty masks, sizes from 1 to ~200k, and all three regrowth rules. The radix select itself is
// checked on adversarial keys, on the host (SparseSelection.SelectionBound) and on CUDA devices (the kernels).
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Kernels;
using Slak.Sparse;
using Slak.Tests.Support;

namespace Slak.Tests.Sparse;

public sealed class SparseRoundParityTests(string deviceName) : DeviceTest(deviceName)
{
    private static readonly SparseRegrowth[] AllGrowth = [SparseRegrowth.RandomExact, SparseRegrowth.RandomBernoulli, SparseRegrowth.Gradient];

    // ---- the reference ---------------------------------------------------------------------------------------

    private static (byte[] Mask, byte[] Keep, long Live) Reference(float[] w, byte[] mask, float[]? g, long numRemove,
                                                                   SparseRegrowth growth, ulong seed)
    {
        int n = w.Length;
        long live = mask.Count(b => b != 0);
        int removed = (int)Math.Min(numRemove, live);
        var keys = new uint[n];
        for (int i = 0; i < n; i++) keys[i] = mask[i] != 0 ? SparseSelection.MagnitudeKey(w[i]) : SparseSelection.Ineligible;
        var keep = (byte[])mask.Clone();
        foreach (int i in SparseSelection.SmallestK(keys, removed)) keep[i] = 0;
        var grown = (byte[])keep.Clone();
        switch (growth)
        {
            case SparseRegrowth.RandomExact:
                for (int i = 0; i < n; i++) keys[i] = grown[i] == 0 ? SparseSelection.RandomKey(seed, i) : SparseSelection.Ineligible;
                foreach (int i in SparseSelection.SmallestK(keys, removed)) grown[i] = 1;
                break;
            case SparseRegrowth.RandomBernoulli:
                long zeros = grown.LongCount(b => b == 0);
                if (zeros == 0) break;
                double q = (double)removed / zeros;
                for (int i = 0; i < n; i++)
                    if (grown[i] == 0 && SparseSelection.Uniform(SparseSelection.RandomKey(seed, i)) < q) grown[i] = 1;
                break;
            default:
                var inactive = Enumerable.Range(0, n).Where(i => grown[i] == 0).ToList();
                inactive.Sort((a, b) =>
                {
                    int c = MathF.Abs(g![b]).CompareTo(MathF.Abs(g[a]));
                    return c != 0 ? c : a.CompareTo(b);
                });
                foreach (int i in inactive.Take(removed)) grown[i] = 1;
                break;
        }
        return (grown, keep, grown.LongCount(b => b != 0));
    }

    // ---- one round on the device, compared ---------------------------------------------------------------------

    private void Check(float[] w, byte[] mask, float[] g, long numRemove, SparseRegrowth growth, string what)
    {
        ulong seed = ((ulong)Rng.Int(0, int.MaxValue - 1) << 33) ^ (ulong)Rng.Int(0, int.MaxValue - 1);
        int n = w.Length;
        int[] shape = [n];
        var expected = Reference(w, mask, growth == SparseRegrowth.Gradient ? g : null, numRemove, growth, seed);

        var wt = T(w, shape);
        var mt = T(mask.Select(b => (float)b).ToArray(), shape);
        var gt = growth == SparseRegrowth.Gradient ? T(g, shape) : null;
        var keep = Poisoned(shape);
        long live = wt.Backend.SparsePruneRegrow(wt, mt, gt, keep, numRemove, growth, seed);

        string ctx = Ctx($"{what}: n={n}, live={mask.Count(b => b != 0)}, numRemove={numRemove}, {growth}, roundSeed={seed}");
        Assert.That(live, Is.EqualTo(expected.Live), $"live count, {ctx}");
        AssertBits(mt.ToArray(), expected.Mask, "mask", ctx);
        AssertBits(keep.ToArray(), expected.Keep, "keep", ctx);
        Assert.That(wt.ToArray(), Is.EqualTo(w), $"the round must not touch the weights, {ctx}");
    }

    private static void AssertBits(float[] actual, byte[] expected, string name, string ctx)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), $"{name} length, {ctx}");
        int bad = 0, first = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            if (BitConverter.SingleToUInt32Bits(actual[i]) == BitConverter.SingleToUInt32Bits(expected[i])) continue;
            bad++;
            if (first < 0) first = i;
        }
        Assert.That(bad, Is.Zero, $"{name}: {bad} of {actual.Length} differ, first at {first}: " +
                                  $"{(first >= 0 ? actual[first] : 0)} vs {(first >= 0 ? expected[first] : 0)}; {ctx}");
    }

    private byte[] RandomMask(int n, double density) => Rng.MaskArray(n, density).Select(v => v != 0 ? (byte)1 : (byte)0).ToArray();

    private float[] Quantised(int n) =>
        Enumerable.Range(0, n).Select(_ => Rng.Pick(0f, -0f, 0.5f, -0.5f, 1f, -1f, 0.25f)).ToArray();

    // ---- tests -----------------------------------------------------------------------------------------------

    [Test]
    [KernelParity("sparse_grow_bernoulli_kernel")] // every regrowth rule runs here; the large layer picks one at random
    public void RandomWeightsMatchTheHostReference()
    {
        foreach (int n in new[] { 1, 3, 255, 257, 4099, 33_001 })
        {
            foreach (var growth in AllGrowth)
            {
                var mask = RandomMask(n, 0.5);
                long live = mask.Count(b => b != 0);
                Check(Rng.NormalArray(n), mask, Rng.NormalArray(n), (long)Math.Ceiling(0.3 * live), growth, "random weights");
            }
        }
    }

    [Test]
    [KernelParity("sparse_count_kernel", "sparse_prune_keys_kernel", "sparse_prune_mark_kernel", "sparse_select_histogram_kernel", "sparse_select_init_kernel", "sparse_select_scan_kernel")]
    public void ALargeLayerMatchesTheHostReference()
    {
        const int n = 200_003;
        var growth = Rng.Pick(AllGrowth);
        var mask = RandomMask(n, 0.6);
        Check(Rng.NormalArray(n), mask, Rng.NormalArray(n), (long)Math.Ceiling(0.3 * mask.Count(b => b != 0)), growth, "large layer");
    }

    [Test]
    public void TiesAndZerosMatchTheHostReference()
    {
        foreach (int n in new[] { 2, 64, 1000, 20_000 })
        {
            foreach (var growth in AllGrowth)
            {
                var mask = RandomMask(n, 0.7);
                long live = mask.Count(b => b != 0);
                Check(Quantised(n), mask, Quantised(n), (long)Math.Ceiling(0.45 * live), growth, "quantised weights and gradients");
                Check(new float[n], mask, new float[n], live / 3 + 1, growth, "all zero");
            }
        }
    }

    [Test]
    [KernelParity("sparse_grow_keys_kernel", "sparse_grow_mark_kernel")]
    public void EdgeCountsMatchTheHostReference()
    {
        foreach (int n in new[] { 1, 5, 300, 3000 })
        {
            foreach (var growth in AllGrowth)
            {
                var w = Rng.NormalArray(n);
                var g = Rng.NormalArray(n);
                var half = RandomMask(n, 0.5);
                long live = half.Count(b => b != 0);
                var dense = Enumerable.Repeat((byte)1, n).ToArray();
                var empty = new byte[n];
                Check(w, half, g, 0, growth, "k = 0");
                Check(w, half, g, live, growth, "k = all live");
                Check(w, half, g, live + 7, growth, "k > live");
                Check(w, dense, g, (n + 2) / 3, growth, "fully dense mask");
                Check(w, dense, g, n, growth, "fully dense mask, k = all");
                Check(w, empty, g, 3, growth, "fully empty mask");
            }
        }
    }

    /// <summary>Adversarial key sets: all equal, all distinct, differing only in the top or the bottom byte, mostly
    /// ineligible, all ineligible.</summary>
    private IEnumerable<(string Name, uint[] Keys)> AdversarialKeys(int n)
    {
        yield return ("all equal", Enumerable.Repeat(0x1234_5678u, n).ToArray());
        yield return ("all zero", new uint[n]);
        yield return ("all distinct, descending", Enumerable.Range(0, n).Select(i => (uint)(n - i) * 7919u).ToArray());
        yield return ("top byte only", Enumerable.Range(0, n).Select(_ => (uint)Rng.Int(0, 254) << 24).ToArray());
        yield return ("bottom byte only", Enumerable.Range(0, n).Select(_ => 0xABCD_EF00u | (uint)Rng.Int(0, 255)).ToArray());
        yield return ("max eligible", Enumerable.Repeat(0xFFFF_FFFEu, n).ToArray());
        yield return ("mostly ineligible", Enumerable.Range(0, n).Select(_ => Rng.Bool(0.9) ? SparseSelection.Ineligible : (uint)Rng.Int(0, 3)).ToArray());
        yield return ("all ineligible", Enumerable.Repeat(SparseSelection.Ineligible, n).ToArray());
    }

    [Test]
    public void RadixSelectFindsTheKSmallestOnAdversarialKeys()
    {
        DeviceSelect? gpu = BackendRegistry.For(Dev) is CudaBackend cb ? new DeviceSelect(cb) : null;
        foreach (int n in new[] { 1, 2, 257, 5000 })
        {
            foreach (var (name, keys) in AdversarialKeys(n))
            {
                int eligible = keys.Count(k => k != SparseSelection.Ineligible);
                foreach (long k in new long[] { 0, 1, n / 2, Math.Max(0, eligible - 1), eligible, n, n + 3 })
                {
                    var expected = new HashSet<int>(SparseSelection.SmallestK(keys, (int)k));
                    ulong hostBound = SparseSelection.SelectionBound(keys, k);
                    string ctx = Ctx($"{name}, n={n}, k={k}");
                    Assert.That(Selected(keys, hostBound), Is.EquivalentTo(expected), $"host radix select, {ctx}");
                    if (gpu is null) continue;
                    ulong deviceBound = gpu.Bound(keys, k);
                    Assert.That(Selected(keys, deviceBound), Is.EquivalentTo(expected), $"device radix select, {ctx}");
                }
            }
        }
    }

    private static IEnumerable<int> Selected(uint[] keys, ulong bound) =>
        Enumerable.Range(0, keys.Length).Where(i => SparseSelection.Composite(keys[i], i) < bound);

    /// <summary>Runs only the device selection kernels on uploaded keys.</summary>
    private sealed class DeviceSelect(CudaBackend backend)
    {
        public ulong Bound(uint[] keys, long k)
        {
            var dev = backend.Gpu;
            var state = dev.Allocate(SparseKernels.StateBytes);
            var dk = dev.Allocate(Math.Max(1, keys.Length) * sizeof(uint));
            try
            {
                dev.Memset32(state, 0xFFFF_FFFFu, SparseKernels.StateBytes / sizeof(uint)); // poison: init must reset it
                dev.CopyToDevice(System.Runtime.InteropServices.MemoryMarshal.AsBytes(keys.AsSpan()), dk);
                SparseKernels.Select(dev, state, dk, k, Slak.Cuda.Runtime.DevicePtr.Null, keys.Length);
                return SparseKernels.ReadBound(dev, state);
            }
            finally
            {
                dev.Free(dk);
                dev.Free(state);
            }
        }
    }
}
