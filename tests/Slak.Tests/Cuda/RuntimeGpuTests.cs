// Real-GPU checks of CudaDriverDevice (skipped with the reason when no CUDA device is present): copies and
// memset, an NVRTC-compiled kernel against a float64 reference with the output poisoned first, row-major cuBLAS
// GEMMs in every transpose combination with padded leading dimensions, out-of-memory, events, pinned memory and
// the kernel cache across device instances.
using NUnit.Framework;
using System.Runtime.InteropServices;
using Slak.Cuda.Compilation;
using Slak.Cuda.Runtime;

namespace Slak.Tests.Cuda;

[TestFixture]
[Category("Gpu")]
public sealed unsafe class RuntimeGpuTests
{
    private string _cacheFolder = "";
    private CudaDriverDevice _device = null!;

    [SetUp]
    public void OpenDevice()
    {
        if (!GpuDevices.IsCudaAvailable(out string reason))
        {
            Assert.Ignore($"no CUDA device: {reason}");
        }

        _cacheFolder = NvrtcTestSupport.TempFolder();
        _device = CudaDriverDevice.Open(0, NvrtcTestSupport.Sources(), new KernelCache(_cacheFolder));
    }

    [TearDown]
    public void CloseDevice()
    {
        _device?.Dispose();
        if (Directory.Exists(_cacheFolder))
        {
            Directory.Delete(_cacheFolder, recursive: true);
        }
    }

    [Test]
    public void CopiesAndMemsetRoundTrip()
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        float[] host = Enumerable.Range(0, 1000).Select(_ => (float)rng.NextDouble()).ToArray();
        DevicePtr a = _device.Allocate(host.Length * sizeof(float));
        DevicePtr b = _device.Allocate(host.Length * sizeof(float));

        _device.CopyToDevice(MemoryMarshal.AsBytes(host.AsSpan()), a);
        _device.Memset32(b, BitConverter.SingleToUInt32Bits(float.NaN), host.Length);
        float[] poisoned = Download(b, host.Length);
        _device.CopyDeviceToDevice(a, b, host.Length * sizeof(float));
        float[] back = Download(b, host.Length);

        Assert.That(poisoned.All(float.IsNaN), Is.True, "memset32 wrote NaN everywhere");
        Assert.That(back, Is.EqualTo(host), $"seed {seed}");
        _device.Free(a);
        _device.Free(b);
        Assert.That(_device.MemoryStats.InUseBytes, Is.Zero);
    }

    [Test]
    public void CompiledKernelMatchesReference([Values(false, true)] bool syncDebug)
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        const int n = 1000;
        const float s = 1.75f;
        float[] x = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        DevicePtr input = Upload(x);
        DevicePtr output = _device.Allocate(n * sizeof(float));
        _device.Memset32(output, BitConverter.SingleToUInt32Bits(float.NaN), n);
        _device.SyncDebug = syncDebug;

        KernelHandle kernel = _device.GetKernel("scale_kernel");
        ulong o = output.Address, i = input.Address;
        float scale = s;
        int count = n;
        nint* args = stackalloc nint[] { (nint)(&o), (nint)(&i), (nint)(&scale), (nint)(&count) };
        _device.Launch(kernel, (n + 127) / 128, 128, 0, new ReadOnlySpan<nint>(args, 4));
        float[] y = Download(output, n);

        for (int j = 0; j < n; j++)
        {
            double reference = (double)x[j] * s;
            Assert.That(y[j], Is.EqualTo(reference).Within(1e-6 + 1e-6 * Math.Abs(reference)), $"seed {seed}, element {j}");
        }

        (int registers, int shared, int local, _) = _device.GetKernelAttributes(kernel);
        Assert.That((registers > 0, shared, local), Is.EqualTo((true, 128 * sizeof(float), 0)));
    }

    [Test]
    public void SgemmRowMajorMatchesReference([Values(false, true)] bool transA, [Values(false, true)] bool transB)
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        const int m = 37, n = 29, k = 53;
        int lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 2, ldc = n + 5;
        float[] a = RandomArray(rng, (transA ? k : m) * lda);
        float[] b = RandomArray(rng, (transB ? n : k) * ldb);
        float[] c = RandomArray(rng, m * ldc);
        const float alpha = 0.75f, beta = 0.5f;
        DevicePtr da = Upload(a), db = Upload(b), dc = Upload(c);

        _device.Sgemm(transA, transB, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc);
        float[] result = Download(dc, c.Length);

        for (int r = 0; r < m; r++)
        {
            for (int col = 0; col < n; col++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    double av = transA ? a[p * lda + r] : a[r * lda + p];
                    double bv = transB ? b[col * ldb + p] : b[p * ldb + col];
                    sum += av * bv;
                }

                double reference = alpha * sum + beta * c[r * ldc + col];
                Assert.That(result[r * ldc + col], Is.EqualTo(reference).Within(1e-4 + 1e-4 * Math.Abs(reference)),
                    $"seed {seed}, transA={transA} transB={transB}, C[{r},{col}]");
            }

            for (int pad = n; pad < ldc; pad++)
            {
                Assert.That(result[r * ldc + pad], Is.EqualTo(c[r * ldc + pad]), $"padding of row {r} untouched");
            }
        }
    }

    [Test]
    public void Tf32SwitchAndEventsAndPinnedMemoryWork()
    {
        _device.AllowTf32 = true;
        _device.AllowTf32 = false;
        using CudaEvent start = _device.CreateEvent();
        using CudaEvent end = _device.CreateEvent();
        using PinnedBuffer pinned = _device.AllocatePinned(4096);
        pinned.AsSpan().Fill(7);
        DevicePtr d = _device.Allocate(4096);

        start.Record();
        _device.CopyToDevice(pinned.AsSpan(), d);
        end.Record();
        end.Synchronize();
        float ms = CudaEvent.ElapsedMilliseconds(start, end);
        var back = new byte[4096];
        _device.CopyToHost(d, back);

        Assert.That(ms, Is.GreaterThanOrEqualTo(0f));
        Assert.That(back.All(v => v == 7), Is.True);
    }

    [Test]
    public void OutOfMemoryReportsSizes()
    {
        long huge = _device.TotalMemory * 2;
        var e = Assert.Throws<GpuOutOfMemoryException>(() => _device.Allocate(huge));
        Assert.That(e!.Message, Does.Contain($"requested {huge} bytes").And.Contain("reserved"));
    }

    [Test]
    public void KernelCacheIsReusedByTheNextDevice()
    {
        _device.GetKernel("fill_kernel");
        Assert.That(_device.Cache.Misses, Is.EqualTo(1));
        _device.Dispose();

        var cache = new KernelCache(_cacheFolder);
        _device = CudaDriverDevice.Open(0, NvrtcTestSupport.Sources(), cache);
        _device.GetKernel("scale_kernel");
        Assert.That((cache.Hits, cache.Misses), Is.EqualTo((1L, 0L)));
        var unknown = Assert.Throws<ArgumentException>(() => _device.GetKernel("no_such_kernel"));
        Assert.That(unknown!.Message, Does.Contain("no_such_kernel"));
    }

    private static float[] RandomArray(Random rng, int length) =>
        Enumerable.Range(0, length).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();

    private DevicePtr Upload(float[] values)
    {
        DevicePtr p = _device.Allocate(values.Length * sizeof(float));
        _device.CopyToDevice(MemoryMarshal.AsBytes(values.AsSpan()), p);
        return p;
    }

    private float[] Download(DevicePtr p, int length)
    {
        var values = new float[length];
        _device.CopyToHost(p, MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }
}
