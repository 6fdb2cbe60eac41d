// The threaded loader: batches identical whatever the worker count (image-folder training transform, erasing,
// mixup), at most Prefetch batches in flight, a clean stop when the consumer leaves early, and a worker's error
// rethrown to the consumer instead of a hang.
using NUnit.Framework;
using Slak.Data;
using Slak.IO;
using Slak.Tests.Support;

namespace Slak.Tests.Data;

public class LoaderTests
{
    private static ImageFolderDataset TrainFolder(int count)
    {
        var index = ImageFolderScanner.Scan(ImageTestData.Path("fmnist64"));
        var training = new TrainTransformOptions { Size = 32, RandAugment = RandAugment.Parse("rand-m9-mstd0.5-inc1") };
        return new ImageFolderDataset(index.Train.Take(count).ToList(), 10, 32, training: training);
    }

    private static BatchLoaderOptions Options(ulong seed, int prefetch, int workers) => new()
    {
        BatchSize = 8, Seed = seed, Prefetch = prefetch, Workers = workers, Smoothing = 0.1,
        Mixup = new MixupOptions { MixupAlpha = 0.8, CutmixAlpha = 1.0 },
        Augment = new AugmentOptions { CropPadding = 0, HorizontalFlip = false, EraseProbability = 0.25, SourceAugmentation = true }
            .WithNormalization(DataNormalization.Imagenet),
    };

    [Test]
    public void BatchesDoNotDependOnTheWorkerCount()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        var data = TrainFolder(40);
        var inline = new BatchLoader(data, Options(seed, 0, 1), 3).ToList();
        foreach (var (prefetch, workers) in new[] { (1, 1), (3, 3), (4, 2) })
        {
            var threaded = new BatchLoader(data, Options(seed, prefetch, workers), 3).ToList();
            Assert.That(threaded, Has.Count.EqualTo(inline.Count));
            for (int b = 0; b < inline.Count; b++)
            {
                Assert.That(threaded[b].Images, Is.EqualTo(inline[b].Images), $"batch {b}, {workers} workers, seed {seed}");
                Assert.That(threaded[b].Labels, Is.EqualTo(inline[b].Labels));
                Assert.That(threaded[b].Targets, Is.EqualTo(inline[b].Targets));
            }
        }
        // The training transform really is random: another epoch differs.
        Assert.That(new BatchLoader(data, Options(seed, 0, 1), 4).Prepare(0).Images, Is.Not.EqualTo(inline[0].Images));
    }

    /// <summary>An in-memory source that counts reads and can fail at one index.</summary>
    private sealed class CountingSource(ImageDataset inner, int failAt = -1) : IImageSource
    {
        private int _reads;
        public int Reads => Volatile.Read(ref _reads);
        public int Count => inner.Count;
        public int Channels => inner.Channels;
        public int Height => inner.Height;
        public int Width => inner.Width;
        public int ClassCount => inner.ClassCount;
        public int LabelAt(int index) => inner.LabelAt(index);
        public IImageSource Subset(IReadOnlyList<int> indices) => throw new NotSupportedException();

        public void ReadImage(int index, Span<float> destination)
        {
            Interlocked.Increment(ref _reads);
            if (index == failAt) throw new InvalidOperationException($"simulated bug at image {index}");
            inner.ReadImage(index, destination);
        }
    }

    [TestCase(2, 4)]
    [TestCase(5, 2)]
    [TestCase(1, 3)]
    public void AtMostPrefetchBatchesAreInFlight(int prefetch, int workers)
    {
        var source = new CountingSource(Slak.Tests.Train.TinyNet.Synthetic(400, 7));
        var loader = new BatchLoader(source, new BatchLoaderOptions { BatchSize = 10, Prefetch = prefetch, Workers = workers, Shuffle = false }, 0);
        int batches = 0;
        foreach (var _ in loader)
        {
            batches++;
            Thread.Sleep(2); // a slow consumer, so that the workers run ahead as far as they may
        }
        Assert.That(batches, Is.EqualTo(40));
        Assert.That(loader.MaxInFlight, Is.InRange(1, prefetch), $"prefetch {prefetch}, workers {workers}");
    }

    [Test]
    public void LeavingEarlyStopsTheWorkers()
    {
        var source = new CountingSource(Slak.Tests.Train.TinyNet.Synthetic(1000, 8));
        var loader = new BatchLoader(source, new BatchLoaderOptions { BatchSize = 10, Prefetch = 3, Workers = 3, Shuffle = false }, 0);
        int seen = 0;
        foreach (var _ in loader)
            if (++seen == 2) break;
        int reads = source.Reads;
        // After the enumerator is disposed no worker runs: at most the 2 taken + 3 in flight batches were read.
        Assert.That(reads, Is.LessThanOrEqualTo(5 * 10));
        Thread.Sleep(50);
        Assert.That(source.Reads, Is.EqualTo(reads), "a worker kept reading after the loop ended");
    }

    [Test]
    public void AWorkerErrorReachesTheConsumer()
    {
        var source = new CountingSource(Slak.Tests.Train.TinyNet.Synthetic(200, 9), failAt: 57);
        var loader = new BatchLoader(source, new BatchLoaderOptions { BatchSize = 10, Prefetch = 4, Workers = 2, Shuffle = false }, 0);
        var taken = new List<int>();
        var e = Assert.Throws<InvalidOperationException>(() => { foreach (var b in loader) taken.Add(b.Index); })!;
        Assert.That(e.Message, Does.Contain("simulated bug at image 57"));
        Assert.That(taken, Is.EqualTo(Enumerable.Range(0, taken.Count)));
        Assert.That(taken.Count, Is.LessThanOrEqualTo(5));
    }
}
