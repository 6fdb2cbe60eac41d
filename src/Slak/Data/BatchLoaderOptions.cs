// Settings of a BatchLoader.
namespace Slak.Data;

/// <summary>Batch size, order, augmentation, mixing and prefetch depth.</summary>
public sealed record BatchLoaderOptions
{
    /// <summary>Images per batch.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Shuffle each epoch (training).</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Drop the last partial batch (training, as the reference).</summary>
    public bool DropLast { get; init; } = true;

    /// <summary>Seed of the order and of every batch's augmentation.</summary>
    public ulong Seed { get; init; }

    /// <summary>Augmentation and normalisation.</summary>
    public AugmentOptions Augment { get; init; } = new();

    /// <summary>Mixup/CutMix (null: off).</summary>
    public MixupOptions? Mixup { get; init; }

    /// <summary>Label smoothing of the soft targets.</summary>
    public double Smoothing { get; init; }

    /// <summary>Batches in flight at most (being prepared on worker threads, or prepared and waiting); 0: prepare
    /// inline on the consumer's thread.</summary>
    public int Prefetch { get; init; } = 3;

    /// <summary>Worker threads preparing batches (at most <see cref="Prefetch"/> are used). The batches do not
    /// depend on it.</summary>
    public int Workers { get; init; } = 1;

    /// <summary>Every image draws its augmentation from its own stream keyed by (seed, epoch, image index), whatever
    /// batch or rank it lands in (image sources that augment while decoding always do); false: in-memory images draw
    /// in turn from their batch's stream.</summary>
    public bool SampleStreams { get; init; }

    /// <summary>Data parallel: the ranks that share each batch (<see cref="BatchSize"/> is the global batch; it must
    /// be a multiple of this). 1: one process.</summary>
    public int ShardCount { get; init; } = 1;

    /// <summary>Data parallel: which consecutive part of each global batch this rank takes, 0 to
    /// <see cref="ShardCount"/> - 1.</summary>
    public int ShardIndex { get; init; }

    /// <summary>Host memory the images are assembled in (page-locked buffers for a CUDA GPU, see
    /// <see cref="BatchHostMemory.PageLocked"/>); null: ordinary arrays. The consumer disposes each batch to give its
    /// buffer back; batches that find the pool empty use ordinary arrays.</summary>
    public BatchHostMemory? HostMemory { get; init; }

    /// <summary>Throws naming a bad value.</summary>
    public void Validate(int channels)
    {
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "batch size must be >= 1");
        if (ShardCount < 1 || BatchSize % ShardCount != 0)
            throw new ArgumentOutOfRangeException(nameof(ShardCount), ShardCount, $"the global batch {BatchSize} must be a positive multiple of the shard count");
        if ((uint)ShardIndex >= (uint)ShardCount)
            throw new ArgumentOutOfRangeException(nameof(ShardIndex), ShardIndex, $"shard index must be in [0, {ShardCount})");
        if (Prefetch < 0) throw new ArgumentOutOfRangeException(nameof(Prefetch), Prefetch, "prefetch must be >= 0");
        if (Workers < 1) throw new ArgumentOutOfRangeException(nameof(Workers), Workers, "workers must be >= 1");
        if (!(Smoothing is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(Smoothing), Smoothing, "smoothing must be in [0, 1)");
        Augment.Validate(channels);
        Mixup?.Validate();
    }

    /// <summary>Evaluation settings: in order, no augmentation, no mixing, no smoothing, keep the last batch.</summary>
    public BatchLoaderOptions ForEvaluation() =>
        this with { Shuffle = false, DropLast = false, Augment = Augment.ForEvaluation(), Mixup = null, Smoothing = 0 };
}
