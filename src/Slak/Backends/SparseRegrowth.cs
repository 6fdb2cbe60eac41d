// How a prune/regrow round (IBackend.SparsePruneRegrow) picks the positions to regrow.
namespace Slak.Backends;

/// <summary>Regrowth rule of one prune/regrow round.</summary>
internal enum SparseRegrowth
{
    /// <summary>Exactly as many as pruned: the inactive positions with the smallest random keys (our
    /// semantics).</summary>
    RandomExact,
    /// <summary>Each inactive position with probability removed / inactive (the reference code's semantics).</summary>
    RandomBernoulli,
    /// <summary>Exactly as many as pruned: the inactive positions with the largest |gradient|.</summary>
    Gradient,
}
