// Evaluation split across ranks (Evaluator with a data-parallel context): rank k scores batches k, k + N, ...; the
// per-batch table summed over the ranks and folded in batch order gives the single process's figures bit for bit.
// Two ranks are played in one process: rank 1 runs first and its table is recorded, then rank 0 runs with the
// recorded table as "the other ranks'" contribution (the evaluator makes exactly one reduction).
using NUnit.Framework;
using Slak.Distributed;
using Slak.Tests.Train;
using Slak.Train;

namespace Slak.Tests.Distributed;

public class EvaluatorShardTests
{
    [TestCase(100, 16)] // 7 batches, the last partial: rank 0 scores 4, rank 1 scores 3
    [TestCase(20, 16)]  // 2 batches
    [TestCase(10, 16)]  // 1 batch: rank 1 has nothing to score
    public void TwoRanks_GiveTheSingleProcessFigures(int images, int batch)
    {
        var model = TinyNet.Make(21);
        var data = TinyNet.Synthetic(images, 22);
        var augment = new Slak.Data.AugmentOptions().WithNormalization(Slak.Data.DataNormalization.FashionMnist);
        var single = Evaluator.Evaluate(model, data, augment, batch);

        double[]? rank1Table = null;
        // Rank 1's own result is not checked: its "other rank" adds one image to batch 0 so that it is not empty.
        var one = new FakeCollectives(1, 2) { Others = (values, _) => { rank1Table = values; var d = new double[values.Length]; d[3] = 1; return d; } };
        var r1 = Evaluator.Evaluate(model, data, augment, batch, new DataParallel(one, syncBatchNorm: false));
        var zero = new FakeCollectives(0, 2) { Others = (values, _) => rank1Table! };
        var r0 = Evaluator.Evaluate(model, data, augment, batch, new DataParallel(zero, syncBatchNorm: false));

        Assert.That(r0.Count, Is.EqualTo(images));
        Assert.That((r0.Top1, r0.Top5, r0.Loss, r0.Count), Is.EqualTo((single.Top1, single.Top5, single.Loss, single.Count)),
            "the same figures, bit for bit");
        int batches = (images + batch - 1) / batch;
        double rank1Scored = Enumerable.Range(0, batches).Sum(b => rank1Table![b * 5 + 3]);
        int oddBatches = Enumerable.Range(0, batches).Where(b => b % 2 == 1).Sum(b => Math.Min(batch, images - b * batch));
        Assert.That(rank1Scored, Is.EqualTo(oddBatches), "rank 1 scored exactly batches 1, 3, 5, ...");
        Assert.That(r1.Count, Is.EqualTo(oddBatches + 1));
        Assert.That(zero.Calls, Is.EqualTo(new[] { "the evaluation's per-batch scores" }));
        Assert.That(model.Module.Training, Is.True, "the module's mode is restored");
    }
}
