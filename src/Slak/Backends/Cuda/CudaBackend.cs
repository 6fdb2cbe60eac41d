// The CUDA backend: every IBackend kernel as a launch of a cuda/ kernel on an IGpuDevice — a real GPU (driver API,
// NVRTC, cuBLAS) or the host emulator (cuda-emu), which runs the very same kernels on the CPU so that CI executes
// all of them. This is the one file family in Slak that knows both tensors and kernel launchers. Everything stays
// on the device: no host round trip except explicit copies and one-element reads for logging.
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Slak.Backends.Cpu;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.Backends.Cuda;

/// <summary>IBackend over a CUDA device or the host emulator.</summary>
internal sealed partial class CudaBackend : IBackend
{
    private static readonly ConcurrentDictionary<Device, Lazy<CudaBackend>> Backends = new();
    private readonly ConcurrentQueue<DevicePtr> _orphans = new();

    private CudaBackend(Device device, IGpuDevice gpu)
    {
        Device = device;
        Gpu = gpu;
    }

    /// <inheritdoc />
    public Device Device { get; }

    /// <summary>The device that runs the kernels.</summary>
    public IGpuDevice Gpu { get; }

    /// <summary>The backend of <paramref name="device"/> (opened once per process). Throws
    /// <see cref="NotSupportedException"/> with the reason when the device cannot be used.</summary>
    internal static IBackend For(Device device)
    {
        var lazy = Backends.GetOrAdd(device, d => new Lazy<CudaBackend>(() => Open(d)));
        try
        {
            return lazy.Value;
        }
        catch (Exception e) when (e is not NotSupportedException)
        {
            Backends.TryRemove(device, out _);
            throw new NotSupportedException($"device {device} is unavailable: {e.Message}", e);
        }
    }

    /// <summary>True when <paramref name="device"/> can be opened; otherwise <paramref name="reason"/>
    /// says why.</summary>
    public static bool IsAvailable(Device device, out string reason)
    {
        try
        {
            For(device);
            reason = "";
            return true;
        }
        catch (NotSupportedException e)
        {
            reason = e.Message;
            return false;
        }
    }

    private static CudaBackend Open(Device device)
    {
        if (device.Type == DeviceType.CudaEmu)
        {
            return new CudaBackend(device, EmulatedDevice.Open(HostSgemm));
        }
        if (!GpuDevices.IsCudaAvailable(out string reason))
            throw new NotSupportedException($"device {device}: CUDA is unavailable ({reason})");
        return new CudaBackend(device, GpuDevices.OpenDevice(device.ToString()));
    }

    /// <summary>The emulator's GEMM: the CPU backend's SGEMM over host memory.</summary>
    private static unsafe void HostSgemm(bool transA, bool transB, int m, int n, int k, float alpha, nint a, int lda,
                                         nint b, int ldb, float beta, nint c, int ldc)
    {
        long aLen = (long)(transA ? k : m) * lda, bLen = (long)(transB ? n : k) * ldb, cLen = (long)m * ldc;
        CpuGemm.Sgemm(transA, transB, m, n, k, alpha, new ReadOnlySpan<float>((void*)a, checked((int)aLen)), lda,
                      new ReadOnlySpan<float>((void*)b, checked((int)bLen)), ldb, beta,
                      new Span<float>((void*)c, checked((int)cLen)), ldc);
    }

    internal void Orphan(DevicePtr ptr) => _orphans.Enqueue(ptr);

    private static DevicePtr P(Tensor t) => ((CudaStorage)t.Storage).Pointer.Offset(t.Offset * sizeof(float));

    private static DevicePtr PorNull(Tensor? t) => t is null ? DevicePtr.Null : P(t);

    // ---- memory ----------------------------------------------------------------------------------------------

    /// <inheritdoc />
    public Storage Allocate(long length)
    {
        while (_orphans.TryDequeue(out var orphan)) Gpu.Free(orphan);
        var ptr = length == 0 ? DevicePtr.Null : Gpu.Allocate(length * sizeof(float));
        return new CudaStorage(this, ptr, length);
    }

    /// <inheritdoc />
    public void CopyFromHost(ReadOnlySpan<float> source, Tensor destination) =>
        Gpu.CopyToDevice(MemoryMarshal.AsBytes(source), P(destination));

    /// <inheritdoc />
    public void CopyToHost(Tensor source, Span<float> destination)
    {
        if (TryCopyBf16ToHost(source, destination)) return; // a bf16 block stays 16-bit on the device
        Gpu.CopyToHost(P(source), MemoryMarshal.AsBytes(destination[..checked((int)source.Numel)]));
    }

