// The sparse-training member of the backend contract: one prune/regrow round of a masked parameter, done where the
// parameter lives (host loops on the CPU backend, radix-select kernels on CUDA and cuda-emu), so a round on a GPU
// moves no weight or mask through the host. Both implementations follow the arithmetic of Slak.Sparse.SparseSelection
// and agree bit for bit.
namespace Slak.Backends;

internal partial interface IBackend
{
    /// <summary>One prune/regrow round on a masked weight. Let live = the number of nonzero elements of
    /// <paramref name="mask"/> and removed = min(<paramref name="numRemove"/>, live). Prunes the removed live
    /// positions with the smallest (|w| bits, index) and writes <paramref name="keep"/> = 1 where a position was live
    /// and is not pruned, else 0. Then regrows among the positions with keep = 0 and overwrites
    /// <paramref name="mask"/> with keep plus the regrown positions (0/1 values):
    /// <see cref="SparseRegrowth.RandomExact"/> grows the removed smallest random keys of
    /// <paramref name="roundSeed"/>; <see cref="SparseRegrowth.RandomBernoulli"/> grows each inactive position whose
    /// uniform draw is below removed / inactive; <see cref="SparseRegrowth.Gradient"/> grows the removed positions
    /// with the largest |<paramref name="grad"/>| (ties: smaller index first). Weights are not touched.
    /// Returns the new live count (the one scalar that crosses to the host).</summary>
    long SparsePruneRegrow(Tensor weight, Tensor mask, Tensor? grad, Tensor keep, long numRemove,
                           SparseRegrowth growth, ulong roundSeed);
}
