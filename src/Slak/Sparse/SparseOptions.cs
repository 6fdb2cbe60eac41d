// Options of dynamic sparse training (slak-facts §2.1), with the reference defaults where they fit small runs.
namespace Slak.Sparse;

/// <summary>How initial layer densities are chosen (slak-facts §2.3).</summary>
public enum SparseInit
{
    /// <summary>SNIP scores on one batch decide each layer's density; masks are random (the reference
    /// default).</summary>
    Snip,
    /// <summary>Erdős–Rényi-kernel densities.</summary>
    Erk,
    /// <summary>The global density in every layer.</summary>
    Uniform,
}

/// <summary>How pruned weights are regrown.</summary>
public enum SparseGrowth
{
    /// <summary>Uniformly at random among inactive positions, as many as pruned in expectation.</summary>
    Random,
    /// <summary>The inactive positions with the largest |gradient|, exactly as many as pruned.</summary>
    Gradient,
}

/// <summary>Which sparse-training semantics to follow (design.md "Sparse semantics").</summary>
public enum SparseSemantics
{
    /// <summary>Masked gradients and AdamW moments: pruned weights and their state stay exactly zero.</summary>
    Ours,
    /// <summary>The reference code: dense gradients, unmasked moments, weights re-zeroed after each step.</summary>
    Reference,
}

/// <summary>Sparse-training options.</summary>
public sealed record SparseOptions
{
    /// <summary>Global density of the masked weights (1 - sparsity).</summary>
    public double Density { get; init; } = 0.6;

    /// <summary>Initial layer-wise densities.</summary>
    public SparseInit Init { get; init; } = SparseInit.Snip;

    /// <summary>Initial prune (death) rate p0, decayed by cosine to 0.005.</summary>
    public double PruneRate { get; init; } = 0.3;

    /// <summary>Optimizer steps between prune/regrow rounds (0: masks never change).</summary>
    public int UpdateFrequency { get; init; } = 100;

    /// <summary>Regrowth rule.</summary>
    public SparseGrowth Growth { get; init; } = SparseGrowth.Random;

    /// <summary>Semantics (ours or the reference's).</summary>
    public SparseSemantics Semantics { get; init; } = SparseSemantics.Ours;

    /// <summary>Layers whose realised initial density is at least this stay dense and unmasked.</summary>
    public double DenseThreshold { get; init; } = 0.99;

    /// <summary>Checks the values; throws naming the bad one.</summary>
    public void Validate()
    {
        if (!(Density is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(Density), Density, "density must be in (0, 1]");
        if (!(PruneRate is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(PruneRate), PruneRate, "prune rate must be in [0, 1]");
        if (UpdateFrequency < 0) throw new ArgumentOutOfRangeException(nameof(UpdateFrequency), UpdateFrequency, "update frequency must be >= 0");
        if (!(DenseThreshold is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(DenseThreshold), DenseThreshold, "dense threshold must be in (0, 1]");
    }
}
