// The emulated device's memory and GEMM: allocator statistics and cache reuse, poisoning of fresh blocks,
// Memset32, device-to-device copies, and Sgemm (the fallback loop when no host GEMM is injected) against a float64
// reference for every transpose combination, with C poisoned when beta = 0 (BLAS: C is then not read).
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;
using static Slak.Tests.Cuda.EmulatorTestSupport;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class EmulatorDeviceTests
{
    [Test]
    public void AllocatorCachesAndReportsStatistics()
    {
        using var dev = EmulatedDevice.Open();
        dev.Checks = EmulatorChecks.None;  // bounds checks place blocks against their end guard, 16-byte aligned
        var a = dev.Allocate(1000);
        Assert.That(a.Address % 64, Is.Zero, "64-byte alignment");
        Assert.That(float.IsNaN(Download<float>(dev, a, 1)[0]), Is.True, "fresh blocks are poisoned");
        var s1 = dev.MemoryStats;
        Assert.That(s1.InUseBytes, Is.EqualTo(1024));
        Assert.That(s1.CacheMisses, Is.EqualTo(1));
        dev.Free(a);
        Assert.That(dev.MemoryStats.InUseBytes, Is.Zero);
        Assert.That(dev.MemoryStats.ReservedBytes, Is.EqualTo(1024));
        var b = dev.Allocate(900);
        Assert.That(b, Is.EqualTo(a), "same bucket reuses the cached block");
        Assert.That(dev.MemoryStats.CacheHits, Is.EqualTo(1));
        Assert.That(dev.MemoryStats.PeakInUseBytes, Is.EqualTo(1024));
        dev.Free(b);
        dev.Free(b);  // a double free is ignored
        dev.EmptyCache();
        Assert.That(dev.MemoryStats.ReservedBytes, Is.Zero);
    }

    [Test]
    public void MemsetAndDeviceCopies()
    {
        using var dev = EmulatedDevice.Open();
        var a = dev.Allocate(40);
        var b = dev.Allocate(40);
        dev.Memset32(a, 0x3F800000u, 10);
        dev.CopyDeviceToDevice(a, b, 40);
        Assert.That(Download<float>(dev, b, 10), Is.All.EqualTo(1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => dev.Memset32(a, 0, 11));
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void FallbackSgemmMatchesReference(bool transA, bool transB)
    {
        const int m = 7, n = 5, k = 9;
        var seed = NewSeed();
        var rng = new Random(seed);
        using var dev = EmulatedDevice.Open(); // no host GEMM injected: the fallback loop runs
        int lda = (transA ? m : k) + 2, ldb = (transB ? k : n) + 1, ldc = n + 3;
        var a = Enumerable.Range(0, (transA ? k : m) * lda).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var b = Enumerable.Range(0, (transB ? n : k) * ldb).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var c0 = Enumerable.Range(0, m * ldc).Select(_ => (float)rng.NextDouble()).ToArray();
        DevicePtr da = Upload<float>(dev, a), db = Upload<float>(dev, b), dc = Upload<float>(dev, c0);
        const float alpha = 1.5f, beta = -0.5f;
        dev.Sgemm(transA, transB, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc);
        var got = Download<float>(dev, dc, m * ldc);
        var dz = Poisoned(dev, m * ldc);
        dev.Sgemm(transA, transB, m, n, k, alpha, da, lda, db, ldb, 0f, dz, ldc);
        var gotZero = Download<float>(dev, dz, m * ldc);
        double[] want = new double[m * n], wantZero = new double[m * n];
        float[] g = new float[m * n], gz = new float[m * n];
        for (var i = 0; i < m; i++)
            for (var j = 0; j < n; j++)
            {
                double acc = 0;
                for (var p = 0; p < k; p++)
                    acc += (double)(transA ? a[p * lda + i] : a[i * lda + p]) *
                           (transB ? b[j * ldb + p] : b[p * ldb + j]);
                want[i * n + j] = alpha * acc + beta * (double)c0[i * ldc + j];
                wantZero[i * n + j] = alpha * acc;
                g[i * n + j] = got[i * ldc + j];
                gz[i * n + j] = gotZero[i * ldc + j];
            }
        AssertClose(g, want, 1e-5, 1e-5, $"sgemm tA={transA} tB={transB} seed={seed}");
        AssertClose(gz, wantZero, 1e-5, 1e-5, $"sgemm beta=0 over NaN tA={transA} tB={transB} seed={seed}");
    }
}
