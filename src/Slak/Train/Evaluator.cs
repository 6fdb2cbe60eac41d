// Evaluation: eval mode, no graph, batches in order; top-1, top-5 and mean cross-entropy over the whole set.
// Data parallel (an internal overload with the job's context): the set is cut into the same batches as in one
// process, rank k scores batches k, k + N, k + 2N, ... (disjoint shards, each batch whole), every batch's counts and
// loss sum are placed in a per-batch table that is summed over the ranks (each entry comes from one rank, so the sum is
// exact in any order), and the table is folded in batch order exactly as one process folds it: the figures are the
// single process's, bit for bit, for the same batch size.
using System.Globalization;
using Slak.Autograd;
using Slak.Data;

namespace Slak.Train;

/// <summary>Scores of a model on a data set.</summary>
/// <param name="Top1">Top-1 accuracy, percent.</param>
/// <param name="Top5">Top-5 accuracy, percent.</param>
/// <param name="Loss">Mean cross-entropy (no smoothing).</param>
/// <param name="Count">Images evaluated.</param>
/// <param name="Failures">Images left out because their file could not be read or decoded (each names
/// its file).</param>
public sealed record EvalResult(double Top1, double Top5, double Loss, int Count, IReadOnlyList<IO.ImageFileException>? Failures = null)
{
    /// <summary>Number of images left out.</summary>
    public int Skipped => Failures?.Count ?? 0;
}

/// <summary>Evaluates a classifier.</summary>
public static class Evaluator
{
    private const int Record = 5; // values per batch in the data-parallel table

    /// <summary>Runs <paramref name="model"/> over <paramref name="data"/> (normalised as
    /// <paramref name="augment"/> says, without random augmentation) and restores the module's mode. Images whose
    /// file cannot be decoded are left out and listed in <see cref="EvalResult.Failures"/>.</summary>
    /// <exception cref="InvalidDataException">No image of the set could be read.</exception>
    public static EvalResult Evaluate(TrainableModel model, IImageSource data, AugmentOptions augment, int batchSize)
        => Evaluate(model, data, augment, batchSize, null);

    /// <summary>As the public overload; with a data-parallel context of several ranks, each rank scores its shard
    /// of the batches and the result (on every rank) is the whole set's, as one process computes it. Every rank must
    /// call it with the same arguments.</summary>
    internal static EvalResult Evaluate(TrainableModel model, IImageSource data, AugmentOptions augment, int batchSize,
                                        Distributed.DataParallel? dp)
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
        int batches = (data.Count + batchSize - 1) / batchSize, ranks = dp?.Size ?? 1, rank = dp?.Rank ?? 0;
        var part = ranks == 1 ? data : data.Subset(Enumerable.Range(0, batches).Where(b => b % ranks == rank)
            .SelectMany(b => Enumerable.Range(b * batchSize, Math.Min(batchSize, data.Count - b * batchSize))).ToArray());
        // Per global batch: top-1 hits, top-5 hits, loss sum, images scored; then per rank: images left out.
        var table = new double[batches * Record + ranks];
        var failures = new List<IO.ImageFileException>();
        if (part.Count > 0)
        {
            var loader = new BatchLoader(part, new BatchLoaderOptions
            {
                BatchSize = batchSize, Shuffle = false, DropLast = false, Augment = augment.ForEvaluation(), Prefetch = prefetch, Workers = 2,
                HostMemory = hostMemory,
            }, 0);
            try
            {
                using var noGrad = GradMode.NoGrad();
                int mine = 0;
                foreach (var batch in loader)
                {
                    var row = table.AsSpan((rank + mine++ * ranks) * Record, Record);
                    if (batch.Count == 0) continue;
                    ScoreBatch(model, batch, row);
                }
            }
            finally
            {
                model.Module.Train(wasTraining);
            }
            failures.AddRange(loader.Failures);
        }
        model.Module.Train(wasTraining);
        table[batches * Record + rank] = failures.Count;
        if (ranks > 1) dp!.Sum(table, "the evaluation's per-batch scores");
        long top1 = 0, top5 = 0;
        int count = 0;
        double lossSum = 0;
        for (int b = 0; b < batches; b++)
        {
            var row = table.AsSpan(b * Record, Record);
            top1 += (long)row[0];
            top5 += (long)row[1];
            lossSum += row[2];
            count += (int)row[3];
        }
        for (int r = 0; r < ranks; r++)
            if (r != rank && table[batches * Record + r] > 0)
                failures.Add(new IO.ImageFileException(string.Create(CultureInfo.InvariantCulture, $"(rank {r}'s part of the set)"),
                    string.Create(CultureInfo.InvariantCulture, $"{table[batches * Record + r]} images could not be read there (that rank's own warning names them)")));
        if (count == 0)
            throw new InvalidDataException($"none of the {data.Count} images could be read; first failure: {failures.FirstOrDefault()?.Message}");
        return new EvalResult(100.0 * top1 / count, 100.0 * top5 / count, lossSum / count, count, failures);
    }

    /// <summary>Scores one batch into <paramref name="row"/>: top-1 hits, top-5 hits, loss sum (the batch's mean
    /// cross-entropy times its size, as one process adds it), images.</summary>
    private static void ScoreBatch(TrainableModel model, Batch batch, Span<double> row)
    {
        var device = model.Device;
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(batch.ImageSpan, batch.Shape, device);
        int n = batch.Count;
        var labels = batch.Labels;
        batch.Dispose(); // uploaded: a pooled buffer goes back to the loader
        var logits = model.Forward(x);
        int k = logits.Size(1);
        var targets = Tensor.FromArray(Augment.SmoothedOneHot(labels, k, 0), [n, k], device);
        row[2] = F.SoftTargetCrossEntropy(logits, targets).Item() * n; // float32 product, as before
        row[3] = n;
        var host = logits.ToArray();
        for (int i = 0; i < n; i++)
        {
            var scores = host.AsSpan(i * k, k);
            float own = scores[labels[i]];
            int place = 0;
            for (int j = 0; j < k; j++)
                if (scores[j] > own || (scores[j] == own && j < labels[i])) place++;
            if (place == 0) row[0]++;
            if (place < 5) row[1]++;
        }
    }
}
