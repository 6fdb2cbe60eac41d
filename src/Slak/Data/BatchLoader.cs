// Batches of one epoch, prepared on a background thread into a bounded queue while the training thread computes.
// Each batch draws from its own generator seeded from (seed, epoch, batch index), and the order from (seed, epoch),
// so the batches are identical whatever the thread timing, and a run resumed at an epoch boundary sees exactly the
// batches an uninterrupted run would. An image whose file cannot be read or decoded (ImageFileException) is left out
// of its batch and recorded in Failures; the caller decides when too many failed.
using System.Collections.Concurrent;
using Slak.Diagnostics;
using Slak.IO;

namespace Slak.Data;

/// <summary>Enumerates the batches of one epoch, prepared in the background.</summary>
public sealed class BatchLoader : IEnumerable<Batch>
{
    private readonly IImageSource _data;
    private readonly ConcurrentQueue<ImageFileException> _failures = new();
    private readonly BatchLoaderOptions _options;
    private readonly int[] _order;

    /// <summary>Creates the loader for epoch <paramref name="epoch"/>.</summary>
    public BatchLoader(IImageSource data, BatchLoaderOptions options, int epoch)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(data.Channels);
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "epoch must be >= 0");
        _data = data;
        _options = options;
        Epoch = epoch;
        _order = Enumerable.Range(0, data.Count).ToArray();
        if (options.Shuffle)
        {
            var rng = new SlakRandom(SeedFor(options.Seed, epoch, -1));
            for (int i = _order.Length - 1; i > 0; i--)
            {
                int j = rng.NextInt(i + 1);
                (_order[i], _order[j]) = (_order[j], _order[i]);
            }
        }
        int full = data.Count / options.BatchSize, rest = data.Count % options.BatchSize;
        BatchCount = options.DropLast && full > 0 ? full : full + (rest > 0 ? 1 : 0);
    }

    /// <summary>Images left out because their file could not be read or decoded, in the order met
    /// (thread-safe).</summary>
    public IReadOnlyCollection<ImageFileException> Failures => _failures;

    /// <summary>The epoch.</summary>
    public int Epoch { get; }

    /// <summary>Number of batches in the epoch.</summary>
    public int BatchCount { get; }

    /// <summary>Number of batches per epoch for a data set size (same rule as the constructor).</summary>
    public static int BatchesPerEpoch(int count, int batchSize, bool dropLast)
    {
        int full = count / batchSize, rest = count % batchSize;
        return dropLast && full > 0 ? full : full + (rest > 0 ? 1 : 0);
    }

    /// <summary>The seed of batch <paramref name="batch"/> of <paramref name="epoch"/> (batch -1: the order).</summary>
    public static ulong SeedFor(ulong seed, int epoch, int batch)
    {
        unchecked
        {
            ulong x = seed * 0x9E3779B97F4A7C15UL ^ ((ulong)(uint)epoch << 32 | (uint)batch);
            x ^= x >> 31; x *= 0xD6E8FEB86659FD93UL; x ^= x >> 32;
            return x;
        }
    }

    /// <summary>Prepares batch <paramref name="index"/> synchronously.</summary>
    public Batch Prepare(int index)
    {
        if ((uint)index >= (uint)BatchCount) throw new ArgumentOutOfRangeException(nameof(index), index, $"epoch has {BatchCount} batches");
        var o = _options;
        // Data parallel: rank k takes positions [k * B/N, (k + 1) * B/N) of global batch `index`; positions past the
        // end of the epoch (only in a last partial batch) wrap to its start, as DistributedSampler pads.
        int per = o.BatchSize / o.ShardCount;
        int start = index * o.BatchSize + o.ShardIndex * per;
        int n = o.ShardCount == 1 ? Math.Min(o.BatchSize, _data.Count - start) : per;
        int c = _data.Channels, h = _data.Height, w = _data.Width, size = _data.ImageSize;
        var rng = new SlakRandom(SeedFor(o.Seed, Epoch, index));
        // Page-locked memory from the pool when there is one and a buffer is free, else an ordinary array.
        var block = o.HostMemory?.TryRent((long)n * size);
        var array = block is null ? new float[n * size] : null;
        Span<float> images = array ?? HostSpan(block!, n * size);
        var labels = new int[n];
        var read = new float[size];
        int kept = 0;
        var augmented = o.Augment.SourceAugmentation ? _data as IAugmentedImageSource : null;
        for (int i = 0; i < n; i++)
        {
            int src = _order[(start + i) % _data.Count];
            // A source that augments while decoding gets its own stream per (seed, epoch, image), so an image's
            // augmentation does not depend on which other images share its batch, rank or which thread decodes it.
            var sampleRng = augmented is null && !o.SampleStreams ? null : new SlakRandom(SeedFor(o.Seed ^ 0xA5A5_0F0F_5A5A_F0F0UL, Epoch, src));
            try
            {
                if (augmented is not null) augmented.ReadAugmentedImage(src, read, sampleRng!);
                else _data.ReadImage(src, read);
            }
            catch (ImageFileException e)
            {
                _failures.Enqueue(e);
                continue;
            }
            labels[kept] = _data.LabelAt(src);
            Augment.AugmentImage(read, images.Slice(kept * size, size), c, h, w, o.Augment, sampleRng ?? rng);
            kept++;
        }
        if (kept < n)
        {
            n = kept;
            images = images[..(n * size)];
            if (array is not null) array = images.ToArray();
            labels = labels.AsSpan(0, n).ToArray();
        }
        // Mixup/CutMix pair images within this rank's part of the batch (a group never straddles ranks), with lambda
        // from a stream keyed by (epoch, batch, part).
        var mixRng = o.ShardCount == 1 ? rng : new SlakRandom(SeedFor(o.Seed ^ 0x3C3C_C3C3_9696_6969UL, Epoch, index * o.ShardCount + o.ShardIndex));
        float[] targets = o.Mixup is { Enabled: true } mix
            ? Augment.MixBatch(images, n, c, h, w, labels, _data.ClassCount, o.Smoothing, mix, mixRng).Targets
            : Augment.SmoothedOneHot(labels, _data.ClassCount, o.Smoothing);
        return array is not null
            ? new Batch(index, array, [n, c, h, w], labels, targets, _data.ClassCount)
            : new Batch(index, o.HostMemory!, block!, n * size, [n, c, h, w], labels, targets, _data.ClassCount);
    }

    private static unsafe Span<float> HostSpan(HostBlock block, int length) => new((void*)block.Address, length);

    /// <summary>The most batches that were in flight at once (being prepared, or prepared and not yet taken) during
    /// the last enumeration: never more than <see cref="BatchLoaderOptions.Prefetch"/>.</summary>
    public int MaxInFlight => _maxInFlight;

    private int _inFlight, _maxInFlight;

    /// <inheritdoc />
    /// <remarks>With <see cref="BatchLoaderOptions.Prefetch"/> above 0, <see cref="BatchLoaderOptions.Workers"/>
    /// threads prepare batches in parallel; a worker takes a slot before preparing a batch and the slot is freed when
    /// the consumer takes that batch, so at most Prefetch batches exist at once (memory: Prefetch x batch size x
    /// image size x 4 bytes, plus the one the consumer holds). Batches come out in order and are identical whatever
    /// the worker count (each is a pure function of seed, epoch and index). Leaving the enumeration early (break,
    /// exception, cancellation) stops the workers and waits for them; a worker's error is rethrown here.</remarks>
    public IEnumerator<Batch> GetEnumerator()
    {
        if (_options.Prefetch == 0)
        {
            for (int i = 0; i < BatchCount; i++) yield return Prepare(i);
            yield break;
        }
        int workers = Math.Max(1, Math.Min(_options.Workers, _options.Prefetch));
        var ready = new Batch?[BatchCount];
        var gate = new object();
        using var slots = new SemaphoreSlim(_options.Prefetch, _options.Prefetch);
        using var cancel = new CancellationTokenSource();
        Exception? failure = null;
        int next = -1;
        _inFlight = 0;
        _maxInFlight = 0;
        void Work()
        {
            try
            {
                while (true)
                {
                    slots.Wait(cancel.Token);
                    int i = Interlocked.Increment(ref next);
                    if (i >= BatchCount) { slots.Release(); return; }
                    int now = Interlocked.Increment(ref _inFlight);
                    int seen;
                    while (now > (seen = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, seen) != seen) { }
                    Batch prepared;
                    using (OpProfiler.Measure("data.prepare (worker thread)")) prepared = Prepare(i);
                    lock (gate)
                    {
                        ready[i] = prepared;
                        Monitor.PulseAll(gate);
                    }
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e)
            {
                lock (gate)
                {
                    failure ??= e;
                    Monitor.PulseAll(gate);
                }
            }
        }
        var tasks = Enumerable.Range(0, workers).Select(_ => Task.Factory.StartNew(Work, cancel.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        try
        {
            for (int i = 0; i < BatchCount; i++)
            {
                Batch batch;
                using (OpProfiler.Measure("data.wait"))
                    lock (gate)
                    {
                        while (ready[i] is null && failure is null) Monitor.Wait(gate);
                        if (ready[i] is null)
                            throw new InvalidOperationException($"preparing a batch of epoch {Epoch} failed: {failure!.Message}", failure);
                        batch = ready[i]!;
                        ready[i] = null;
                    }
                Interlocked.Decrement(ref _inFlight);
                slots.Release();
                yield return batch;
            }
        }
        finally
        {
            cancel.Cancel();
            Task.WaitAll(tasks.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)).ToArray());
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
