// BatchNorm in training mode needs more than one value per channel; SLaK's large-kernel branches normalise 1x1 maps
// in the last stage, so a training micro-batch of one image fails deep inside the forward pass. The trainer checks
// the rule up front (the loader keeps only full batches when there is at least one, else the one partial batch) and
// names the options to change.
using Slak.Data;
using Slak.NN;

namespace Slak.Train;

/// <summary>Refuses training micro-batches of one image for models with BatchNorm.</summary>
internal static class BatchNormGuard
{
    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="module"/> has a BatchNorm layer and a
    /// training micro-batch would hold a single image.</summary>
    public static void CheckMicroBatches(Module module, int trainCount, int batchSize)
    {
        int full = trainCount / batchSize;
        int smallest = full > 0 ? batchSize : trainCount; // BatchLoader with dropLast: full batches, else the partial one
        if (smallest != 1 || !module.NamedModules().Any(m => m.Module is BatchNorm2d)) return;
        throw new ArgumentException($"training micro-batches would hold 1 image ({trainCount} training images, batch size {batchSize}); "
            + "the model's BatchNorm layers need at least 2 per batch in training: use --batch-size >= 2 and --limit >= 2");
    }
}
