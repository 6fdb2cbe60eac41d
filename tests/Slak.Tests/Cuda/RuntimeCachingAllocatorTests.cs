// The caching allocator's policy over a fake memory source with a fixed capacity: bucket rounding, reuse,
// statistics, empty-cache-and-retry on out-of-memory, the final out-of-memory message, deferred (finalizer-safe)
// frees, and release of everything on Dispose.
using NUnit.Framework;
using Slak.Cuda.Runtime;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class RuntimeCachingAllocatorTests
{
    [Test]
    public void BucketsRoundUpWithBoundedWaste()
    {
        Assert.That(CachingAllocator.BucketSize(0), Is.EqualTo(512));
        Assert.That(CachingAllocator.BucketSize(1), Is.EqualTo(512));
        Assert.That(CachingAllocator.BucketSize(513), Is.EqualTo(1024));
        Assert.That(CachingAllocator.BucketSize(1 << 20), Is.EqualTo(1 << 20));
        Assert.That(CachingAllocator.BucketSize((1 << 20) + 1), Is.EqualTo((1 << 20) + (1 << 18)));
        Assert.Throws<ArgumentOutOfRangeException>(() => CachingAllocator.BucketSize(-1));

        int seed = Environment.TickCount;
        var rng = new Random(seed);
        for (int i = 0; i < 2000; i++)
        {
            long bytes = (long)Math.Exp(rng.NextDouble() * Math.Log(1L << 36));
            long bucket = CachingAllocator.BucketSize(bytes);
            Assert.That(bucket, Is.GreaterThanOrEqualTo(bytes), $"seed {seed}, bytes {bytes}");
            Assert.That(bucket, Is.LessThanOrEqualTo(Math.Max(512, bytes * 1.25 + 512)), $"seed {seed}, bytes {bytes}");
            Assert.That(CachingAllocator.BucketSize(bucket), Is.EqualTo(bucket), $"seed {seed}: buckets are fixed points");
        }
    }

    [Test]
    public void FreedBlocksAreReusedAndCounted()
    {
        var source = new FakeSource(capacity: 1 << 20);
        using var allocator = new CachingAllocator(source);

        DevicePtr a = allocator.Allocate(1000);
        DevicePtr b = allocator.Allocate(3000);
        allocator.Free(a);
        DevicePtr c = allocator.Allocate(900);

        Assert.That(c, Is.EqualTo(a), "same bucket (1024) reuses the cached block");
        Assert.That(allocator.Stats, Is.EqualTo(new GpuMemoryStats(InUseBytes: 1024 + 3072, ReservedBytes: 1024 + 3072,
            PeakInUseBytes: 1024 + 3072, CacheHits: 1, CacheMisses: 2)));
        Assert.That(source.Allocations, Is.EqualTo(2));

        allocator.Free(b);
        allocator.Free(c);
        allocator.EmptyCache();
        Assert.That(allocator.Stats.ReservedBytes, Is.Zero);
        Assert.That(source.LiveBytes, Is.Zero);
    }

    [Test]
    public void OutOfMemoryEmptiesTheCacheAndRetriesOnce()
    {
        var source = new FakeSource(capacity: 4096);
        using var allocator = new CachingAllocator(source);
        DevicePtr small = allocator.Allocate(2048);
        allocator.Free(small);

        DevicePtr big = allocator.Allocate(3000);

        Assert.That(big.IsNull, Is.False);
        Assert.That(source.FailedAllocations, Is.EqualTo(1), "first attempt failed, retry after emptying the cache");
        Assert.That(allocator.Stats.ReservedBytes, Is.EqualTo(3072));
    }

    [Test]
    public void OutOfMemoryAfterRetryNamesRequestedFreeAndReservedBytes()
    {
        var source = new FakeSource(capacity: 8192);
        using var allocator = new CachingAllocator(source);
        allocator.Allocate(4096);

        var e = Assert.Throws<GpuOutOfMemoryException>(() => allocator.Allocate(6000));

        Assert.That(e!.Message, Does.Contain("requested 6000 bytes").And.Contain("4096 bytes free of 8192")
            .And.Contain("4096 bytes reserved"));
        Assert.That(source.FailedAllocations, Is.EqualTo(2));
    }

    [Test]
    public void DeferredFreesAreDrainedWithoutTheCallerHoldingALock()
    {
        var source = new FakeSource(capacity: 1 << 20);
        using var allocator = new CachingAllocator(source);
        DevicePtr[] blocks = Enumerable.Range(0, 64).Select(_ => allocator.Allocate(512)).ToArray();

        Parallel.ForEach(blocks, allocator.FreeDeferred);

        Assert.That(allocator.Stats.InUseBytes, Is.Zero);
        Assert.That(allocator.Stats.ReservedBytes, Is.EqualTo(64 * 512));
        Assert.That(source.Releases, Is.Zero, "deferred frees only return blocks to the cache");
    }

    [Test]
    public void InvalidAndDoubleFreesAreCountedNotThrown()
    {
        using var allocator = new CachingAllocator(new FakeSource(capacity: 1 << 20));
        DevicePtr a = allocator.Allocate(10);
        allocator.Free(a);
        allocator.Free(a);
        allocator.Free(new DevicePtr(0xdead));
        allocator.Free(DevicePtr.Null);
        Assert.That(allocator.InvalidFrees, Is.EqualTo(2));
    }

    [Test]
    public void DisposeReleasesLiveAndCachedBlocks()
    {
        var source = new FakeSource(capacity: 1 << 20);
        var allocator = new CachingAllocator(source);
        allocator.Allocate(100);
        allocator.Free(allocator.Allocate(5000));

        allocator.Dispose();

        Assert.That(source.LiveBytes, Is.Zero);
        Assert.Throws<ObjectDisposedException>(() => allocator.Allocate(1));
        var bad = Assert.Throws<ArgumentOutOfRangeException>(() => new CachingAllocator(source).Allocate(-5));
        Assert.That(bad!.Message, Does.Contain("bytes=-5"));
    }

    /// <summary>A memory source with a byte capacity; addresses are unique and never reused.</summary>
    private sealed class FakeSource(long capacity) : IDeviceMemorySource
    {
        private readonly Dictionary<ulong, long> _live = [];
        private ulong _next = 0x1000_0000;

        public int Allocations { get; private set; }

        public int FailedAllocations { get; private set; }

        public int Releases { get; private set; }

        public long LiveBytes => _live.Values.Sum();

        public bool TryAllocate(long bytes, out ulong address)
        {
            if (LiveBytes + bytes > capacity)
            {
                FailedAllocations++;
                address = 0;
                return false;
            }

            Allocations++;
            address = _next;
            _next += (ulong)bytes + 4096;
            _live[address] = bytes;
            return true;
        }

        public void Release(ulong address)
        {
            Releases++;
            Assert.That(_live.Remove(address), Is.True, $"release of unknown address 0x{address:x}");
        }

        public (long Free, long Total) MemoryInfo() => (capacity - LiveBytes, capacity);
    }
}
