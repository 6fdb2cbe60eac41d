// Batches assembled in a BatchHostMemory pool (issue 21 item 3: page-locked host memory for cuda). Without a GPU the
// page-locked allocation itself (cuMemHostAlloc) cannot run here; these tests drive the same pool with ordinary
// native memory, poisoned with NaN before use: pooled batches equal array batches value for value (threaded loader,
// training transform, erasing, mixup), every buffer goes back when the batches are disposed, a consumer that keeps
// its batches gets at most BufferCount pooled ones and ordinary arrays after that (never a wait), a batch of a freed
// pool refuses to be read, and the CPU and the emulator get no pool (ordinary arrays). On a machine with a CUDA GPU
// (category Gpu, skipped without one) the real page-locked pool is used by the loader and its batches upload exactly.
using System.Runtime.InteropServices;
using NUnit.Framework;
using Slak.Data;
using Slak.IO;
using Slak.Tests.Support;

namespace Slak.Tests.Data;

public unsafe class BatchHostMemoryTests
{
    private sealed class NativeBlock(nint address) : IDisposable
    {
        public int Freed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref Freed, 1) == 0) NativeMemory.AlignedFree((void*)address);
        }
    }

    private readonly List<NativeBlock> _blocks = [];

    // A pool of native memory, every float NaN before the loader writes it.
    private BatchHostMemory Pool(int count, long floats) => new(count, floats, bytes =>
    {
        void* p = NativeMemory.AlignedAlloc((nuint)bytes, 64);
        new Span<float>(p, checked((int)(bytes / sizeof(float)))).Fill(float.NaN);
        var block = new NativeBlock((nint)p);
        _blocks.Add(block);
        return new HostBlock((nint)p, block);
    }, pageLocked: false);

    private static ImageFolderDataset TrainFolder(int count)
    {
        var index = ImageFolderScanner.Scan(ImageTestData.Path("fmnist64"));
        var training = new TrainTransformOptions { Size = 32, RandAugment = RandAugment.Parse("rand-m9-mstd0.5-inc1") };
        return new ImageFolderDataset(index.Train.Take(count).ToList(), 10, 32, training: training);
    }

    private static BatchLoaderOptions Options(ulong seed, BatchHostMemory? memory) => new()
    {
        BatchSize = 8, Seed = seed, Prefetch = 2, Workers = 2, Smoothing = 0.1, HostMemory = memory,
        Mixup = new MixupOptions { MixupAlpha = 0.8, CutmixAlpha = 1.0 },
        Augment = new AugmentOptions { CropPadding = 0, HorizontalFlip = false, EraseProbability = 0.25, SourceAugmentation = true }
            .WithNormalization(DataNormalization.Imagenet),
    };

    [Test]
    public void PooledBatchesEqualArrayBatchesAndGiveTheirBuffersBack()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        TestContext.Out.WriteLine($"seed {seed}");
        var data = TrainFolder(44); // 5 full batches and a last one of 4
        var expected = new BatchLoader(data, Options(seed, null) with { DropLast = false }, 1).ToList();
        using var pool = Pool(3, 8L * data.ImageSize);
        int b = 0;
        foreach (var batch in new BatchLoader(data, Options(seed, pool) with { DropLast = false }, 1))
        {
            Assert.That(batch.ImageSpan.ToArray(), Is.EqualTo(expected[b].Images), $"batch {b}, seed {seed}");
            Assert.That(batch.Targets, Is.EqualTo(expected[b].Targets), $"batch {b}");
            Assert.That(batch.ImageSpan.Length, Is.EqualTo(batch.Count * data.ImageSize));
            batch.Dispose();
            batch.Dispose(); // twice is harmless
            b++;
        }
        Assert.That(b, Is.EqualTo(6));
        Assert.That(pool.Fallbacks, Is.Zero, "a consumer that disposes each batch never empties a pool of prefetch + 1");
        Assert.That(pool.FreeBuffers, Is.EqualTo(3));
    }

    [Test]
    public void AConsumerThatKeepsItsBatchesGetsArraysOnceThePoolIsEmpty()
    {
        ulong seed = (ulong)TestRandom.NewSeed();
        TestContext.Out.WriteLine($"seed {seed}");
        var data = TrainFolder(48);
        var expected = new BatchLoader(data, Options(seed, null), 2).ToList();
        var pool = Pool(2, 8L * data.ImageSize);
        var kept = new BatchLoader(data, Options(seed, pool), 2).ToList(); // 6 batches, none disposed
        Assert.That(pool.FreeBuffers, Is.Zero);
        Assert.That(pool.Fallbacks, Is.EqualTo(4), "2 pooled batches, then ordinary arrays");
        for (int i = 0; i < kept.Count; i++)
            Assert.That(kept[i].Images, Is.EqualTo(expected[i].Images), $"batch {i}, seed {seed}");

        Assert.That(kept.Count(k => k.IsPooled), Is.EqualTo(2));
        var pooled = kept.First(k => k.IsPooled);
        pool.Dispose();
        Assert.That(_blocks.All(x => x.Freed == 1), Is.True, "the pool frees its memory");
        Assert.That(() => pooled.ImageSpan.ToArray(), Throws.InstanceOf<ObjectDisposedException>(), "no read of freed memory");
        Assert.DoesNotThrow(pooled.Dispose);
        foreach (var k in kept.Where(k => !k.IsPooled))
            Assert.That(k.ImageSpan.ToArray(), Is.EqualTo(expected[k.Index].Images), "the array batches stay readable");
    }

    [Test]
    public void ThePoolRefusesBadSizesAndTheCpuAndEmulatorGetNativeMemory()
    {
        Assert.That(() => Pool(0, 8), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => Pool(1, 0), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(BatchHostMemory.PageLocked(Device.Cpu, 3, 1024), Is.Null);
        Assert.That(BatchHostMemory.PageLocked(new Device(DeviceType.CudaEmu), 3, 1024), Is.Null);
        // ... they get ordinary native memory instead, reused batch after batch.
        foreach (var device in new[] { Device.Cpu, new Device(DeviceType.CudaEmu) })
        {
            using var native = BatchHostMemory.ForDevice(device, 3, 1024);
            Assert.That((native.IsPageLocked, native.BufferCount, native.FloatsPerBuffer, native.FreeBuffers), Is.EqualTo((false, 3, 1024L, 3)));
            var block = native.TryRent(1024)!;
            Assert.That((long)block.Address % 64, Is.EqualTo(0L), "64-byte aligned");
            native.Return(block);
            Assert.That(native.TryRent(1024)!.Address, Is.EqualTo(block.Address), "the same buffer comes back");
        }
        // A request larger than a buffer (a batch bigger than the pool was sized for) uses an array.
        using var pool = Pool(1, 8);
        Assert.That(pool.TryRent(9), Is.Null);
        Assert.That(pool.Fallbacks, Is.EqualTo(1));
        Assert.That(pool.TryRent(8), Is.Not.Null);
    }

    [Test]
    [Category("Gpu")]
    public void OnACudaGpuBatchesAreAssembledInPageLockedMemoryAndUploadExactly()
    {
        if (!Slak.Cuda.Runtime.GpuDevices.IsCudaAvailable(out string reason)) Assert.Ignore($"no CUDA device: {reason}");
        ulong seed = (ulong)TestRandom.NewSeed();
        TestContext.Out.WriteLine($"seed {seed}");
        var data = TrainFolder(24);
        var expected = new BatchLoader(data, Options(seed, null), 0).ToList();
        var cuda = new Device(DeviceType.Cuda);
        using var pool = BatchHostMemory.PageLocked(cuda, 3, 8L * data.ImageSize);
        Assert.That(pool, Is.Not.Null);
        Assert.That(pool!.IsPageLocked, Is.True);
        int b = 0;
        foreach (var batch in new BatchLoader(data, Options(seed, pool), 0))
        {
            Assert.That(batch.IsPageLocked, Is.True, $"batch {b}");
            using var scope = TensorScope.Begin();
            var x = Tensor.FromArray(batch.ImageSpan, batch.Shape, cuda);
            batch.Dispose();
            Assert.That(x.ToArray(), Is.EqualTo(expected[b].Images), $"batch {b} on the device, seed {seed}");
            b++;
        }
        Assert.That(pool.Fallbacks, Is.Zero);
        Assert.That(pool.FreeBuffers, Is.EqualTo(3));
    }

    [TearDown]
    public void FreeLeftovers()
    {
        foreach (var b in _blocks) b.Dispose();
        _blocks.Clear();
    }
}
