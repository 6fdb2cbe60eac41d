// CPU backend: one prune/regrow round on the host, with the keys of SparseSelection and its radix select (the same
// algorithm the CUDA kernels run), so masks agree bit for bit with cuda and cuda-emu. Linear in the element count:
// two selections of at most 8 passes each.
using Slak.Sparse;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <inheritdoc />
    public long SparsePruneRegrow(Tensor weight, Tensor mask, Tensor? grad, Tensor keep, long numRemove,
                                  SparseRegrowth growth, ulong roundSeed)
    {
        SparseRoundChecks.Assert(Device, weight, mask, grad, keep, numRemove, growth);
        ReadOnlySpan<float> w = S(weight);
        Span<float> m = S(mask), kp = S(keep);
        int n = w.Length;
        var keys = new uint[n];
        long live = 0;
        for (int i = 0; i < n; i++)
        {
            bool on = m[i] != 0;
            keys[i] = on ? SparseSelection.MagnitudeKey(w[i]) : SparseSelection.Ineligible;
            if (on) live++;
        }
        long removed = Math.Min(numRemove, live);
        ulong bound = SparseSelection.SelectionBound(keys, removed);
        for (int i = 0; i < n; i++)
            kp[i] = keys[i] != SparseSelection.Ineligible && SparseSelection.Composite(keys[i], i) >= bound ? 1f : 0f;

        if (growth == SparseRegrowth.RandomBernoulli)
        {
            long inactive = n - live + removed;
            double q = inactive == 0 ? 0 : (double)removed / inactive;
            for (int i = 0; i < n; i++)
                m[i] = kp[i] != 0 || SparseSelection.Uniform(SparseSelection.RandomKey(roundSeed, i)) < q ? 1f : 0f;
        }
        else
        {
            ReadOnlySpan<float> g = growth == SparseRegrowth.Gradient ? S(grad!) : default;
            for (int i = 0; i < n; i++)
                keys[i] = kp[i] != 0 ? SparseSelection.Ineligible
                    : growth == SparseRegrowth.Gradient ? SparseSelection.GradientKey(g[i])
                    : SparseSelection.RandomKey(roundSeed, i);
            bound = SparseSelection.SelectionBound(keys, removed);
            for (int i = 0; i < n; i++)
                m[i] = kp[i] != 0 || SparseSelection.Composite(keys[i], i) < bound ? 1f : 0f;
        }
        long after = 0;
        foreach (float v in m) if (v != 0) after++;
        return after;
    }
}
