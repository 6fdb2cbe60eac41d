// Evaluation: eval mode, no graph, batches in order; top-1, top-5 and mean cross-entropy over the whole set.
using Slak.Autograd;
using Slak.Data;

namespace Slak.Train;

/// <summary>Scores of a model on a data set.</summary>
/// <param name="Top1">Top-1 accuracy, percent.</param>
/// <param name="Top5">Top-5 accuracy, percent.</param>
/// <param name="Loss">Mean cross-entropy (no smoothing).</param>
/// <param name="Count">Images evaluated.</param>
/// <param name="Failures">Images left out because their file could not be read or decoded (each names its file).</param>
public sealed record EvalResult(double Top1, double Top5, double Loss, int Count, IReadOnlyList<IO.ImageFileException>? Failures = null)
{
    /// <summary>Number of images left out.</summary>
    public int Skipped => Failures?.Count ?? 0;
}

/// <summary>Evaluates a classifier.</summary>
public static class Evaluator
{
    /// <summary>Runs <paramref name="model"/> over <paramref name="data"/> (normalised as
    /// <paramref name="augment"/> says, without random augmentation) and restores the module's mode. Images whose
    /// file cannot be decoded are left out and listed in <see cref="EvalResult.Failures"/>.</summary>
    /// <exception cref="InvalidDataException">No image of the set could be read.</exception>
    public static EvalResult Evaluate(TrainableModel model, IImageSource data, AugmentOptions augment, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(augment);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be >= 1");
        bool wasTraining = model.Module.Training;
        model.Module.Eval();
        var device = model.Device;
        const int prefetch = 2;
        // Batches are assembled in a pool of the batches in flight + the one in use (page-locked memory on a CUDA GPU).
        using var hostMemory = BatchHostMemory.ForDevice(device, prefetch + 1, (long)batchSize * data.ImageSize);
        var loader = new BatchLoader(data, new BatchLoaderOptions
        {
            BatchSize = batchSize, Shuffle = false, DropLast = false, Augment = augment.ForEvaluation(), Prefetch = prefetch, Workers = 2,
            HostMemory = hostMemory,
        }, 0);
        long top1 = 0, top5 = 0;
        int count = 0;
        double lossSum = 0;
        try
        {
            using var noGrad = GradMode.NoGrad();
            foreach (var batch in loader)
            {
                if (batch.Count == 0) continue;
                count += batch.Count;
                using var scope = TensorScope.Begin();
                var x = Tensor.FromArray(batch.ImageSpan, batch.Shape, device);
                batch.Dispose(); // uploaded: a pooled buffer goes back to the loader
                var logits = model.Forward(x);
                int n = batch.Count, k = logits.Size(1);
                var targets = Tensor.FromArray(Augment.SmoothedOneHot(batch.Labels, k, 0), [n, k], device);
                lossSum += F.SoftTargetCrossEntropy(logits, targets).Item() * n;
                var host = logits.ToArray();
                for (int i = 0; i < n; i++)
                {
                    var row = host.AsSpan(i * k, k);
                    float own = row[batch.Labels[i]];
                    int rank = 0;
                    for (int j = 0; j < k; j++)
                        if (row[j] > own || (row[j] == own && j < batch.Labels[i])) rank++;
                    if (rank == 0) top1++;
                    if (rank < 5) top5++;
                }
            }
        }
        finally
        {
            model.Module.Train(wasTraining);
        }
        var failures = loader.Failures.ToList();
        if (count == 0)
            throw new InvalidDataException($"none of the {data.Count} images could be read; first failure: {failures.FirstOrDefault()?.Message}");
        return new EvalResult(100.0 * top1 / count, 100.0 * top5 / count, lossSum / count, count, failures);
    }
}
