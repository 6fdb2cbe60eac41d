// The one device abstraction that the CUDA backend talks to. Two implementations share it:
//   - CudaDriverDevice: a real GPU through the CUDA driver API, NVRTC-compiled kernels and cuBLAS;
//   - EmulatedDevice:   the host emulator (libslak_emu.so), which runs the same cuda/ kernels on the CPU over
//                       host memory, so that every kernel and launch configuration is executed in CI.
// Typed launchers (Slak.Cuda.Kernels) only ever call Launch with the kernel's exact argument list. Internal: users of
// the kernel API hold a GpuDevice, which wraps one.
namespace Slak.Cuda.Runtime;

/// <summary>A device that runs the kernels of <c>cuda/</c>: a real GPU or the host emulator.</summary>
internal interface IGpuDevice : IDisposable
{
    /// <summary>Human-readable name, e.g. "NVIDIA H200 (sm_90)" or "cuda-emu (host emulator)".</summary>
    string Name { get; }

    /// <summary>True for the host emulator (device pointers are host addresses).</summary>
    bool IsEmulated { get; }

    /// <summary>Device ordinal (0 for the emulator).</summary>
    int Ordinal { get; }

    /// <summary>Compute capability (major, minor); the emulator reports (9, 0).</summary>
    (int Major, int Minor) ComputeCapability { get; }

    /// <summary>Allocates <paramref name="bytes"/> bytes of device memory (through the caching allocator).
    /// Throws <see cref="GpuOutOfMemoryException"/> after emptying the cache and retrying once.</summary>
    DevicePtr Allocate(long bytes);

    /// <summary>Returns a block obtained from <see cref="Allocate"/> to the cache. Never throws.</summary>
    void Free(DevicePtr ptr);

    /// <summary>Copies host bytes to the device (synchronous with respect to the host).</summary>
    void CopyToDevice(ReadOnlySpan<byte> source, DevicePtr destination);

    /// <summary>Copies device bytes to the host (waits for preceding work on the device's stream).</summary>
    void CopyToHost(DevicePtr source, Span<byte> destination);

    /// <summary>Copies <paramref name="bytes"/> bytes between two device buffers, on the device's stream.</summary>
    void CopyDeviceToDevice(DevicePtr source, DevicePtr destination, long bytes);

    /// <summary>Sets <paramref name="count"/> 32-bit words to <paramref name="value"/>, on the device's
    /// stream.</summary>
    void Memset32(DevicePtr destination, uint value, long count);

    /// <summary>Looks up (compiling and caching on first use) a kernel by its <c>extern "C"</c> name.</summary>
    KernelHandle GetKernel(string name);

    /// <summary>Looks up a kernel of the module compiled with <paramref name="specialization"/> as extra
    /// preprocessor definitions ("NAME=VALUE"; part of the compiled module's identity and cache key), e.g. the
    /// per-(Kh, Kw) depthwise kernels. Kernels written for it run correctly without the definitions too, so a device
    /// that compiles nothing at run time returns the generic kernel (the emulator: unless its library holds an
    /// instance compiled with these definitions, as the test library does for a few).</summary>
    KernelHandle GetKernel(string name, IReadOnlyList<string> specialization) => GetKernel(name);

    /// <summary>Launches a kernel on the device's stream. <paramref name="args"/> holds one pointer per kernel
    /// parameter, each pointing at a value of exactly the parameter's type (as for <c>cuLaunchKernel</c>).</summary>
    void Launch(KernelHandle kernel, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<nint> args);

    /// <summary>As <see cref="Launch(KernelHandle, Dim3, Dim3, int, ReadOnlySpan{nint})"/>, with the size in bytes
    /// of each argument as the caller built it, so that a device that knows the kernel's parameter types (the
    /// emulator) can reject a value of the wrong type. A GPU ignores the sizes.</summary>
    void Launch(KernelHandle kernel, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<nint> args,
                ReadOnlySpan<int> argSizes) => Launch(kernel, grid, block, sharedBytes, args);

    /// <summary>Row-major single-precision GEMM on device buffers:
    /// C = alpha * op(A) * op(B) + beta * C, with op(A) of shape (m, k), op(B) of shape (k, n), C of shape (m, n),
    /// leading dimensions in elements (row strides). cuBLAS on a GPU; the CPU GEMM on the emulator.</summary>
    void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
               DevicePtr a, int lda, DevicePtr b, int ldb, float beta, DevicePtr c, int ldc);

    /// <summary>Row-major GEMM with bfloat16 operands and float32 accumulation and output (mixed precision):
    /// C = alpha * op(A) * op(B) + beta * C as in <see cref="Sgemm"/>, but A and B are bf16 buffers (2 bytes an
    /// element, leading dimensions in elements) and C is float32. cuBLAS's cublasGemmEx (CUDA_R_16BF inputs,
    /// CUDA_R_32F output, CUBLAS_COMPUTE_32F) on a GPU; on the emulator the operands are converted to float32 (exactly)
    /// and the host GEMM runs.</summary>
    void GemmBf16(bool transA, bool transB, int m, int n, int k, float alpha,
                  DevicePtr a, int lda, DevicePtr b, int ldb, float beta, DevicePtr c, int ldc);

    /// <summary><see cref="GemmBf16"/> over a batch: for each i in [0, batch), C_i = alpha * op(A_i) * op(B_i) +
    /// beta * C_i with A_i = a + i * strideA elements (bf16), likewise B_i, and C_i = c + i * strideC elements
    /// (float32); a stride may be 0 (one matrix shared by every item). cublasGemmStridedBatchedEx (CUDA_R_16BF
    /// inputs, CUDA_R_32F output, CUBLAS_COMPUTE_32F) on a GPU, one call for the batch; on the emulator one exactly
    /// widened host GEMM per item.</summary>
    void GemmBf16StridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
                                DevicePtr a, int lda, long strideA, DevicePtr b, int ldb, long strideB,
                                float beta, DevicePtr c, int ldc, long strideC, int batch);

    /// <summary>Waits until all work queued on the device's stream has finished.</summary>
    void Synchronize();

    /// <summary>Allocator statistics (bytes in use, reserved, peak, number of cache hits/misses).</summary>
    GpuMemoryStats MemoryStats { get; }

    /// <summary>Releases every cached (unused) block back to the driver.</summary>
    void EmptyCache();
}

/// <summary>A device address (an opaque 64-bit value; a host address on the emulator).</summary>
internal readonly record struct DevicePtr(ulong Address)
{
    /// <summary>The null device pointer.</summary>
    public static DevicePtr Null => default;

    /// <summary>True when this is the null pointer.</summary>
    public bool IsNull => Address == 0;

    /// <summary>This pointer advanced by <paramref name="bytes"/> bytes.</summary>
    public DevicePtr Offset(long bytes) => new(checked((ulong)((long)Address + bytes)));

    /// <inheritdoc />
    public override string ToString() => $"0x{Address:x}";
}

/// <summary>A launch dimension (x, y, z), like CUDA's <c>dim3</c>.</summary>
internal readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    /// <summary>Total count x*y*z.</summary>
    public long Count => (long)X * Y * Z;

    /// <summary>A 1-D dimension of <paramref name="x"/> elements.</summary>
    public static implicit operator Dim3(int x) => new(checked((uint)x));
}

/// <summary>A loaded kernel: its name plus an implementation-specific handle (CUfunction or emulator index).</summary>
internal readonly record struct KernelHandle(string Name, nint Handle);