    /// <inheritdoc />
    public void Copy(Tensor source, Tensor destination) =>
        Gpu.CopyDeviceToDevice(P(source), P(destination), source.Numel * sizeof(float));

    /// <inheritdoc />
    public void Fill(Tensor destination, float value) => ElementwiseKernels.Fill(Gpu, P(destination), value, destination.Numel);

    /// <inheritdoc />
    public void FillFromScalar(Tensor destination, Tensor scalar, float scale) =>
        ElementwiseKernels.FillFromScalar(Gpu, P(destination), P(scalar), scale, destination.Numel);

    // ---- element-wise ----------------------------------------------------------------------------------------

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor y) => ElementwiseKernels.Add(Gpu, P(y), P(a), P(b), y.Numel);

    /// <inheritdoc />
    public void AddScaled(Tensor y, Tensor x, float alpha) => ElementwiseKernels.Axpy(Gpu, P(y), P(x), alpha, y.Numel);

    /// <inheritdoc />
    public void Mul(Tensor a, Tensor b, Tensor y) => ElementwiseKernels.Mul(Gpu, P(y), P(a), P(b), y.Numel);

    /// <inheritdoc />
    public void Scale(Tensor x, float alpha, Tensor y) => ElementwiseKernels.Scale(Gpu, P(y), P(x), alpha, y.Numel);

    /// <inheritdoc />
    public void Gelu(Tensor x, Tensor y) => ActivationKernels.Gelu(Gpu, P(y), P(x), y.Numel);

    /// <inheritdoc />
    public void GeluBackward(Tensor x, Tensor dy, Tensor dx) => ActivationKernels.GeluBackward(Gpu, P(dx), P(x), P(dy), dx.Numel);

    /// <inheritdoc />
    public void MulLastDim(Tensor x, Tensor gamma, Tensor y) =>
        ActivationKernels.MulLastDim(Gpu, P(y), P(x), P(gamma), gamma.Size(0), y.Numel);

    /// <inheritdoc />
    public void MulLastDimBackward(Tensor x, Tensor gamma, Tensor dy, Tensor? dx, Tensor? dgamma)
    {
        int c = gamma.Size(0);
        if (dx is not null) MulLastDim(dy, gamma, dx);
        if (dgamma is not null) ReduceKernels.ColumnSum(Gpu, P(dgamma), P(x), P(dy), dy.Numel / c, c);
    }

    /// <inheritdoc />
    public void MulRows(Tensor x, Tensor rowScale, Tensor y)
    {
        int rows = x.Size(0);
        long row = rows == 0 ? 1 : x.Numel / rows;
        ActivationKernels.MulRows(Gpu, P(y), P(x), P(rowScale), Math.Max(row, 1), y.Numel);
    }

    /// <inheritdoc />
    public void AddBiasLastDim(Tensor y, Tensor bias) =>
        ActivationKernels.AddBias(Gpu, P(y), P(bias), bias.Size(0), 1, y.Numel);

    /// <inheritdoc />
    public void AddBiasChannels(Tensor y, Tensor bias)
    {
        long planes = (long)y.Size(0) * y.Size(1);
        long plane = planes == 0 ? 1 : Math.Max(1, y.Numel / planes);
        ActivationKernels.AddBias(Gpu, P(y), P(bias), bias.Size(0), plane, y.Numel);
    }

    /// <inheritdoc />
    public void SumToLastDim(Tensor dy, Tensor db)
    {
        int c = db.Size(0);
        ReduceKernels.ColumnSum(Gpu, P(db), P(dy), DevicePtr.Null, dy.Numel / c, c);
    }

    /// <inheritdoc />
    public void Permute(Tensor x, ReadOnlySpan<int> perm, Tensor y)
    {
        if (x.Rank == 0) { Copy(x, y); return; }
        ReduceKernels.Permute(Gpu, P(y), P(x), x.Shape, perm);
    }

    /// <inheritdoc />
    public void SumAll(Tensor x, Tensor y) => ReduceKernels.Sum(Gpu, P(y), P(x), x.Numel, squares: false);

    /// <inheritdoc />
    public void SumSquares(Tensor x, Tensor y) => ReduceKernels.Sum(Gpu, P(y), P(x), x.Numel, squares: true);

    /// <inheritdoc />
    public void GlobalAvgPool(Tensor x, Tensor y) =>
        ReduceKernels.GlobalAvgPool(Gpu, P(y), P(x), x.Size(0) * x.Size(1), x.Size(2) * x.Size(3));

    /// <inheritdoc />
    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx) =>
        ReduceKernels.GlobalAvgPoolBackward(Gpu, P(dx), P(dy), dx.Size(2) * dx.Size(3), dx.Numel);
}
